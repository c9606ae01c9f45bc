# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the reap playbooks terminate and say: expired instances (reap) and idle nodes (reap_idle)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest

from ansible_collections.lambdalabs.cloud.plugins.module_utils._cost import parse_utc
from ansible_collections.lambdalabs.cloud.plugins.module_utils._reap import (
    idle_nodes,
    reap_idle_plan,
    reap_idle_report,
    reap_options,
    reap_plan,
    reap_report,
    sample_interval,
    terminated_summary,
)

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc).timestamp()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-06-01T18:00:00Z", datetime(2025, 6, 1, 18, tzinfo=timezone.utc)),
        ("2025-06-01", datetime(2025, 6, 1, tzinfo=timezone.utc)),
        ("2025-06-01T18:30", datetime(2025, 6, 1, 18, 30, tzinfo=timezone.utc)),
        ("2025-06-01 18:30:15.123+00:00", datetime(2025, 6, 1, 18, 30, 15, tzinfo=timezone.utc)),
        (" 2024-02-29T23:59:59+0000 ", datetime(2024, 2, 29, 23, 59, 59, tzinfo=timezone.utc)),
    ],
)
def test_real_utc_times(text, expected):
    assert parse_utc(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "2030-13-01",
        "2020-99-99T99:99",
        "2021-02-29",
        "2020-01-01T24:00:00Z",
        "0000-01-01",
        "next tuesday",
        "2025-06-01T18:00:00+02:00",
        "2025-06-01T",
        None,
        20250601,
    ],
)
def test_anything_else_is_unreadable(text):
    assert parse_utc(text) is None


def instance(name, tag=None, status="active", price=129):
    tags = [] if tag is None else [{"key": "expires-at", "value": tag}]
    return {
        "id": f"id-{name}",
        "name": name,
        "status": status,
        "tags": tags,
        "instance_type": {"name": "gpu_1x_a100_sxm4", "price_cents_per_hour": price},
        "region": {"name": "us-west-2"},
    }


def test_only_running_instances_whose_time_has_passed_are_expired():
    instances = [
        instance("old", "2026-06-01T11:00:00Z"),
        instance("now", "2026-06-01T12:00:00Z", price=75),
        instance("fresh", "2026-06-01T13:00:00Z"),
        instance("unreadable", "next tuesday"),
        instance("untagged"),
        instance("gone", "2020-01-01", status="terminated"),
    ]
    plan = reap_plan(instances, now=NOW)
    assert [e["name"] for e in plan["expired"]] == ["now", "old"]
    assert [e["name"] for e in plan["unreadable"]] == ["unreadable"]
    assert plan["saved_cents_per_hour"] == 204 and plan["now"] == "2026-06-01T12:00:00Z"
    floated = reap_plan([instance("old", "2026-06-01", price=128.6), instance("odd", "2026-06-01", price="?")], now=NOW)
    assert [e["price_cents_per_hour"] for e in floated["expired"]] == [0, 129]
    assert floated["saved_cents_per_hour"] == 129


def test_the_report_says_what_each_kind_of_run_does():
    plan = reap_plan([instance("old", "2026-06-01"), instance("bad", "2026-02-30")], now=NOW)
    dry = reap_report(plan)
    assert dry[0] == (
        "Dry run: would have terminated 1 expired instance(s), saving $1.29 per hour. Run with -e reap_confirm=true "
        "to terminate them."
    )
    assert dry[1] == "old (id-old): gpu_1x_a100_sxm4 in us-west-2, expires-at=2026-06-01, $1.29 per hour"
    assert dry[2].startswith("Left alone: bad (id-bad) has expires-at=2026-02-30, which is not a valid UTC time")
    assert reap_report(plan, confirm=True)[0] == "Terminating 1 expired instance(s), saving $1.29 per hour:"
    assert reap_report(plan, confirm=True, check_mode=True)[0] == (
        "Check mode: would have terminated 1 expired instance(s), saving $1.29 per hour; nothing is terminated in "
        "check mode."
    )
    assert reap_report(reap_plan([], now=NOW))[0].startswith("Nothing to reap: no running instance has a expires-at")


def test_idle_nodes_stayed_below_the_threshold_on_every_gpu_in_every_sample():
    found = idle_nodes(
        {
            "idle": [[0, 2], [1, 0], [3, 3]],
            "one-busy-gpu": [[0, 80], [0, 0]],
            "one-busy-sample": [[0], [50], [0]],
            "at-threshold": [[10]],
            "unreachable": None,
            "half-sampled": [[0], []],
        },
        threshold=10,
    )
    assert found == {
        "idle": ["idle"],
        "busy": ["at-threshold", "one-busy-gpu", "one-busy-sample"],
        "unreachable": ["half-sampled", "unreachable"],
    }


def test_reaping_idle_gpus():
    nodes = {
        "idle": {"id": "i1", "price_cents_per_hour": 129, "tags": {}, "samples": [[0], [3]]},
        "kept": {
            "id": "i2",
            "price_cents_per_hour": 75,
            "tags": [{"key": "reap-idle", "value": "never"}],
            "samples": [[0], [0]],
        },
        "busy": {"id": "i3", "price_cents_per_hour": 75, "tags": {}, "samples": [[0], [80]]},
        "gone": {"id": "i4", "price_cents_per_hour": 75, "tags": {}, "samples": None},
    }
    found = reap_idle_plan(nodes, 10)
    assert [n["name"] for n in found["idle"]] == ["idle"] and found["idle"][0]["peak"] == 3
    assert found["opted_out"] == ["kept"] and found["busy"] == ["busy"] and found["unreachable"] == ["gone"]
    assert found["saved_cents_per_hour"] == 129
    lines = reap_idle_report(found)
    assert lines[0].startswith("Dry run: would have terminated 1 idle node(s), saving $1.29 per hour.")
    assert "idle (i1): below 10% GPU utilization in every sample (peak 3%), $1.29 per hour" in lines
    assert "Idle but tagged reap-idle: never, left alone: kept." in lines
    assert "Could not be sampled, left alone: gone." in lines
    assert reap_idle_report(found, confirm=True)[0] == "Terminating 1 idle node(s), saving $1.29 per hour:"
    assert reap_idle_report(reap_idle_plan({}, 10))[0].startswith("Nothing to reap")
    checked = reap_idle_report(found, confirm=True, check_mode=True)[0]
    assert checked == "Check mode: would have terminated 1 idle node(s), saving $1.29 per hour."
    assert reap_idle_plan({"idle": nodes["idle"] | {"price_cents_per_hour": 74.6}}, 10)["saved_cents_per_hour"] == 75


def test_samples_spread_over_the_window_from_its_start_to_its_end():
    assert sample_interval(30, 6) == 360.0
    assert sample_interval("1", "1") == 60.0 and sample_interval(1, 0) == 60.0
    assert sample_interval(0.5, 4) == 10.0 and sample_interval(1, 7) == 10.0 and sample_interval(1, 8) == 8.571


def test_what_was_terminated_counts_only_the_changed_results_at_their_price_and_cost_so_far():
    def launched(hours_ago: float) -> dict[str, Any]:
        when = datetime.fromtimestamp(NOW - hours_ago * 3600, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {"instance_type": {"price_cents_per_hour": 129}, "tags": {"launched-at": when}}

    results = {
        "results": [
            {"changed": True, "item": {"name": "a", "price_cents_per_hour": 129}, "instance": launched(2)},
            {"changed": True, "item": {"name": "b", "price_cents_per_hour": 75}},
            {"changed": False, "item": {"name": "c", "price_cents_per_hour": 75}, "instance": launched(9)},
        ]
    }
    assert terminated_summary(results, now=NOW) == (
        "Terminated 2 instance(s), saving $2.04 per hour ($48.96 per day); they had cost $2.58 so far (not counting "
        "1 whose launch time is unknown)."
    )
    results["results"][1]["instance"] = launched(1) | {"instance_type": {"price_cents_per_hour": 75}}
    idle = terminated_summary(results, True, "idle node", now=NOW)
    assert (
        idle
        == "Would have terminated 2 idle node(s), saving $2.04 per hour ($48.96 per day); they have cost $3.33 so far."
    )
    assert terminated_summary({"skipped": True}) == "Terminated 0 instance(s)."
    assert terminated_summary(None, True) == "Would have terminated 0 instance(s)."


@pytest.mark.parametrize(
    ("options", "variable"),
    [
        ({"confirm": "maybe"}, "reap_confirm"),
        ({"confirm": ""}, "reap_confirm"),
        ({"confirm": None}, "reap_confirm"),
        ({"wait": "later"}, "reap_wait"),
        ({"tag": ""}, "reap_tag"),
        ({"tag": "Expires At"}, "reap_tag"),
        ({"tag": ["expires-at"]}, "reap_tag"),
        ({"threshold": 101}, "reap_idle_threshold"),
        ({"threshold": -1}, "reap_idle_threshold"),
        ({"threshold": "abc"}, "reap_idle_threshold"),
        ({"threshold": float("nan")}, "reap_idle_threshold"),
        ({"threshold": True}, "reap_idle_threshold"),
    ],
)
def test_reap_variables_are_checked_and_the_message_names_the_variable(options, variable):
    error = reap_options(**options)["error"]
    assert error.startswith(f"Invalid value for {variable}: ") and error.endswith("Nothing was terminated.")
    assert "\n" not in error


def test_reap_variables_as_the_command_line_gives_them():
    assert reap_options("true", "no", "expires-at", "55.5") == {
        "error": None,
        "confirm": True,
        "wait": False,
        "tag": "expires-at",
        "threshold": 55.5,
    }
    assert reap_options()["confirm"] is False and reap_options(threshold=0)["threshold"] == 0
