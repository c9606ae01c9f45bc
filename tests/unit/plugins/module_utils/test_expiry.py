# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading expires-at tags, and what the reap playbook terminates."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from ansible_collections.lambdalabs.cloud.plugins.module_utils._expiry import parse_utc, reap_plan, reap_report

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


def test_the_report_says_what_each_kind_of_run_does():
    plan = reap_plan([instance("old", "2026-06-01"), instance("bad", "2026-02-30")], now=NOW)
    dry = reap_report(plan)
    assert dry[0].startswith("Dry run: would terminate 1 expired instance(s), saving $1.29 per hour.")
    assert dry[1] == "old (id-old): gpu_1x_a100_sxm4 in us-west-2, expires-at=2026-06-01, $1.29 per hour"
    assert dry[2].startswith("Left alone: bad (id-bad) has expires-at=2026-02-30, which is not a valid UTC time")
    assert reap_report(plan, confirm=True)[0] == "Terminating 1 expired instance(s), saving $1.29 per hour:"
    assert reap_report(plan, confirm=True, check_mode=True)[0].startswith("Check mode: would terminate 1")
    assert reap_report(reap_plan([], now=NOW))[0].startswith("Nothing to reap: no running instance has a expires-at")
