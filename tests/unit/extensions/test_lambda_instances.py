# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The lambda_instances event source: what it makes of each list of instances, which is pure."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from typing import Any

import pytest

SOURCE = Path(__file__).resolve().parents[3] / "extensions" / "eda" / "plugins" / "event_source" / "lambda_instances.py"
SPEC = importlib.util.spec_from_file_location("lambda_instances", SOURCE)
assert SPEC is not None and SPEC.loader is not None
source = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(source)

NOW = 1_800_000_000.0  # 2027-01-15T08:00:00Z


def instance(instance_id: str, status: str = "active", **tags: str) -> dict[str, Any]:
    return {
        "id": instance_id,
        "name": f"node-{instance_id}",
        "status": status,
        "instance_type": {"name": "gpu_1x_a10", "price_cents_per_hour": 75},
        "region": {"name": "us-east-1"},
        "jupyter_token": "secret-token",
        "tags": [{"key": key.replace("_", "-"), "value": value} for key, value in tags.items()],
    }


def kinds(events: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(event["type"], event["instance"]["id"]) for event in events]


def test_the_first_list_only_teaches_what_exists_unless_asked():
    tracker = source.InstanceTracker()
    assert tracker.update([instance("1")], NOW) == []
    assert kinds(source.InstanceTracker(initial_events=True).update([instance("1")], NOW)) == [
        ("launched", "1"),
        ("active", "1"),
    ]


def test_each_change_is_one_event_and_nothing_repeats():
    tracker = source.InstanceTracker()
    tracker.update([instance("1"), instance("2")], NOW)
    events = tracker.update([instance("1", "unhealthy", cluster="llm"), instance("2"), instance("3", "booting")], NOW)
    assert kinds(events) == [("unhealthy", "1"), ("launched", "3")]
    assert events[0]["previous_status"] == "active" and events[0]["instance"]["cluster"] == "llm"
    assert "jupyter_token" not in str(events)
    assert (
        tracker.update([instance("1", "unhealthy", cluster="llm"), instance("2"), instance("3", "booting")], NOW) == []
    )


def test_gone_is_terminated_after_terminating_and_preempted_otherwise():
    tracker = source.InstanceTracker()
    tracker.update([instance("1", "terminating"), instance("2"), instance("3", "terminated")], NOW)
    events = tracker.update([], NOW)
    assert kinds(events) == [("terminated", "1"), ("preempted", "2")]  # an instance seen terminated goes quietly
    assert events[1]["instance"]["status"] == "preempted" and events[1]["previous_status"] == "active"
    assert tracker.update([], NOW) == []


def test_an_expiry_that_passes_is_one_event():
    tracker = source.InstanceTracker()
    tracker.update([instance("1", expires_at="2027-01-15T08:00:30Z")], NOW)
    assert tracker.update([instance("1", expires_at="2027-01-15T08:00:30Z")], NOW + 10) == []
    assert kinds(tracker.update([instance("1", expires_at="2027-01-15T08:00:30Z")], NOW + 31)) == [("expired", "1")]
    assert tracker.update([instance("1", expires_at="2027-01-15T08:00:30Z")], NOW + 60) == []
    assert tracker.update([instance("1", "terminating", expires_at="x")], NOW + 90)[0]["type"] == "terminating"


def test_audit_events_are_emitted_once_across_overlapping_reads():
    tracker = source.AuditTracker(NOW)
    first = [
        {"event_id": "a", "event_time": "2027-01-15T08:00:05Z"},
        {"event_id": "b", "event_time": "2027-01-15T08:00:06Z"},
    ]
    assert [e["event"]["event_id"] for e in tracker.update(first, NOW + 10)] == ["a", "b"]
    assert tracker.query() == {"start": "2027-01-15T08:00:05.000000Z"}  # a second before the newest
    again = [first[1], {"event_id": "c", "event_time": "2027-01-15T08:00:09Z"}, {"event_id": ""}, "x"]
    assert [e["event"]["event_id"] for e in tracker.update(again, NOW + 20)] == ["c"]


def test_failed_polls_back_off_and_honour_retry_after():
    assert [source.pause_after(n, 15, None, 300) for n in (0, 1, 2, 3, 6)] == [15, 15, 30, 60, 300]
    assert source.pause_after(1, 15, 120, 300) == 120
    assert source.pause_after(1, 1, None, 4) == 1 and source.pause_after(5, 1, None, 4) == 4


@pytest.mark.parametrize(
    ("args", "named"),
    [
        ({"interval": 0.5}, "interval"),
        ({"interval": "soon"}, "interval"),
        ({"interval": math.nan}, "interval"),
        ({"interval": True}, "interval"),
        ({"interval": 10, "max_backoff": 5}, "max_backoff"),
        ({"audit_events": "maybe"}, "audit_events"),
        ({"initial_events": 2}, "initial_events"),
    ],
)
def test_bad_arguments_name_themselves(args, named):
    with pytest.raises(ValueError, match=f"lambda_instances: {named} must be"):
        source.settings(args)


def test_the_key_comes_from_the_environment_by_default(monkeypatch):
    monkeypatch.setenv("LAMBDA_API_KEY", "from-env")
    assert source.settings({})["api_key"] == "from-env" and source.settings({})["interval"] == 15
    assert source.settings({"api_key": "given"})["api_key"] == "given"


def test_switches_are_read_as_a_playbooks_are():
    # A templated value arrives as text: "false" is false, not a non-empty string.
    assert source.settings({"audit_events": "false", "initial_events": "no"})["audit_events"] is False
    assert source.settings({"audit_events": "false", "initial_events": "no"})["initial_events"] is False
    assert source.settings({"audit_events": "true", "initial_events": True})["audit_events"] is True
