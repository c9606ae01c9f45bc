# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The launch protocol of docs/launch-protocol.md, step by step, against a scripted API and a fake clock.

Each test drives :class:`Launcher` through one path (adopt in the turn, 429 then a later turn, an unclear answer
then reconcile, settle against a racer, capacity failover) and checks every request it sent, in order.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest

from ansible_collections.lambdalabs.cloud.plugins.module_utils._api import INSUFFICIENT_CAPACITY, instance_launch_times
from ansible_collections.lambdalabs.cloud.plugins.module_utils._client import LambdaCloudError
from ansible_collections.lambdalabs.cloud.plugins.module_utils._launch import (
    Candidates,
    Launcher,
    LaunchFailed,
    LaunchOutcome,
    after_racers,
    confirm_floor,
    launch_candidates,
    launch_tags,
)
from ansible_collections.lambdalabs.cloud.tests.unit.plugins.module_utils.fake_clock import FakeClock

NAME = "node-1"
LAUNCH = "/instance-operations/launch"
TERMINATE = "/instance-operations/terminate"
A10 = "gpu_1x_a10"
A100 = "gpu_1x_a100_sxm4"
H100x8 = "gpu_8x_h100_sxm5"
EAST = "us-east-1"
WEST = "us-west-2"


# --------------------------------------------------------------------- fakes
class FakePacer:
    """A turn without a lock file; every turn after the first waits ``interval`` on the fake clock."""

    def __init__(self, clock: FakeClock, interval: float = 12.0) -> None:
        self.clock = clock
        self.interval = interval
        self.turns = 0

    @contextlib.contextmanager
    def turn(self) -> Iterator[None]:
        if self.turns:
            self.clock.now += self.interval
        self.turns += 1
        yield


Answer = Any  # the answer's data, a LambdaCloudError to raise, or a callable of the body that returns either


class FakeClient:
    """Stands in for LambdaCloudClient: records each request and answers from a script per (method, path).

    The last answer of a path is repeated once the others are used up.
    """

    def __init__(self, clock: FakeClock, script: Mapping[tuple[str, str], list[Answer]], latency: float = 0) -> None:
        self.clock = clock
        self.script = {key: list(answers) for key, answers in script.items()}
        self.latency = latency
        self.requests: list[dict[str, Any]] = []

    def _answer(self, method: str, path: str, body: Any, **kwargs: Any) -> Any:
        self.requests.append({"method": method, "path": path, "body": body, **kwargs})
        self.clock.now += self.latency
        answers = self.script[(method, path)]
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        if callable(answer):
            answer = answer(body)
        if isinstance(answer, LambdaCloudError):
            raise answer
        return answer

    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        if path == "/audit-events" and ("GET", path) not in self.script:
            self.requests.append({"method": "GET", "path": path, "body": None})
            return {"events": [], "page_token": None}  # a trail without the launches: the lowest id decides
        return self._answer("GET", path, None)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        return self._answer("POST", path, body, **kwargs)

    def calls(self) -> list[str]:
        """Each request in one line: the method and path, and what a launch or a terminate was for."""
        lines = []
        for request in self.requests:
            line = f"{request['method']} {request['path']}"
            if request["path"] == LAUNCH:
                line += f" {request['body']['instance_type_name']} {request['body']['region_name']}"
            elif request["path"] == TERMINATE:
                line += " " + ",".join(request["body"]["instance_ids"])
            lines.append(line)
        return lines


# --------------------------------------------------------------------- answers and failures, as the client makes them
# The time of day when a run starts: 2027-01-15T08:00:00Z.
WALL = 1_800_000_000


def instance(instance_id: str, name: str = NAME, status: str = "active", mark: str | None = None) -> dict[str, Any]:
    """An instance as the API lists it; ``mark``: the key of the launch that made it (its launch-id tag)."""
    found = {
        "id": instance_id,
        "name": name,
        "status": status,
        "instance_type": {"name": A10},
        "region": {"name": EAST},
    }
    return found | {"tags": [{"key": "launch-id", "value": mark}] if mark else []}


def made(*ids: str) -> dict[str, Any]:
    """GET /audit-events: the launch events of these instances, in this order, a second apart."""
    events = [
        {"action": "launched", "event_time": f"2026-12-05T08:00:{second:02d}.000000Z", "resource_lrns": [lrn]}
        for second, lrn in enumerate(f"lrn:cloud:instance:{instance_id}" for instance_id in ids)
    ]
    return {"events": [{"action": "launched", "event_time": "garbled", "resource_lrns": []}, *events]}


def launched(instance_id: str) -> dict[str, Any]:
    return {"instance_ids": [instance_id]}


def itype(name: str, gpus: int, price: int, *regions: str) -> dict[str, Any]:
    return {
        "name": name,
        "specs": {"gpus": gpus},
        "price_cents_per_hour": price,
        "regions_with_capacity_available": [{"name": r} for r in regions],
    }


def types_answer(*types: Mapping[str, Any]) -> dict[str, Any]:
    """GET /instance-types as the API answers it."""
    return {
        t["name"]: {
            "instance_type": {k: v for k, v in t.items() if k != "regions_with_capacity_available"},
            "regions_with_capacity_available": t["regions_with_capacity_available"],
        }
        for t in types
    }


def api_error(status: int, code: str | None = None) -> LambdaCloudError:
    """An HTTP error answer with a JSON body: the server may have processed it only when it is a 5xx."""
    return LambdaCloudError(
        f"Lambda Cloud API error {status}{f' {code}' if code else ''}: refused",
        status=status,
        code=code,
        method="POST",
        path=LAUNCH,
        may_have_processed=status >= 500,
    )


def rate_limited(retry_after: float = 12.0) -> LambdaCloudError:
    return LambdaCloudError(
        "Lambda Cloud API error 429 global/too-many-requests: slow down",
        status=429,
        code="global/too-many-requests",
        method="POST",
        path=LAUNCH,
        retry_after=retry_after,
    )


def transport_error(kind: str) -> LambdaCloudError:
    """No HTTP answer: a timeout or a dropped connection may have been processed, a failed connect was not."""
    return LambdaCloudError(
        f"POST {LAUNCH}: {kind}",
        method="POST",
        path=LAUNCH,
        may_have_processed=kind in ("timeout", "dropped"),
        kind=kind,
    )


def no_capacity() -> LambdaCloudError:
    return api_error(400, INSUFFICIENT_CAPACITY)


# --------------------------------------------------------------------- driving the launcher
def body_for(region: str) -> dict[str, Any]:
    return {"name": NAME, "ssh_key_names": ["key"]}


def choose_all(wanted: list[str], regions: list[str] | None = None, **limits: Any) -> Callable[..., Candidates]:
    return lambda types: launch_candidates(types, wanted, regions, **limits)


class Run:
    """One Launcher over a fake client, pacer and clock, and what it logged."""

    def __init__(
        self,
        script: Mapping[tuple[str, str], list[Answer]],
        *,
        rate_limit_after: float = 600,
        confirm_timeout: float = 180,
        capacity_timeout: float = 0,
        latency: float = 0,
    ) -> None:
        self.clock = FakeClock()
        self.client = FakeClient(self.clock, script, latency)
        self.pacer = FakePacer(self.clock)
        self.logged: list[str] = []
        started = self.clock.now
        self.launcher = Launcher(
            self.client,  # type: ignore[arg-type]
            NAME,
            self.pacer,  # type: ignore[arg-type]
            rate_limit_deadline=self.clock.now + rate_limit_after,
            confirm_timeout=confirm_timeout,
            capacity_timeout=capacity_timeout,
            log=self.logged.append,
            clock=self.clock,
            sleep=self.clock.sleep,
            wall=lambda: WALL + self.clock.now - started,
        )
        self.launcher.run_key = "run"  # each launch's key and launch-id tag: run-0, run-1, ...

    def launch(self, types: list[dict[str, Any]], choose: Callable[..., Candidates]) -> LaunchOutcome:
        return self.launcher.launch(body_for, choose, types)

    def launch_bodies(self) -> list[dict[str, Any]]:
        return [r["body"] for r in self.client.requests if r["path"] == LAUNCH]


def sent(type_name: str = A10, region: str = EAST) -> str:
    """A launch request for this pair, as FakeClient.calls shows it."""
    return f"POST {LAUNCH} {type_name} {region}"


LOOK = "GET /instances"
TRAIL = "GET /audit-events"
OURS = "run-0"  # the key of the first launch
READ_TYPES = "GET /instance-types"
# The script's keys: what GET /instances, POST /instance-operations/launch, ... answer, in turn.
INSTANCES = ("GET", "/instances")
INSTANCE_TYPES = ("GET", "/instance-types")
AUDIT = ("GET", "/audit-events")
LAUNCHES = ("POST", LAUNCH)
TERMINATES = ("POST", TERMINATE)
TYPES = [itype(A10, 1, 75, EAST, WEST)]
ONE_PAIR = choose_all([A10], [EAST])


def results(outcome_or_error: LaunchOutcome | LaunchFailed) -> list[tuple[str, str, str, int]]:
    return [(a["instance_type"], a["region"], a["result"], a["tries"]) for a in outcome_or_error.attempts]


# --------------------------------------------------------------------- 1. look first, in turn
def test_an_instance_of_the_name_in_the_turn_is_adopted_and_nothing_is_launched():
    run = Run({INSTANCES: [[instance("i-9", name="other"), instance("i-5")]]})
    outcome = run.launch(TYPES, ONE_PAIR)
    assert run.client.calls() == [LOOK]
    assert (outcome.how, outcome.instance_id, outcome.created) == ("adopted", "i-5", False)
    assert results(outcome) == [(A10, EAST, "adopted", 1)]
    assert run.pacer.turns == 1 and run.clock.sleeps == []


def test_several_instances_of_the_name_in_the_turn_adopt_the_one_the_api_made_first():
    # Racers' instances before their settle steps: the one made first is the one every racer keeps.
    run = Run(
        {
            INSTANCES: [
                [instance("i-1", status="booting"), instance("i-7", status="booting")],
                [instance("i-1"), instance("i-7")],
            ],
            AUDIT: [made("i-7", "i-1")],
        }
    )
    outcome = run.launch(TYPES, ONE_PAIR)
    assert run.client.calls() == [LOOK, LOOK, TRAIL]
    assert (outcome.how, outcome.instance_id) == ("adopted", "i-7")
    assert run.pacer.turns == 1 and run.clock.sleeps == [1.5]  # the settle pause, after the turn


def test_a_booting_instance_in_the_turn_is_adopted_only_after_a_settle_pause_shows_the_racers():
    # The turn lists a racer's booting instance; the launch of another racer, which the API received first, is
    # listed only later. Adopting the first one seen would report an instance that its own run then terminates.
    run = Run(
        {
            INSTANCES: [
                [instance("i-7", status="booting")],
                [instance("i-3", status="booting"), instance("i-7", status="booting")],
                [instance("i-3", status="booting"), instance("i-7", status="terminating")],
            ],
        },
        latency=1.0,
    )
    outcome = run.launch(TYPES, ONE_PAIR)
    assert run.client.calls() == [LOOK, LOOK, LOOK]
    assert (outcome.how, outcome.instance_id) == ("adopted", "i-3")
    assert run.clock.sleeps == [2.0, 2.0]  # twice the look's roundtrip, over the least pause
    assert results(outcome) == [(A10, EAST, "adopted", 1)]


def test_a_booting_instance_that_ends_during_the_settle_pause_is_not_adopted_and_the_name_is_launched():
    run = Run({INSTANCES: [[instance("i-7", status="booting")], [], []], LAUNCHES: [launched("i-8")]})
    outcome = run.launch(TYPES, ONE_PAIR)
    assert run.client.calls() == [LOOK, LOOK, LOOK, sent(), LOOK]
    assert (outcome.how, outcome.instance_id) == ("launched", "i-8")
    assert results(outcome) == [(A10, EAST, "launched", 1)]


def test_racers_booting_under_one_name_are_looked_at_again_until_one_is_left():
    clock = FakeClock()
    booting = [instance("i-1", status="booting"), instance("i-2", status="booting")]
    client = FakeClient(clock, {INSTANCES: [[instance("i-2", status="booting")]]})
    left = after_racers(client, NAME, booting, clock.sleep)  # type: ignore[arg-type]
    assert [item["id"] for item in left] == ["i-2"] and clock.sleeps == [3.0]
    # Instances that are not booting are no race: a person decides, at once.
    settled = [instance("i-1"), instance("i-2")]
    assert after_racers(client, NAME, settled, clock.sleep) == settled and clock.sleeps == [3.0]  # type: ignore[arg-type]
    # Racers that never settle: looked at four times, then left as they are.
    stuck = FakeClient(clock, {INSTANCES: [booting]})
    assert len(after_racers(stuck, NAME, booting, clock.sleep)) == 2 and len(stuck.calls()) == 4  # type: ignore[arg-type]
    # One booting instance may be a racer's, with the launch of another that the API received first not listed yet:
    # it is looked at once more, and what that look lists is the answer.
    clock.sleeps.clear()
    late = FakeClient(clock, {INSTANCES: [[instance("i-3", status="booting"), instance("i-2", status="booting")]]})
    again = after_racers(late, NAME, [instance("i-2", status="booting")], clock.sleep, 1.5)  # type: ignore[arg-type]
    assert sorted(item["id"] for item in again) == ["i-2", "i-3"] and len(late.calls()) == 4 and clock.sleeps[0] == 1.5
    alone = FakeClient(clock, {INSTANCES: [[instance("i-2", status="booting")]]})
    assert len(after_racers(alone, NAME, [instance("i-2", status="booting")], clock.sleep)) == 1  # type: ignore[arg-type]
    assert len(alone.calls()) == 1


def test_an_instance_of_the_name_that_is_gone_is_not_adopted():
    gone = [instance("i-1", status="terminated"), instance("i-2", status="terminating"), instance("i-3", "node-10")]
    run = Run({INSTANCES: [gone], LAUNCHES: [launched("i-7")]})
    outcome = run.launch(TYPES, ONE_PAIR)
    assert run.client.calls() == [LOOK, sent(), LOOK]
    assert (outcome.how, outcome.instance_id) == ("launched", "i-7")


# --------------------------------------------------------------------- 2. one launch request
def test_a_clear_launch_is_one_request_with_an_idempotency_key_and_the_pacer_interval():
    run = Run({INSTANCES: [[], [instance("i-7")]], LAUNCHES: [launched("i-7")]})
    outcome = run.launch(TYPES, ONE_PAIR)
    assert run.client.calls() == [LOOK, sent(), LOOK]
    tags = [{"key": "launch-id", "value": OURS}, {"key": "launched-at", "value": "2027-01-15T08:00:00Z"}]
    assert run.launch_bodies() == [
        {"name": NAME, "ssh_key_names": ["key"], "instance_type_name": A10, "region_name": EAST, "tags": tags}
    ]
    post = run.client.requests[1]
    assert post["headers"] == {"Idempotency-Key": OURS}
    assert post["default_retry_after"] == run.pacer.interval
    assert (outcome.how, outcome.instance_id, outcome.instance_type, outcome.region) == ("launched", "i-7", A10, EAST)
    assert outcome.terminated is None and results(outcome) == [(A10, EAST, "launched", 1)]


def test_a_refusal_that_was_not_processed_fails_at_once_without_reconciling():
    for error in (api_error(400, "global/invalid-parameters"), transport_error("connect")):
        run = Run({INSTANCES: [[]], LAUNCHES: [error]})
        with pytest.raises(LaunchFailed) as failed:
            run.launch(TYPES, ONE_PAIR)
        assert run.client.calls() == [LOOK, sent()]
        assert failed.value.error is error and str(failed.value) == f"Launching {NAME} failed: {error}"
        assert results(failed.value) == [(A10, EAST, str(error), 1)]


# --------------------------------------------------------------------- 5. HTTP 429 is not a failure
def test_a_429_is_sent_again_in_the_next_turn_after_looking_again():
    run = Run({INSTANCES: [[], [], [instance("i-7")]], LAUNCHES: [rate_limited(), launched("i-7")]})
    outcome = run.launch(TYPES, ONE_PAIR)
    assert run.client.calls() == [LOOK, sent(), LOOK, sent(), LOOK]
    keys = {r["headers"]["Idempotency-Key"] for r in run.client.requests if r["path"] == LAUNCH}
    assert len(keys) == 1  # the same request, sent again
    assert run.pacer.turns == 2
    assert (outcome.how, outcome.instance_id) == ("launched", "i-7")
    assert results(outcome) == [(A10, EAST, "launched", 1)]


def test_a_429_turn_that_finds_the_name_adopts_it():
    run = Run({INSTANCES: [[], [instance("i-3")]], LAUNCHES: [rate_limited()]})
    outcome = run.launch(TYPES, ONE_PAIR)
    assert run.client.calls() == [LOOK, sent(), LOOK]
    assert (outcome.how, outcome.instance_id) == ("adopted", "i-3")


def test_429s_past_the_rate_limit_deadline_fail():
    # Turns come every 12 s: after the 429s at 0 and 12 s the next turn (24 s) begins within the 30 s deadline;
    # after the one at 24 s it would begin at 36 s, past it, so the launch fails then instead of waiting for it.
    run = Run({INSTANCES: [[]], LAUNCHES: [rate_limited()]}, rate_limit_after=30)
    with pytest.raises(LaunchFailed) as failed:
        run.launch(TYPES, ONE_PAIR)
    assert run.client.calls() == [LOOK, sent()] * 3
    assert run.pacer.turns == 3 and run.clock.now - 1000.0 <= 30
    assert failed.value.error.status == 429 and "429" in str(failed.value)


def test_a_429_asking_for_more_than_the_pacer_interval_is_waited_out_of_the_turn():
    run = Run({INSTANCES: [[]], LAUNCHES: [rate_limited(30), launched("i-7")]}, rate_limit_after=100)
    outcome = run.launch(TYPES, ONE_PAIR)
    assert run.client.calls() == [LOOK, sent(), LOOK, sent(), LOOK]
    assert run.clock.sleeps[0] == 18.0  # with the next turn's 12 s, the 30 s that Retry-After asked
    assert outcome.how == "launched"


def test_a_429_whose_retry_after_ends_past_the_deadline_fails_at_once():
    run = Run({INSTANCES: [[]], LAUNCHES: [rate_limited(60)]}, rate_limit_after=30)
    with pytest.raises(LaunchFailed) as failed:
        run.launch(TYPES, ONE_PAIR)
    assert run.client.calls() == [LOOK, sent()] and run.clock.sleeps == []
    assert failed.value.error.status == 429


# --------------------------------------------------------------------- 3. no launch after an unclear answer
@pytest.mark.parametrize(
    "error",
    [transport_error("timeout"), transport_error("dropped"), api_error(500), api_error(502)],
    ids=["timeout", "dropped", "500", "502"],
)
def test_an_unclear_answer_is_reconciled_by_name_and_the_instance_found_is_recovered(error):
    lists = [[], [], [], [instance("i-8", name="other"), instance("i-4", mark=OURS)]]
    run = Run({INSTANCES: lists, LAUNCHES: [error]})
    outcome = run.launch(TYPES, ONE_PAIR)
    assert run.client.calls() == [LOOK, sent()] + [LOOK] * 3
    assert (outcome.how, outcome.instance_id, outcome.instance_type, outcome.region) == ("recovered", "i-4", A10, EAST)
    assert outcome.created and outcome.terminated is None
    assert run.clock.sleeps == [5.0, 5.0] and outcome.seconds_to_appear == 10.0
    assert results(outcome) == [(A10, EAST, f"answer lost ({error.kind})", 1)]
    assert run.logged == [f"The launch of {NAME} was processed after all: found i-4."]


@pytest.mark.parametrize(
    "data",
    [{}, {"instance_ids": []}, {"instance_ids": [None]}, None, "<html>", [1]],
    ids=["empty", "no-ids", "null-id", "null", "html", "list"],
)
def test_a_garbled_success_is_an_unclear_answer_that_is_reconciled(data):
    # A 2xx that carries no instance id was processed all the same: the instance is found by name, not launched again.
    run = Run({INSTANCES: [[], [instance("i-4", mark=OURS)]], LAUNCHES: [data]})
    outcome = run.launch(TYPES, ONE_PAIR)
    assert run.client.calls() == [LOOK, sent(), LOOK]
    assert (outcome.how, outcome.instance_id) == ("recovered", "i-4")
    assert results(outcome) == [(A10, EAST, "answer lost (body)", 1)]


@pytest.mark.parametrize(("request_timeout", "floor"), [(1, 10), (2.5, 10), (5, 20), (30, 120)])
def test_the_confirm_window_has_a_floor_over_the_request_timeout(request_timeout, floor):
    assert confirm_floor(request_timeout) == floor


def test_an_unclear_answer_with_no_instance_by_the_confirm_timeout_fails_and_launches_nothing_else():
    error = transport_error("timeout")
    run = Run({INSTANCES: [[]], LAUNCHES: [error]}, confirm_timeout=20)
    with pytest.raises(LaunchFailed) as failed:
        run.launch([*TYPES, itype(A100, 1, 129, EAST)], choose_all([A10, A100], [EAST]))
    # Polls every 2 s (a tenth of the timeout) from 0 to 20 s: 11 looks, and never the second pair.
    assert run.client.calls() == [LOOK, sent()] + [LOOK] * 11
    assert run.clock.sleeps == [2.0] * 10
    assert failed.value.error is error
    assert "no instance named 'node-1' appeared within 20 s (launch_confirm_timeout)" in str(failed.value)
    assert "Nothing else was launched" in str(failed.value)
    assert results(failed.value) == [(A10, EAST, "answer lost (timeout)", 1)]


# --------------------------------------------------------------------- 4. settle, then one survivor
def test_settle_waits_twice_the_roundtrip_at_least_the_minimum():
    run = Run({INSTANCES: [[]], LAUNCHES: [launched("i-7")]})
    assert run.launch(TYPES, ONE_PAIR).how == "launched"
    assert run.clock.sleeps == [1.5]
    slow = Run({INSTANCES: [[]], LAUNCHES: [launched("i-7")]}, latency=2)
    assert slow.launch(TYPES, ONE_PAIR).how == "launched"
    assert slow.clock.sleeps == [8.0]  # the list and the launch took 4 s


def test_a_racer_with_a_lower_id_wins_and_our_duplicate_alone_is_terminated():
    # The audit trail does not show the launches (yet): the lowest id decides, alike for every racer.
    racers = [instance("i-100"), instance("i-200"), instance("i-050", name="other")]
    run = Run(
        {
            INSTANCES: [[], racers],
            LAUNCHES: [launched("i-200")],
            TERMINATES: [{"terminated_instances": [instance("i-200", status="terminating")]}],
        }
    )
    outcome = run.launch(TYPES, ONE_PAIR)
    assert run.client.calls() == [LOOK, sent(), LOOK, TRAIL, f"POST {TERMINATE} i-200"]
    assert (outcome.how, outcome.instance_id, outcome.terminated) == ("replaced", "i-100", "i-200")
    assert (outcome.instance_type, outcome.region) == (A10, EAST)
    assert [a["result"] for a in outcome.attempts] == ["duplicate of i-100, terminated"]
    assert run.logged == [f"A parallel run launched {NAME} too (i-100); terminating our duplicate i-200."]


def test_a_racer_with_a_higher_id_loses_and_nothing_is_terminated():
    run = Run({INSTANCES: [[], [instance("i-300"), instance("i-100")]], LAUNCHES: [launched("i-100")]})
    outcome = run.launch(TYPES, ONE_PAIR)
    assert run.client.calls() == [LOOK, sent(), LOOK, TRAIL]
    assert (outcome.how, outcome.instance_id, outcome.terminated) == ("launched", "i-100", None)


def test_the_instance_the_api_made_first_wins_whatever_its_id():
    # The audit trail shows i-300 made before ours (i-100): ours gives way, though its id is lower.
    run = Run(
        {
            INSTANCES: [[], [instance("i-300"), instance("i-100")]],
            LAUNCHES: [launched("i-100")],
            AUDIT: [made("i-300", "i-100")],
            TERMINATES: [{"terminated_instances": [instance("i-100", status="terminating")]}],
        }
    )
    outcome = run.launch(TYPES, ONE_PAIR)
    assert run.client.calls() == [LOOK, sent(), LOOK, TRAIL, f"POST {TERMINATE} i-100"]
    assert (outcome.how, outcome.instance_id, outcome.terminated) == ("replaced", "i-300", "i-100")
    # An instance the trail does not show yet counts as the latest: made first among those it shows wins.
    shown = Run({INSTANCES: [[], [instance("i-001"), instance("i-500")]], LAUNCHES: [launched("i-500")]})
    shown.client.script[AUDIT] = [made("i-500")]
    assert shown.launch(TYPES, ONE_PAIR).how == "launched"


def test_a_racer_made_first_but_listed_late_found_on_the_recheck_replaces_ours():
    # Alone at the settle step; by the time ours is active, a racer that the API made first shows in the list.
    run = Run(
        {
            INSTANCES: [[], [instance("i-200")], [instance("i-200"), instance("i-100", status="booting")]],
            LAUNCHES: [launched("i-200")],
            AUDIT: [made("i-100", "i-200")],
            TERMINATES: [{"terminated_instances": [instance("i-200", status="terminating")]}],
        }
    )
    outcome = run.launcher.recheck(run.launch(TYPES, ONE_PAIR))
    assert run.client.calls() == [LOOK, sent(), LOOK, LOOK, TRAIL, f"POST {TERMINATE} i-200"]
    assert (outcome.how, outcome.instance_id, outcome.terminated) == ("replaced", "i-100", "i-200")
    assert results(outcome) == [(A10, EAST, "duplicate of i-100, terminated", 1)]


def test_a_recheck_that_finds_an_instance_made_later_keeps_ours_and_terminates_nothing():
    # i-001 has the lower id, but the API made it after ours: a late launch, which its own run ends.
    run = Run(
        {
            INSTANCES: [[], [instance("i-200")], [instance("i-200"), instance("i-001")]],
            LAUNCHES: [launched("i-200")],
            AUDIT: [made("i-200", "i-001")],
        }
    )
    first = run.launch(TYPES, ONE_PAIR)
    assert run.launcher.recheck(first) is first
    assert run.client.calls() == [LOOK, sent(), LOOK, LOOK, TRAIL]


def test_a_late_launch_of_ours_after_another_runs_instance_is_terminated_by_us():
    # Our answer is lost; another run's i-9 shows first and does not end the look, since our launch may still be
    # carried out. It is, later (i-1, our tag): the API made it after i-9, so we end it and adopt i-9.
    lists = [[], [instance("i-9")], [instance("i-9"), instance("i-1", mark=OURS)]]
    run = Run(
        {
            INSTANCES: lists,
            LAUNCHES: [transport_error("timeout")],
            AUDIT: [made("i-9", "i-1")],
            TERMINATES: [{"terminated_instances": [instance("i-1", status="terminating")]}],
        },
        confirm_timeout=20,
    )
    outcome = run.launch(TYPES, ONE_PAIR)
    assert run.client.calls() == [LOOK, sent(), LOOK, LOOK, TRAIL, f"POST {TERMINATE} i-1"]
    assert (outcome.how, outcome.instance_id, outcome.terminated) == ("replaced", "i-9", "i-1")


def test_a_lost_launch_that_never_appears_adopts_another_runs_instance_at_the_end_of_the_look():
    run = Run({INSTANCES: [[], [instance("i-9")]], LAUNCHES: [transport_error("timeout")]}, confirm_timeout=20)
    outcome = run.launch(TYPES, ONE_PAIR)
    assert run.client.calls() == [LOOK, sent()] + [LOOK] * 11  # every 2 s until the 20 s are over
    assert (outcome.how, outcome.instance_id, outcome.created) == ("adopted", "i-9", False)
    assert results(outcome) == [(A10, EAST, "answer lost (timeout), adopted i-9", 1)]


def test_a_recovered_launch_rechecked_gives_way_to_an_instance_made_first():
    lists = [[], [instance("i-4", mark=OURS)], [instance("i-4", mark=OURS), instance("i-2")]]
    run = Run(
        {
            INSTANCES: lists,
            LAUNCHES: [transport_error("timeout")],
            AUDIT: [made("i-2", "i-4")],
            TERMINATES: [{"terminated_instances": [instance("i-4", status="terminating")]}],
        }
    )
    outcome = run.launcher.recheck(run.launch(TYPES, ONE_PAIR))
    assert run.client.calls() == [LOOK, sent(), LOOK, LOOK, TRAIL, f"POST {TERMINATE} i-4"]
    assert (outcome.how, outcome.instance_id, outcome.terminated) == ("replaced", "i-2", "i-4")


def test_an_adopted_instance_needs_no_recheck():
    run = Run({INSTANCES: [[instance("i-3")]]})
    outcome = run.launch(TYPES, ONE_PAIR)
    assert run.launcher.recheck(outcome) is outcome
    assert run.client.calls() == [LOOK]


# --------------------------------------------------------------------- capacity failover, limits, waiting for capacity
def test_insufficient_capacity_on_the_first_pair_fails_over_to_the_second():
    types = [itype(A10, 1, 75, EAST, WEST), itype(A100, 1, 129, EAST)]
    run = Run({INSTANCES: [[]], LAUNCHES: [no_capacity(), launched("i-7")]})
    outcome = run.launch(types, choose_all([A10, A100], [EAST, WEST]))
    assert run.client.calls() == [LOOK, sent(), LOOK, sent(A10, WEST), LOOK]
    keys = [r["headers"]["Idempotency-Key"] for r in run.client.requests if r["path"] == LAUNCH]
    assert keys == [f"{run.launcher.run_key}-0", f"{run.launcher.run_key}-1"]  # one key per pair
    assert (outcome.how, outcome.instance_id, outcome.instance_type, outcome.region) == ("launched", "i-7", A10, WEST)
    assert results(outcome) == [(A10, EAST, "insufficient-capacity", 1), (A10, WEST, "launched", 1)]


@pytest.mark.parametrize(
    "limits, wanted",
    [({"min_gpus": 8}, (H100x8, WEST)), ({"max_price_cents_per_hour": 100}, (A10, EAST))],
    ids=["min_gpus", "max_price"],
)
def test_limits_exclude_types_before_any_launch(limits, wanted):
    types = [itype(A100, 1, 129, EAST), itype(A10, 1, 75, EAST), itype(H100x8, 8, 2392, WEST)]
    run = Run({INSTANCES: [[]], LAUNCHES: [launched("i-7")]})
    outcome = run.launch(types, choose_all([A100, A10, H100x8], None, **limits))
    assert run.client.calls() == [LOOK, sent(*wanted), LOOK]
    assert (outcome.instance_type, outcome.region) == wanted


def test_no_capacity_anywhere_without_waiting_fails_without_a_request():
    types = [itype(A10, 1, 75), itype(A100, 1, 129, WEST)]
    run = Run({})
    with pytest.raises(LaunchFailed) as failed:
        run.launch(types, choose_all([A10, A100], [EAST]))
    assert run.client.calls() == []
    assert results(failed.value) == [(A10, EAST, "no-capacity", 1), (A100, EAST, "no-capacity", 1)]
    assert str(failed.value) == (
        f"No capacity for {NAME}: {A10} in {EAST}: no-capacity, {A100} in {EAST}: no-capacity. "
        f"Capacity right now: {A10}: no region; {A100}: {WEST}."
    )


def test_limits_that_exclude_every_type_leave_nothing_to_launch():
    run = Run({})
    with pytest.raises(LaunchFailed) as failed:
        run.launch(TYPES, choose_all([A10], [EAST], min_gpus=2))
    assert run.client.calls() == [] and failed.value.attempts == []


def test_waiting_for_capacity_looks_again_until_it_appears():
    none = types_answer(itype(A10, 1, 75))
    some = types_answer(itype(A10, 1, 75, EAST))
    run = Run({INSTANCE_TYPES: [none, some], INSTANCES: [[]], LAUNCHES: [launched("i-7")]}, capacity_timeout=60)
    outcome = run.launch([itype(A10, 1, 75)], choose_all([A10], [EAST]))
    assert run.client.calls() == [READ_TYPES, READ_TYPES, LOOK, sent(), LOOK]
    assert run.clock.sleeps == [6.0, 6.0, 1.5]  # a tenth of capacity_timeout between looks, then the settle pause
    assert (outcome.how, outcome.instance_id) == ("launched", "i-7")
    assert results(outcome) == [(A10, EAST, "launched", 3)]  # one entry per pair, with its count of looks
    assert run.logged == [f"No capacity for {NAME} (look {look}); looking again in 6 s." for look in (1, 2)]


def test_waiting_for_capacity_tries_a_pair_again_after_insufficient_capacity():
    run = Run(
        {
            INSTANCE_TYPES: [types_answer(itype(A10, 1, 75, EAST))],
            INSTANCES: [[]],
            LAUNCHES: [no_capacity(), launched("i-7")],
        },
        capacity_timeout=20,
    )
    outcome = run.launch(TYPES, choose_all([A10], [EAST]))
    assert run.client.calls() == [LOOK, sent(), READ_TYPES, LOOK, sent(), LOOK]
    assert outcome.how == "launched" and results(outcome) == [(A10, EAST, "launched", 2)]
    assert run.clock.sleeps == [2.0, 1.5]


def test_waiting_for_capacity_that_never_comes_fails_at_the_capacity_timeout():
    run = Run({INSTANCE_TYPES: [types_answer(itype(A10, 1, 75))]}, capacity_timeout=60)
    with pytest.raises(LaunchFailed) as failed:
        run.launch([itype(A10, 1, 75)], choose_all([A10], [EAST]))
    # Looks at 0, 6, ..., 60 s: 11 looks, 10 of them after reading the instance types again.
    assert run.client.calls() == [READ_TYPES] * 10
    assert run.clock.sleeps == [6.0] * 10
    assert results(failed.value) == [(A10, EAST, "no-capacity", 11)]
    assert str(failed.value).startswith(f"No capacity for {NAME} after 11 looks over 60 s: {A10} in {EAST}")


# --------------------------------------------------------------------- the order of launches, from the audit trail
def test_launch_times_are_each_instances_first_launch_event_over_the_trails_pages():
    first = made("i-1", "i-2") | {"page_token": "next"}
    second = {
        "events": [
            {"action": "launched", "event_time": "2026-12-05T07:59:59Z", "resource_lrns": ["lrn:cloud:instance:i-2"]}
        ]
    }
    noise = {"action": "terminated", "event_time": "2026-12-05T07:00:00Z", "resource_lrns": ["lrn:cloud:instance:i-1"]}
    second["events"].append(noise)
    client = FakeClient(FakeClock(), {AUDIT: [first, second]})
    times = instance_launch_times(client, ["i-1", "i-2", "i-3"], "2026-12-05T07:50:00Z")  # type: ignore[arg-type]
    assert sorted(times, key=times.get) == ["i-2", "i-1"] and "i-3" not in times
    assert times["i-1"] - times["i-2"] == 1.0
    # A trail that cannot be read (no permission, an error) tells nothing: the lowest id decides then.
    refused = FakeClient(FakeClock(), {AUDIT: [api_error(403)]})
    assert instance_launch_times(refused, ["i-1"], "2026-12-05T07:50:00Z") == {}  # type: ignore[arg-type]


def test_the_launch_tags_replace_a_given_launch_id_and_launched_at_and_keep_the_others():
    given = [{"key": "team", "value": "ml"}, {"key": "launch-id", "value": "x"}, {"key": "launched-at", "value": "y"}]
    assert launch_tags(given, "run-3", WALL + 61) == [
        {"key": "team", "value": "ml"},
        {"key": "launch-id", "value": "run-3"},
        {"key": "launched-at", "value": "2027-01-15T08:01:01Z"},
    ]
    assert given[1] == {"key": "launch-id", "value": "x"}  # the caller's tags are left as they were
