# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The filter plugins: every filter is documented and wired to its function, with the types roles rely on."""

from __future__ import annotations

from pathlib import Path

import yaml

from ansible_collections.lambdalabs.cloud.plugins.filter import capacity, cluster, gpu, job, reap, training

FILTERS = Path(__file__).resolve().parents[4] / "plugins" / "filter"
MODULES = (capacity, cluster, gpu, job, reap, training)


def all_filters():
    found = {}
    for module in MODULES:
        found.update(module.FilterModule().filters())
    return found


def test_every_filter_has_its_documentation_and_nothing_else_does():
    names = set(all_filters())
    documented = {path.stem for path in FILTERS.glob("*.yml")}
    assert names == documented
    for name in names:
        doc = yaml.safe_load((FILTERS / f"{name}.yml").read_text())
        assert doc["DOCUMENTATION"]["name"] == name and doc["EXAMPLES"] and doc["RETURN"]["_value"]
        assert f"lambdalabs.cloud.{name}" in doc["EXAMPLES"]


def test_the_cluster_filters_plan_report_and_name():
    filters = all_filters()
    instances = [
        {
            "id": "i1",
            "name": "demo-1",
            "status": "active",
            "tags": {"cluster": "demo"},
            "instance_type": {"name": "gpu_1x_a10", "price_cents_per_hour": 75, "specs": {"gpus": 1}},
            "region": {"name": "us-east-1"},
            "ip": "127.18.0.2",
        }
    ]
    defaults = {"instance_type": ["gpu_1x_a10"], "ssh_key_name": "k", "user_data": "secret"}
    plan = filters["cluster_plan"](instances, "demo", {"count": 2}, defaults, ttl_hours=None)
    assert plan["error"] is None and [n["name"] for n in plan["missing"]] == ["demo-2"]
    assert "secret" not in str(plan)
    assert filters["cluster_user_data"]({"count": 2}, "demo-2", defaults) == "secret"
    current = filters["cluster_instances"]([plan["members"], [], None])
    result = filters["cluster_result"](plan, current, [], None, [], name="demo")
    assert result["price_cents_per_hour"] == 75
    assert filters["cluster_summary"](result)[0].startswith("Cluster demo: 1 node(s), $0.75 per hour")
    args = filters["instance_add_host"](instances[0], ["lambda_cluster_demo", "lambda"])
    assert args["name"] == "demo-1" and args["groups"] == ["lambda_cluster_demo", "lambda"]
    assert (
        args["lambda_gpus"] == 1 and args["ansible_host"] == "127.18.0.2" and args["lambda_tags"] == {"cluster": "demo"}
    )
    assert filters["cluster_group"]("llm-ft") == "lambda_cluster_llm_ft"


def test_the_reap_and_gpu_filters():
    filters = all_filters()
    plan = filters["reap_plan"](
        [{"name": "x", "status": "active", "tags": [{"key": "ttl", "value": "2000-01-01"}]}], "ttl"
    )
    assert [e["name"] for e in plan["expired"]] == ["x"]
    assert filters["reap_report"](plan, False, False)[0].startswith("Dry run: would have terminated 1")
    terminated = {"results": [{"changed": True, "item": {"price_cents_per_hour": 75}}]}
    assert filters["reap_terminated"](terminated, True, "idle node").startswith("Would have terminated 1 idle node(s)")
    assert filters["reap_idle_interval"]("30", "6") == 360.0
    facts = {"present": True, "persistence_mode": False, "gpus": [{"index": 0, "persistence_mode": False}]}
    assert filters["gpu_persistence"](facts, True)["persistence_mode"] is True


def test_the_cluster_filters_say_what_the_role_waits_for_and_removed():
    filters = all_filters()
    plan = {"members": [{"id": "i1", "name": "demo-1", "status": "booting"}]}
    assert filters["cluster_wait_ids"](plan, [{"instance": {"id": "i2"}}], False) == ["i1", "i2"]
    result = {"name": "demo", "terminated": ["demo-1"], "saved_cents_per_hour": 75}
    assert filters["cluster_removal"](result, True) == (
        "Would have terminated 1 node(s) of cluster demo (demo-1), which cost $0.75 per hour ($18.00 per day)."
    )
