# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One expiry and one instance type for a whole cluster, across its nodes and its runs."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from ansible_collections.lambdalabs.cloud.plugins.module_utils._cluster import plan_cluster, wait_ids
from ansible_collections.lambdalabs.cloud.plugins.module_utils._cluster_rules import (
    cluster_expiry,
    cluster_type,
    node_types,
)

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc).timestamp()
DEFAULTS = {"instance_type": ["gpu_1x_a100", "gpu_1x_a10"], "ssh_key_name": "deploy"}


def member(name, itype="gpu_1x_a100", expires=None, status="active"):
    tags = [{"key": "cluster", "value": "demo"}]
    if expires:
        tags.append({"key": "expires-at", "value": expires})
    return {"id": f"id-{name}", "name": name, "status": status, "tags": tags, "instance_type": {"name": itype}}


def test_the_first_provision_sets_the_expiry_from_the_ttl():
    assert cluster_expiry([], 2, NOW) == ("2026-01-01T14:00:00Z", None)
    assert cluster_expiry([], None, NOW) == (None, None)


def test_a_replaced_or_added_node_inherits_the_clusters_expiry_not_a_later_one():
    members = [member("demo-2", expires="2026-01-01T13:00:00Z"), member("demo-3", expires="2026-01-01T12:30:00Z")]
    expiry, note = cluster_expiry(members, 8, NOW)
    assert expiry == "2026-01-01T12:30:00Z"  # the earliest: the cluster ends at once
    assert note.startswith("New nodes take the cluster's expiry, 2026-01-01T12:30:00Z, not lambda_cluster_ttl_hours")
    assert cluster_expiry(members, None, NOW) == ("2026-01-01T12:30:00Z", None)
    plan = plan_cluster(members, "demo", {"count": 3}, DEFAULTS, ttl_hours=8, now=NOW)
    assert [n["tags"]["expires-at"] for n in plan["missing"]] == ["2026-01-01T12:30:00Z"]


def test_a_cluster_without_expiry_gives_its_new_nodes_none_and_says_why():
    expiry, note = cluster_expiry([member("demo-1")], 2, NOW)
    assert expiry is None and "applies when the cluster is first provisioned" in note


def test_a_bad_ttl_is_refused_even_when_the_members_expiry_wins():
    plan = plan_cluster(
        [member("demo-1", expires="2026-01-01T13:00:00Z")], "demo", {"count": 2}, DEFAULTS, ttl_hours="x"
    )
    assert plan["error"].startswith("lambda_cluster_ttl_hours")


def test_the_clusters_type_is_its_first_members_else_the_first_launch_of_the_run():
    assert cluster_type([member("demo-10", "gpu_1x_a10"), member("demo-2", "gpu_1x_a100")]) == "gpu_1x_a100"
    launches = [{"name": "demo-1", "placement": None}, {"name": "demo-2", "placement": {"instance_type": "gpu_1x_a10"}}]
    assert cluster_type([], launches) == "gpu_1x_a10"
    assert cluster_type([], []) is None


@pytest.mark.parametrize(
    ("given", "allow_mixed", "expected"),
    [
        (["gpu_1x_a10", "gpu_1x_a100"], False, ["gpu_1x_a100"]),  # failover keeps to the cluster's type
        ("gpu_1x_a10,gpu_1x_a100", False, ["gpu_1x_a100"]),
        (["gpu_1x_a10", "gpu_1x_a100"], True, ["gpu_1x_a10", "gpu_1x_a100"]),
        (["gpu_8x_h100_sxm5"], False, ["gpu_8x_h100_sxm5"]),  # a node that asks for another type on purpose
    ],
)
def test_a_node_is_launched_as_the_clusters_type_unless_mixing_is_allowed(given, allow_mixed, expected):
    node = {"name": "demo-3", "instance_type": given}
    assert node_types(node, [member("demo-1")], [], allow_mixed) == expected


def test_a_new_cluster_takes_its_first_choices():
    assert node_types({"instance_type": ["a", "b"]}, [], []) == ["a", "b"]


def test_nodes_beyond_the_wanted_ones_are_not_waited_for():
    members = [member("demo-1"), member("demo-2", status="booting"), member("demo-3", status="booting")]
    plan = plan_cluster(members, "demo", {"count": 2}, DEFAULTS, now=NOW)
    assert [m["name"] for m in plan["extra"]] == ["demo-3"]
    assert wait_ids(plan, [], ssh=False) == ["id-demo-2"]
    assert wait_ids(plan, [], ssh=True) == ["id-demo-1", "id-demo-2"]


@pytest.mark.parametrize(
    ("settings", "named", "said"),
    [
        ({"ansible_user": ""}, "lambda_cluster_ansible_user", "must be a login name"),
        ({"ansible_user": "ubuntu\nroot"}, "lambda_cluster_ansible_user", "got 'ubuntu\\nroot'"),
        ({"ansible_user": ["ubuntu"]}, "lambda_cluster_ansible_user", "must be a login name"),
        ({"launch_interval": -1}, "lambda_cluster_launch_interval", "at least 0"),
        ({"wait_timeout": float("nan")}, "lambda_cluster_wait_timeout", "finite"),
    ],
)
def test_the_roles_other_settings_are_checked_before_any_launch(settings, named, said):
    plan = plan_cluster([], "demo", {"count": 1}, {"instance_type": ["a"], "ssh_key_name": "k"}, settings=settings)
    assert plan["error"].startswith(named) and said in plan["error"] and plan["missing"] == [], plan["error"]
    fine = {"ansible_user": "ubuntu", "launch_interval": 12, "wait_timeout": 1800}
    assert (
        plan_cluster([], "demo", {"count": 1}, {"instance_type": ["a"], "ssh_key_name": "k"}, settings=fine)["error"]
        is None
    )


def test_tag_values_are_checked_as_lambda_instance_checks_them():
    defaults = {"instance_type": ["a"], "ssh_key_name": "k", "tags": {"team": ["a"]}}
    plan = plan_cluster([], "demo", {"count": 1}, defaults)
    assert (
        plan["error"]
        == "lambda_cluster_nodes: the value of tag 'team' must be a string, number or boolean, not a list."
    )
