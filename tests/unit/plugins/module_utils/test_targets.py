# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which hosts a playbook runs on: an explicit pattern or a cluster's group, never every host by default."""

from __future__ import annotations

import pytest

from ansible_collections.lambdalabs.cloud.plugins.module_utils._targets import target_pattern, target_problem

GROUPS = {"all": ["a", "b"], "lambda": ["a", "b"], "lambda_cluster_llm-2": ["a"], "lambda_cluster_llm-10": ["b"]}


@pytest.mark.parametrize(
    ("pattern", "cluster", "expected"),
    [
        ("lambda_cluster_x:&us_east_1", "ignored", "lambda_cluster_x:&us_east_1"),
        (" trial-3 ", None, "trial-3"),
        (None, "llm-ft", "lambda_cluster_llm_ft"),
        ("", "llm", "lambda_cluster_llm"),
        (None, None, ""),
        ("  ", "", ""),
        (["a"], None, ""),
    ],
)
def test_the_pattern_is_the_one_given_or_the_clusters_group_and_never_a_default(pattern, cluster, expected):
    assert target_pattern(pattern, cluster) == expected


def test_no_pattern_is_refused_with_the_clusters_of_the_inventory():
    problem = target_problem("", "train_hosts", [], GROUPS)
    assert problem.startswith("Give the hosts: -e train_hosts=PATTERN")
    assert problem.endswith(
        "Cluster groups in the inventory: lambda_cluster_llm-2 (1 host(s)), lambda_cluster_llm-10 (1 host(s))."
    )


def test_a_pattern_that_matches_nothing_is_refused_and_an_empty_inventory_is_named():
    assert target_problem("lambda_cluster_lmm", "reap_idle_hosts", [], GROUPS).startswith(
        "reap_idle_hosts 'lambda_cluster_lmm' matches no host of the inventory. Cluster groups in the inventory:"
    )
    assert "The inventory has no cluster group: was it given with -i" in target_problem(
        "lambda", "configure_hosts", [], {"all": [], "ungrouped": []}
    )


def test_a_pattern_that_matches_is_fine():
    assert target_problem("trial-3", "reap_idle_hosts", ["trial-3"], GROUPS) == ""
