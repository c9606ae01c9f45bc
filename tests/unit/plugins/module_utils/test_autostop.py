# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from ansible_collections.lambdalabs.cloud.plugins.module_utils._autostop import autostop_plan, autostop_settings
from ansible_collections.lambdalabs.cloud.plugins.module_utils._validation import InvalidParameter


def result(*statuses: str) -> dict[str, Any]:
    nodes = [
        {"id": f"id-{i}", "name": f"demo-{i}", "status": s, "ip": f"198.51.100.{i}", "private_ip": f"10.0.0.{i}"}
        for i, s in enumerate(statuses, start=1)
    ]
    return {"name": "demo", "nodes": nodes, "price_cents_per_hour": 75 * len(nodes)}


@pytest.mark.parametrize(
    ("minutes", "action", "threshold", "param"),
    [
        (-1, "terminate", 10, "lambda_cluster_autostop_minutes"),
        ("soon", "terminate", 10, "lambda_cluster_autostop_minutes"),
        (math.nan, "terminate", 10, "lambda_cluster_autostop_minutes"),
        (math.inf, "terminate", 10, "lambda_cluster_autostop_minutes"),
        (True, "terminate", 10, "lambda_cluster_autostop_minutes"),
        (7 * 24 * 60 + 1, "terminate", 10, "lambda_cluster_autostop_minutes"),
        (5, "maybe", 10, "lambda_cluster_autostop_action"),
        (5, None, 10, "lambda_cluster_autostop_action"),
        (5, "terminate", 0, "lambda_cluster_autostop_threshold"),
        (5, "terminate", 100.5, "lambda_cluster_autostop_threshold"),
        (5, "terminate", "x", "lambda_cluster_autostop_threshold"),
        (5, "terminate", None, "lambda_cluster_autostop_threshold"),
    ],
)
def test_bad_settings_name_the_variable(minutes, action, threshold, param):
    with pytest.raises(InvalidParameter) as raised:
        autostop_settings(minutes, action, threshold)
    assert raised.value.param == param
    assert autostop_plan(result("active"), minutes, action, threshold)["error"].startswith(param)


def test_unset_leaves_the_head_node_alone_and_text_from_the_command_line_is_read():
    assert autostop_settings(None) is None and autostop_settings("") is None
    assert autostop_settings("30", "notify", "5") == {"minutes": 30.0, "action": "notify", "threshold": 5.0}
    plan = autostop_plan(result("active"), None)
    assert not plan["install"] and not plan["remove"] and plan["error"] is None


def test_the_watchdog_runs_on_the_first_node_and_samples_every_node_by_its_private_address():
    plan = autostop_plan(result("active", "active", "active"), 30, api_url="http://127.0.0.1:1/api/v1")
    assert plan["install"] and plan["head"] == "demo-1" and plan["workers"] == ["demo-2", "demo-3"]
    assert plan["addresses"] == ["10.0.0.2", "10.0.0.3"]
    assert plan["config"]["api_url"] == "http://127.0.0.1:1/api/v1"
    # No URL given (neither lambda_api_url nor LAMBDA_API_URL): the collection's default API.
    assert autostop_plan(result("active", "active"), 30)["config"]["api_url"] == "https://cloud.lambda.ai/api/v1"
    config = plan["config"]
    assert [(n["name"], n["address"], n["local"]) for n in config["nodes"]] == [
        ("demo-1", "10.0.0.1", True),
        ("demo-2", "10.0.0.2", False),
        ("demo-3", "10.0.0.3", False),
    ]
    assert config["minutes"] == 30 and config["action"] == "terminate" and config["interval"] == 30
    assert "api_key" not in str(config).lower().replace("key_file", "")  # the key goes in its own file
    assert plan["summary"] == (
        "Autostop of cluster demo: when every GPU of its 3 node(s) has stayed below 10% for 30 min, the watchdog on "
        "demo-1 terminates the cluster; an idle cluster costs about $1.14 more before it stops. Its log: "
        "/var/log/lambda-autostop.log on demo-1."
    )


def test_zero_removes_and_notify_needs_no_key():
    plan = autostop_plan(result("active", "active"), 0, has_key=False)
    assert plan["remove"] and not plan["install"] and plan["workers"] == ["demo-2"]
    assert plan["summary"] == "Autostop of cluster demo: removed from demo-1."
    notify = autostop_plan(result("active"), 120, "notify", has_key=False)
    assert notify["install"] and "for 2 h, the watchdog on demo-1 writes a notice (action notify)." in notify["summary"]


def test_terminate_without_a_key_or_with_a_node_not_yet_active_is_refused():
    assert "set lambda_api_key or LAMBDA_API_KEY" in autostop_plan(result("active"), 30, has_key=False)["error"]
    booting = autostop_plan(result("active", "booting"), 30)
    assert booting["error"].startswith("Autostop needs every node of cluster demo active and reachable; demo-2")
    assert autostop_plan({"name": "demo", "nodes": []}, 30) == {
        "install": False,
        "remove": False,
        "error": None,
        "head": None,
        "workers": [],
    }


def test_nodes_that_share_a_name_are_refused():
    both = result("active", "active", "active")
    both["nodes"][2]["name"] = "demo-2"
    assert "demo-2 is the name of several" in autostop_plan(both, 30)["error"]


def test_the_cost_control_guide_shows_the_sentence_the_role_writes():
    """docs/cost-control.md's sample: 4 nodes of gpu_8x_h100_sxm5 ($23.92 per hour each), 30 minutes."""
    guide = (Path(__file__).resolve().parents[4] / "docs" / "cost-control.md").read_text()
    nodes = [{"id": str(i), "name": f"training-{i}", "status": "active", "ip": f"198.51.100.{i}"} for i in range(1, 5)]
    plan = autostop_plan({"name": "training", "nodes": nodes, "price_cents_per_hour": 4 * 2392}, 30)
    assert plan["summary"] in guide
