# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

from typing import Any

import pytest

from ansible_collections.lambdalabs.cloud.plugins.module_utils._status import (
    account_status,
    check_cluster,
    earliest_expiry,
    launch_time,
    status_table,
    untagged_ids,
    utc_text,
)
from ansible_collections.lambdalabs.cloud.plugins.module_utils._validation import InvalidParameter

NOW = 1_800_000_000  # 2027-01-15T08:00:00Z


def node(instance_id: str, name: str, price: int = 129, status: str = "active", **tags: str) -> dict[str, Any]:
    return {
        "id": instance_id,
        "name": name,
        "status": status,
        "ip": "198.51.100.7",
        "region": {"name": "us-east-1"},
        "instance_type": {"name": "gpu_1x_a100_sxm4", "price_cents_per_hour": price},
        "tags": [{"key": key.replace("_", "-"), "value": value} for key, value in tags.items()],
    }


def test_the_launched_at_tag_wins_over_the_audit_trail_and_a_bad_tag_falls_back_to_it():
    tagged = node("a", "x", launched_at="2027-01-15T07:00:00Z")
    assert launch_time(tagged, {"a": 5.0}, NOW) == (NOW - 3600, "tag")
    assert launch_time(node("a", "x", launched_at="yesterday"), {"a": 5.0}, NOW) == (5.0, "audit")
    assert launch_time(node("a", "x"), {}, NOW) == (None, None)
    # A tag later than now (a controller's clock off), or before Lambda Cloud, is no launch time.
    assert launch_time(node("a", "x", launched_at="2027-01-15T09:00:00Z"), {"a": 5.0}, NOW) == (5.0, "audit")
    assert launch_time(node("a", "x", launched_at="0001-01-01"), {}, NOW) == (None, None)
    instances = [tagged, node("b", "y"), node("c", "z", status="terminated"), node("d", "w", cluster="k")]
    assert untagged_ids(instances, NOW) == ["b", "d"]
    assert untagged_ids(instances, NOW, "k") == ["d"]  # only the cluster shown is looked up


def test_odd_shapes_are_read_without_a_crash():
    odd = node("1", "x", cluster="c") | {"name": 7, "ip": 5}
    odd["tags"].append({"key": "expires-at", "value": 12})
    status = account_status([odd, node("2", "y") | {"tags": "not a list"}], {}, NOW)
    assert status["clusters"][0]["nodes"][0]["name"] == "7" and status["clusters"][0]["nodes"][0]["ip"] == "5"
    assert status["clusters"][0]["expires_at"] == "12"
    assert status_table(status, NOW)[-3].endswith("expires-at '12' is not a time.")


def test_the_earliest_expiry_is_compared_as_a_time():
    assert earliest_expiry(["2027-01-16", "0x", "2027-01-15T20:00:00Z"]) == "2027-01-15T20:00:00Z"
    assert earliest_expiry(["0x", None, ""]) == "0x" and earliest_expiry([]) is None


def test_nodes_are_grouped_by_cluster_with_totals_and_strays_and_ended_ones_are_left_out():
    instances = [
        node("2", "training-10", cluster="training", launched_at="2027-01-15T06:00:00Z", expires_at="2027-01-16"),
        node("1", "training-2", cluster="training", launched_at="2027-01-15T07:30:00Z", expires_at="2027-01-15T20:00"),
        node("3", "stray", price=75, launched_at="2027-01-15T07:00:00Z"),
        node("4", "old", status="terminated", cluster="training"),
        node("5", "lost", price=50),
    ]
    status = account_status(instances, {}, NOW)
    training = status["clusters"][0]
    assert [n["name"] for n in training["nodes"]] == ["training-2", "training-10"]  # natural order
    assert training["expires_at"] == "2027-01-15T20:00" and training["count"] == 2
    assert [n["uptime_seconds"] for n in training["nodes"]] == [1800, 7200]
    assert training["price_cents_per_hour"] == 258 and training["cost_cents"] == round(129 * 2.5)
    strays = status["unclustered"]
    assert [n["name"] for n in strays["nodes"]] == ["lost", "stray"]
    assert strays["cost_cents"] == 75 and strays["cost_unknown"] == 1
    assert status["total"] == {"count": 4, "price_cents_per_hour": 383, "cost_cents": 323 + 75, "cost_unknown": 1}
    assert account_status(instances, {}, NOW, "training")["unclustered"]["nodes"] == []


def test_a_node_launched_moments_after_now_has_no_negative_uptime():
    status = account_status([node("1", "x", launched_at="2027-01-15T08:01:00Z")], {}, NOW)
    assert status["unclustered"]["nodes"][0]["uptime_seconds"] == 0


def test_the_table_has_a_row_per_node_then_the_clusters_the_strays_and_the_account():
    instances = [
        node(
            "1", "training-1", cluster="training", launched_at="2027-01-15T06:00:00Z", expires_at="2027-01-15T10:00:00Z"
        ),
        node("2", "eval-1", price=75, cluster="eval", expires_at="2027-01-15T07:00:00Z"),
        node("3", "stray", price=50),
    ]
    table = status_table(account_status(instances, {"2": NOW - 1800}, NOW), NOW)
    assert [line.split()[:2] for line in table[:4]] == [
        ["CLUSTER", "NODE"],
        ["eval", "eval-1"],
        ["training", "training-1"],
        ["-", "stray"],
    ]
    assert table[2].split()[6:] == ["2", "h", "1.29", "2.58"]
    assert table[3].split()[6:] == ["unknown", "0.50", "unknown"]
    assert table[4:] == [
        "Cluster eval: 1 node(s), $0.75 per hour, $0.38 so far, expired 2027-01-15T07:00:00Z.",
        "Cluster training: 1 node(s), $1.29 per hour, $2.58 so far, expires 2027-01-15T10:00:00Z (in 2 h).",
        "In no cluster: 1 instance(s), $0.50 per hour, $0.00 so far (not counting 1 whose launch time is unknown).",
        "Account: 3 running instance(s), $2.54 per hour, $2.96 so far (not counting 1 whose launch time is unknown).",
    ]


def test_an_unreadable_expiry_is_said_so_and_an_empty_account_has_one_line():
    table = status_table(account_status([node("1", "a-1", cluster="a", expires_at="soon")], {}, NOW), NOW)
    assert "expires-at 'soon' is not a time" in table[-2]
    assert status_table(account_status([], {}, NOW), NOW) == [
        "Account: 0 running instance(s), $0.00 per hour, $0.00 so far."
    ]


def test_a_cluster_that_does_not_run_is_named_with_those_that_do():
    status = account_status([node("1", "b-1", cluster="b"), node("2", "a-1", cluster="a")], {}, NOW, "c")
    assert status["clusters"] == [] and status["known_clusters"] == ["a", "b"]
    assert status_table(status, NOW) == ["No cluster named c is running. Running clusters: a, b."]


@pytest.mark.parametrize("bad", ["../x", "a b", "x\n", "", "-x", "a" * 49, ["a"], 5])
def test_a_cluster_name_that_the_role_would_refuse_is_refused(bad):
    with pytest.raises(InvalidParameter, match=r"^name: "):
        check_cluster("name", bad)


def test_check_cluster_passes_a_name_and_none():
    assert check_cluster("name", "llm-ft_2") == "llm-ft_2" and check_cluster("name", None) is None
    assert utc_text(NOW) == "2027-01-15T08:00:00Z"
