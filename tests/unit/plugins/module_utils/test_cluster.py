# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The cluster role's logic: plans, launch tags, extra nodes, results and summaries."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from ansible_collections.lambdalabs.cloud.plugins.module_utils._cluster import (
    cluster_group,
    cluster_result,
    current_instances,
    failover,
    node_user_data,
    plan_cluster,
    wait_ids,
    wanted_nodes,
)
from ansible_collections.lambdalabs.cloud.plugins.module_utils._cluster_report import (
    cluster_summary,
    group_note,
    launch_failure,
    removal_summary,
    unhealthy_warning,
)
from ansible_collections.lambdalabs.cloud.plugins.module_utils._cluster_rules import expires_at
from ansible_collections.lambdalabs.cloud.plugins.module_utils._validation import InvalidParameter

DEFAULTS = {"instance_type": ["gpu_1x_a10"], "ssh_key_name": "deploy", "tags": {"team": "research"}}
NOW = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc).timestamp()


def node(name, cluster="demo", status="active", price=75, **fields):
    tags = [{"key": "cluster", "value": cluster}] if cluster else []
    itype = {"name": "gpu_1x_a10", "price_cents_per_hour": price, "specs": {"gpus": 1}}
    return {"id": f"id-{name}", "name": name, "status": status, "tags": tags, "instance_type": itype} | fields


def test_group_names_map_every_other_character_to_underscore():
    assert cluster_group("llm-ft") == "lambda_cluster_llm_ft"
    assert cluster_group("a.b c") == "lambda_cluster_a_b_c"


def test_a_count_and_a_pattern_give_the_wanted_nodes_with_merged_tags_and_no_user_data():
    defaults = DEFAULTS | {"user_data": "#!/bin/sh\nsecret"}
    wanted = wanted_nodes("demo", {"count": 3, "name_pattern": "{cluster}-gpu-{index}"}, defaults)
    assert [n["name"] for n in wanted] == ["demo-gpu-1", "demo-gpu-2", "demo-gpu-3"]
    assert all("user_data" not in n and n["tags"] == {"team": "research"} for n in wanted)
    listed = wanted_nodes("demo", ["head", {"name": "w", "tags": {"role": "w", "spot": True}}], DEFAULTS)
    assert listed[1]["tags"] == {"team": "research", "role": "w", "spot": "true"}


@pytest.mark.parametrize(
    ("nodes", "defaults", "text"),
    [
        ({"count": "three"}, DEFAULTS, "must be a count plus a name pattern"),
        ({"count": 10_000_000}, DEFAULTS, "at most 256"),
        ({"count": 2, "name_pattern": "same"}, DEFAULTS, "must contain {index}"),
        (["a", "a"], DEFAULTS, "unique name"),
        (["a\nb"], DEFAULTS, "control characters"),
        ([{"name": "a", "flavour": "x"}], DEFAULTS, "only the keys"),
        (["a"], DEFAULTS | {"tags": {"Team": "x"}}, "tag keys must match"),
        (["a"], DEFAULTS | {"tags": {"cluster": "x"}}, "sets the tags cluster and expires-at itself"),
        (["a"], ["not", "a", "dict"], "must be a dictionary"),
        ("a,b", DEFAULTS, "must be a count plus a name pattern, or a list"),
        ([None], DEFAULTS, "every node needs a name"),
    ],
)
def test_bad_nodes_are_refused_with_one_line(nodes, defaults, text):
    with pytest.raises(InvalidParameter) as info:
        wanted_nodes("demo", nodes, defaults)
    assert text in str(info.value) and "\n" not in str(info.value)


def test_expiry_is_utc_and_bounded():
    assert expires_at(2, NOW) == "2026-01-01T14:00:00Z"
    assert expires_at("0.5", NOW) == "2026-01-01T12:30:00Z"
    assert expires_at(None) is None
    for bad, text in ((0, "greater than 0"), (-1, "greater than 0"), (1e12, "at most 8784"), ("soon", "number")):
        with pytest.raises(InvalidParameter) as info:
            expires_at(bad, NOW)
        assert text in str(info.value)


def test_the_plan_finds_members_missing_extra_and_conflicts():
    instances = [
        node("demo-1"),
        node("demo-10"),
        node("demo-4"),
        node("demo-2", cluster="other"),
        node("demo-3", status="terminated"),
        node("demo-5", status="booting"),
    ]
    plan = plan_cluster(instances, "demo", {"count": 3}, DEFAULTS, ttl_hours=1, now=NOW)
    assert [m["name"] for m in plan["members"]] == ["demo-1", "demo-4", "demo-5", "demo-10"]
    assert plan["conflicts"] == [{"name": "demo-2", "id": "id-demo-2"}]
    assert "Instance demo-2 (id-demo-2) is not tagged cluster=demo" in plan["error"]
    fine = plan_cluster(
        [i for i in instances if i["name"] != "demo-2"], "demo", {"count": 3}, DEFAULTS, ttl_hours=1, now=NOW
    )
    assert fine["error"] is None and fine["group"] == "lambda_cluster_demo"
    assert [n["name"] for n in fine["missing"]] == ["demo-2", "demo-3"]
    # The members have no expiry: new nodes get none either, and the plan says why ttl_hours did not apply.
    assert fine["missing"][0]["tags"] == {"team": "research", "cluster": "demo"}
    assert fine["expires_at"] is None and "have no expiry, so new nodes get none either" in fine["expiry_note"]
    first = plan_cluster([], "demo", {"count": 1}, DEFAULTS, ttl_hours=1, now=NOW)
    assert first["missing"][0]["tags"]["expires-at"] == "2026-01-01T13:00:00Z" and first["expiry_note"] is None
    # The highest-numbered first, in natural order.
    assert [n["name"] for n in fine["extra"]] == ["demo-10", "demo-5", "demo-4"]


def test_the_plan_returns_one_line_errors_instead_of_raising():
    assert "lambda_cluster_name must be" in plan_cluster([], "no spaces", {"count": 1}, DEFAULTS)["error"]
    assert "must be present or absent" in plan_cluster([], "demo", {"count": 1}, DEFAULTS, state="gone")["error"]
    plan = plan_cluster([], "demo", {"count": 1}, {"ssh_key_name": "deploy"})
    assert (
        plan["error"]
        == "Node demo-1 needs instance_type and ssh_key_name, in lambda_cluster_defaults or in the node itself."
    )
    assert plan_cluster([], "demo", {"count": 1}, DEFAULTS, ttl_hours=0)["error"].startswith("lambda_cluster_ttl_hours")
    # Removing needs only the members: bad node variables do not stop a teardown.
    assert plan_cluster([node("demo-1")], "demo", "garbage", None, state="absent")["error"] is None


def test_user_data_comes_from_the_node_else_the_defaults():
    nodes = [{"name": "a", "user_data": "node"}, "b"]
    assert node_user_data(nodes, "a", {"user_data": "defaults"}) == "node"
    assert node_user_data(nodes, "b", {"user_data": "defaults"}) == "defaults"
    assert node_user_data({"count": 2}, "demo-1", None) is None


def test_failover_lists_the_nodes_that_did_not_get_their_first_choice():
    launches = [
        {
            "name": "a",
            "instance_type": ["t1", "t2"],
            "region": ["r1", "r2"],
            "placement": {"instance_type": "t2", "region": "r1"},
        },
        {"name": "b", "instance_type": "t1, t2", "region": None, "placement": {"instance_type": "t1", "region": "r9"}},
        {"name": "c", "instance_type": ["t1"], "region": ["r1"], "placement": None},
    ]
    [moved] = failover(launches)
    assert moved["name"] == "a" and moved["change"] == "t1 in r1 had no capacity; launched as t2 in r1"


def test_the_result_has_integers_and_the_summary_a_table():
    plan = plan_cluster([node("demo-1"), node("demo-9")], "demo", {"count": 2}, DEFAULTS)
    launched = node("demo-2", price=129, ip="127.18.0.3")
    current = current_instances(plan["members"], [launched], removed=["id-demo-9"])
    launches = [
        {
            "name": "demo-2",
            "changed": True,
            "instance": launched,
            "instance_type": ["gpu_1x_a10"],
            "region": None,
            "placement": {"instance_type": "gpu_1x_a10", "region": "us-east-1"},
        }
    ]
    result = cluster_result(plan, current, launches, None, ["demo-9"], name="demo")
    assert result["price_cents_per_hour"] == 204 and isinstance(result["price_cents_per_hour"], int)
    assert result["launched"] == ["demo-2"] and result["terminated"] == ["demo-9"] and result["extra"] == []
    assert result["saved_cents_per_hour"] == 75
    assert [n["name"] for n in result["nodes"]] == ["demo-1", "demo-2"]
    lines = cluster_summary(result)
    assert lines[0] == "Cluster demo: 2 node(s), $2.04 per hour, inventory group lambda_cluster_demo."
    assert lines[1].split() == ["NAME", "ID", "TYPE", "REGION", "IP", "$/HOUR"]
    assert "127.18.0.3" in lines[3] and lines[3].endswith("1.29")
    assert "Launched: demo-2." in lines and any(line.startswith("Terminated (beyond") for line in lines)
    checked = cluster_summary(result, check_mode=True)
    assert checked[0].startswith("Check mode: cluster demo would have 2 node(s)")
    assert "Would have launched: demo-2." in checked
    assert any(line.startswith("Would have terminated (beyond the wanted nodes): demo-9") for line in checked)


def test_a_launch_found_by_name_after_an_unclear_answer_counts_as_launched_and_is_named():
    plan = plan_cluster([], "demo", {"count": 2}, DEFAULTS)
    launches = [
        {"name": "demo-1", "changed": True, "launch": {"how": "launched"}},
        {"name": "demo-2", "changed": True, "launch": {"how": "recovered"}},
    ]
    result = cluster_result(plan, [], launches, None, name="demo")
    assert result["launched"] == ["demo-1", "demo-2"] and result["recovered"] == ["demo-2"]
    lines = cluster_summary(result)
    assert "Launched: demo-1, demo-2." in lines
    assert (
        "Of these, launched though the API's answer was unclear, and found by name (not launched twice): demo-2."
        in lines
    )
    assert cluster_result(plan, [], launches[:1], None, name="demo")["recovered"] == []


def test_a_failed_launch_is_reported_with_the_nodes_not_tried():
    plan = plan_cluster([], "demo", {"count": 3}, DEFAULTS)
    result = cluster_result(plan, [], [{"name": "demo-1", "changed": True}], {"name": "demo-2", "msg": "No capacity."})
    assert result["not_launched"] == ["demo-3"]
    lines = cluster_summary(result)
    assert "Launch failed for demo-2: No capacity." in lines
    assert "Not launched, as the role stops at the first failed launch: demo-3." in lines


def test_a_failed_launch_fails_in_one_line_that_says_what_bills():
    plan = plan_cluster([], "demo", {"count": 3}, DEFAULTS)
    failure = {"name": "demo-2", "msg": "No capacity."}
    after_one = cluster_result(plan, [], [{"name": "demo-1", "changed": True}], failure, name="demo")
    line = launch_failure(after_one)
    assert line.startswith("Launching node demo-2 of cluster demo failed: No capacity. No further node was launched")
    assert "(demo-3). Launched before the failure, and left running: demo-1." in line and "\n" not in line
    assert line.endswith("Fix the cause and run the role again: it launches only the missing nodes.")
    first = cluster_result(plan, [], [], {"name": "demo-1", "msg": "Bad key."}, name="demo")
    assert "(demo-2, demo-3). Nothing was launched. Fix" in launch_failure(first)
    assert "Check mode: nothing was launched." in launch_failure(first, check_mode=True)
    assert launch_failure(cluster_result(plan, [], [], None, name="demo")) is None


def test_unhealthy_nodes_are_named_in_one_warning():
    plan = plan_cluster([node("demo-1", status="unhealthy"), node("demo-2")], "demo", {"count": 2}, DEFAULTS)
    result = cluster_result(plan, plan["members"], name="demo")
    assert unhealthy_warning(result).startswith("Warning: demo-1 of cluster demo is unhealthy: not waited for, and ")
    assert "left as it is." in unhealthy_warning(result)
    both = cluster_result(plan, [node("demo-1", status="unhealthy"), node("demo-2", status="unhealthy")], name="demo")
    assert unhealthy_warning(both).startswith("Warning: demo-1, demo-2 of cluster demo are unhealthy")
    assert "left as they are." in unhealthy_warning(both)
    assert unhealthy_warning(cluster_result(plan, [node("demo-1")], name="demo")) is None


def test_the_group_note_explains_a_group_spelt_differently():
    assert group_note("demo") == "The nodes of cluster demo are in the inventory group lambda_cluster_demo."
    assert group_note("llm-ft") == (
        "The nodes of cluster llm-ft are in the inventory group lambda_cluster_llm_ft (characters other than letters,"
        " digits and _ become _ in group names)."
    )


def test_removing_a_cluster_reports_what_it_saves_and_what_it_had_cost():
    launched = [{"key": "cluster", "value": "demo"}, {"key": "launched-at", "value": "2027-01-15T06:00:00Z"}]
    plan = plan_cluster([node("demo-1", tags=launched), node("demo-2", price=129)], "demo", None, None, state="absent")
    now = 1_800_000_000  # 2027-01-15T08:00:00Z: demo-1 ran 2 hours; demo-2 has no launched-at tag
    result = cluster_result(plan, [], removed=["demo-1", "demo-2"], state="absent", name="demo", now=now)
    assert result["saved_cents_per_hour"] == 204 and result["terminated"] == ["demo-1", "demo-2"]
    assert result["removed_spent"] == {
        "price_cents_per_hour": 204,
        "cents_per_day": 4896,
        "cost_cents": 150,
        "cost_unknown": 1,
    }
    removed = "2 node(s) of cluster demo (demo-1, demo-2), which cost $2.04 per hour ($48.96 per day) and {} cost "
    removed += "$1.50 so far (not counting 1 whose launch time is unknown)."
    assert removal_summary(result) == f"Terminated {removed.format('had')}"
    assert removal_summary(result, check_mode=True) == f"Would have terminated {removed.format('have')}"
    partly = cluster_result(plan, [], removed=["demo-2"], state="absent", name="demo")
    assert partly["saved_cents_per_hour"] == 129
    nothing = cluster_result(plan_cluster([], "demo", None, None, state="absent"), [], state="absent", name="demo")
    assert removal_summary(nothing) == "Cluster demo has no nodes; nothing to terminate."


def test_the_role_waits_for_booting_members_and_for_every_launched_instance():
    plan = plan_cluster([node("demo-1", status="booting"), node("demo-2"), node("demo-3")], "demo", {"count": 4}, None)
    launches = [{"name": "demo-4", "instance": node("demo-4")}, {"name": "demo-5", "instance": None}]
    assert wait_ids(plan, launches) == ["id-demo-1", "id-demo-4"]
    assert wait_ids(plan, launches, ssh=True) == ["id-demo-1", "id-demo-2", "id-demo-3", "id-demo-4"]
    assert wait_ids(plan, None) == ["id-demo-1"]


def test_the_summary_says_what_the_cluster_costs_at_most_until_its_expiry():
    now = 1_800_000_000  # 2027-01-15T08:00:00Z
    result = {"name": "demo", "group": "lambda_cluster_demo", "nodes": [], "price_cents_per_hour": 258}
    lines = cluster_summary(result | {"expires_at": "2027-01-15T20:00:00Z"}, now=now)
    assert lines[-1] == (
        "The cluster expires at 2027-01-15T20:00:00Z: lambdalabs.cloud.reap terminates it then; until then it costs "
        "at most $30.96 more."
    )
    passed = cluster_summary(result | {"expires_at": "2027-01-15T07:00:00Z"}, now=now)
    assert passed[-1].endswith("; until then it costs at most $0.00 more.")
    unreadable = cluster_summary(result | {"expires_at": "soon"}, now=now)
    assert unreadable[-1] == "The cluster expires at soon: lambdalabs.cloud.reap terminates it then."
