# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

from typing import Any

import pytest

from ansible_collections.lambdalabs.cloud.plugins.module_utils._heal import heal_plan


def node(instance_id: str, name: str, status: str = "active", cluster: str = "llm", **tags: str) -> dict[str, Any]:
    return {
        "id": instance_id,
        "name": name,
        "status": status,
        "instance_type": {"name": "gpu_8x_h100_sxm5"},
        "region": {"name": "us-east-1"},
        "ssh_key_names": ["deploy"],
        "file_system_names": ["data"],
        "tags": [{"key": "cluster", "value": cluster}, *({"key": k, "value": v} for k, v in tags.items())],
    }


CLUSTER = [node("1", "llm-1"), node("2", "llm-2", "unhealthy", team="ml", launch_id="x"), node("3", "llm-10")]
LOST = {"id": "2", "name": "llm-2", "cluster": "llm"}


def test_an_unhealthy_node_is_terminated_and_replaced_with_its_settings():
    plan = heal_plan(CLUSTER, LOST)
    assert plan["heal"] and plan["terminate"] == "2" and plan["error"] is None
    assert plan["nodes"] == [{"name": "llm-1"}, {"name": "llm-2"}, {"name": "llm-10"}]
    assert plan["defaults"] == {
        "instance_type": ["gpu_8x_h100_sxm5"],
        "region": ["us-east-1"],
        "ssh_key_name": "deploy",
        "file_system_names": ["data"],
        "tags": {"team": "ml", "launch_id": "x"},
    }
    assert plan["reason"] == "llm-2 of cluster llm is unhealthy: replacing it."


def test_a_node_that_is_gone_is_replaced_like_its_peers_without_terminating_anything():
    plan = heal_plan([CLUSTER[0], CLUSTER[2]], LOST | {"instance_type": "gpu_8x_h100_sxm5"})
    assert plan["heal"] and plan["terminate"] is None
    assert plan["defaults"]["instance_type"] == ["gpu_8x_h100_sxm5"] and plan["defaults"]["ssh_key_name"] == "deploy"
    assert plan["reason"] == "llm-2 of cluster llm is gone: replacing it."


def test_a_node_active_again_or_already_replaced_is_left_alone():
    active = heal_plan([CLUSTER[0], node("2", "llm-2"), CLUSTER[2]], LOST)
    assert not active["heal"] and active["reason"] == "llm-2 (2) of cluster llm is active now."
    replaced = heal_plan([*CLUSTER, node("4", "llm-2")], LOST)
    assert not replaced["heal"] and replaced["reason"] == "llm-2 of cluster llm has a replacement already."
    assert replaced["terminate"] is None  # the unhealthy one is not touched: a person decides


def test_the_launch_tags_and_the_clusters_own_tags_are_not_copied():
    own = {"launch-id": "k", "launched-at": "t", "expires-at": "e"}
    plan = heal_plan([node("2", "llm-2", "unhealthy", **own)], LOST)
    assert plan["defaults"]["tags"] == {}


@pytest.mark.parametrize(
    "lost",
    [
        {},
        {"id": "2", "name": "llm-2"},
        {"id": "2", "name": "llm-2", "cluster": "../x"},
        {"name": "llm-2", "cluster": "llm"},
        None,
    ],
)
def test_a_node_to_heal_without_an_id_name_or_cluster_is_an_error(lost):
    plan = heal_plan(CLUSTER, lost)
    assert not plan["heal"] and plan["error"].startswith("heal_instance: ")


def test_without_an_ssh_key_a_person_replaces_the_node():
    keyless = [dict(n, ssh_key_names=[]) for n in CLUSTER]
    plan = heal_plan(keyless, LOST)
    assert not plan["heal"] and "No SSH key of cluster llm is known" in plan["reason"]
