# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Launching one named instance: candidates and failover, waiting for capacity, and never launching twice.

The API has no idempotency guarantee, so :class:`Launcher` follows a protocol that converges anyway
(docs/launch-protocol.md explains it):

1. In its pacer turn, it lists the instances of the name first, and adopts one that exists.
2. It sends one launch, with an ``Idempotency-Key`` header that APIs honouring it use to drop repeats.
   The launch is tagged ``launch-id`` with that key, so that the run knows its own instance when the answer is lost.
3. When the answer may have been processed (a timeout, a lost connection, a 5xx, a success without an instance
   id), it never sends another launch: it looks for the name until its own instance appears (by its tag) or
   ``confirm_timeout`` ends. Another run's instance does not end the look, since this run's launch may still be
   carried out late; at the end, it adopts the survivor, or fails when there is none.
4. After a launch, it waits a settle period and lists the name again. When several instances have the name,
   every racer keeps the same survivor: the one the API made first, by the audit trail's launch events (the
   lowest id when the trail does not tell), so that an instance made late never wins over one that a run has
   already reported. A racer whose own instance lost terminates that one instance, and only it, then adopts the
   survivor.
5. :meth:`Launcher.recheck`, once the instance is active, applies the same rule to what appeared since.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ansible_collections.lambdalabs.cloud.plugins.module_utils._api import (
    INSUFFICIENT_CAPACITY,
    capacity_regions,
    cents,
    instance_launch_times,
    launch_instance,
    list_existing_named,
    list_instance_types,
    terminate_instances,
)
from ansible_collections.lambdalabs.cloud.plugins.module_utils._client import LambdaCloudClient, LambdaCloudError
from ansible_collections.lambdalabs.cloud.plugins.module_utils._cost import LAUNCHED_AT_TAG, utc_text
from ansible_collections.lambdalabs.cloud.plugins.module_utils._pacer import LaunchPacer

# The least pause after a launch before the name is listed again to catch a parallel racer; it is twice the
# time the list and the launch took, when that is longer.
MIN_SETTLE_SECONDS = 1.5
RECONCILE_POLL_SECONDS = 5.0
# The least time to look for an instance after an unclear launch answer. An API slow enough to let the request
# time out may process the launch well after that, so the look lasts several request timeouts, and never under 10 s.
MIN_CONFIRM_SECONDS = 10.0
CONFIRM_REQUEST_TIMEOUTS = 4
# How many times a name that several booting instances share is looked at again before it counts as ambiguous.
RACE_LOOKS = 4
# The tag that marks each launch with its key: the run whose answer was lost knows its own instance by it.
LAUNCH_TAG = "launch-id"
# How far back the audit trail is read for the launch times of the instances of a name: they were all made after
# the run listed the name and found none, give or take the clocks' difference.
LAUNCH_TIMES_MARGIN = 600


def after_racers(
    client: LambdaCloudClient,
    name: str,
    found: list[Mapping[str, Any]],
    sleep: Callable[[float], None] = time.sleep,
    pause: float = 2 * MIN_SETTLE_SECONDS,
) -> list[Mapping[str, Any]]:
    """The instances named ``name`` once racing runs have settled. A booting one may be a racer's, just launched,
    while the launch of another racer that the API received first is not listed yet; several, one booting, are most
    likely runs launching the name at once, each about to terminate its duplicate. So a booting instance is looked
    at again after ``pause``, and several are looked at again, ``pause`` apart, until one is left or a few looks
    have passed; whatever is left is the answer (several: a person decides which)."""
    for look in range(RACE_LOOKS):
        if not any(item.get("status") == "booting" for item in found) or (look and len(found) < 2):
            break
        sleep(pause)
        found = list_existing_named(client, name)
    return found


def launch_key(instance: Mapping[str, Any]) -> str | None:
    """The key of the launch that made ``instance`` (its ``launch-id`` tag), if it has one."""
    for tag in instance.get("tags") or ():
        if isinstance(tag, Mapping) and tag.get("key") == LAUNCH_TAG:
            return str(tag.get("value"))
    return None


def launch_tags(tags: list[Mapping[str, Any]] | None, key: str, now: float) -> list[dict[str, Any]]:
    """A launch's tags: the given ones, with ``launch-id`` set to the launch's key and ``launched-at`` to ``now``
    (seconds since the epoch), in place of any such tag given."""
    ours = {LAUNCH_TAG: key, LAUNCHED_AT_TAG: utc_text(now)}
    kept = [dict(tag) for tag in tags or () if tag.get("key") not in ours]
    return [*kept, *({"key": name, "value": value} for name, value in ours.items())]


def confirm_floor(request_timeout: float) -> float:
    """The shortest ``launch_confirm_timeout`` accepted with this ``request_timeout``."""
    return max(MIN_CONFIRM_SECONDS, CONFIRM_REQUEST_TIMEOUTS * float(request_timeout))


@dataclass
class Candidates:
    """The (type, region) pairs to try, in order of preference, and those of them with capacity now."""

    pairs: list[tuple[str, str]]
    available: list[tuple[str, str]]
    excluded: dict[str, str] = field(default_factory=dict)  # type -> why a limit excludes it


def launch_candidates(
    types: list[Mapping[str, Any]],
    wanted_types: list[str],
    wanted_regions: list[str] | None,
    min_gpus: int | None = None,
    max_price_cents_per_hour: int | None = None,
) -> Candidates:
    """All (type, region) pairs in order of preference, those with capacity now, and the types a limit excludes.

    Without ``wanted_regions`` every region where a type has capacity is eligible, in the API's order.
    ``min_gpus`` and ``max_price_cents_per_hour`` remove types before any launch, so failover never
    downgrades below them.
    """
    by_name = {t["name"]: t for t in types}
    result = Candidates([], [])
    for type_name in wanted_types:
        itype = by_name.get(type_name, {})
        gpus = (itype.get("specs") or {}).get("gpus", 0)
        price = cents(itype.get("price_cents_per_hour"))
        if min_gpus is not None and gpus < min_gpus:
            result.excluded[type_name] = f"{gpus} GPU(s), fewer than min_gpus={min_gpus}"
            continue
        if max_price_cents_per_hour is not None and price > max_price_cents_per_hour:
            result.excluded[type_name] = (
                f"{price} cents per hour, more than max_price_cents_per_hour={max_price_cents_per_hour}"
            )
            continue
        capacity = capacity_regions(itype)
        for region in wanted_regions or capacity:
            result.pairs.append((type_name, region))
            if region in capacity:
                result.available.append((type_name, region))
    return result


def describe_capacity(types: list[Mapping[str, Any]], wanted_types: list[str]) -> str:
    by_name = {t["name"]: t for t in types}
    parts = []
    for type_name in dict.fromkeys(wanted_types):
        regions = capacity_regions(by_name.get(type_name, {}))
        parts.append(f"{type_name}: {', '.join(regions) if regions else 'no region'}")
    return "; ".join(parts)


def describe_attempts(attempts: list[Mapping[str, Any]]) -> str:
    """'gpu_1x_a10 in us-east-1: insufficient-capacity, ...': every pair tried and what it gave last."""
    return ", ".join(f"{a['instance_type']} in {a['region']}: {a['result']}" for a in attempts) or "no pair"


class LaunchFailed(Exception):
    """No instance was launched or adopted; ``attempts`` says what each pair gave."""

    def __init__(self, message: str, attempts: list[dict[str, Any]], error: LambdaCloudError | None = None) -> None:
        super().__init__(message)
        self.attempts = attempts
        self.error = error


@dataclass
class LaunchOutcome:
    """What :meth:`Launcher.launch` did. ``how`` is launched, recovered (its answer was lost, then the
    instance was found), adopted (another run's instance) or replaced (a parallel racer's instance won, ours
    was terminated)."""

    instance_id: str
    how: str
    instance_type: str | None = None
    region: str | None = None
    attempts: list[dict[str, Any]] = field(default_factory=list)
    terminated: str | None = None
    seconds_to_appear: float | None = None

    @property
    def created(self) -> bool:
        return self.how in ("launched", "recovered", "replaced")

    def describe(self, name: str, placement: Mapping[str, Any]) -> tuple[str, str]:
        """The verb and the rest of the sentence that reports this outcome."""
        where = f"{placement.get('instance_type')} in {placement.get('region')}"
        if self.how == "recovered":
            return "launched", (
                f"instance {name} ({where}); its launch answer was lost, and the instance was found by name "
                f"{self.seconds_to_appear:g} s later"
            )
        if self.how == "replaced":
            return "launched", (
                f"instance {name}, but a parallel run had launched the same name first: terminated this run's "
                f"duplicate {self.terminated} and adopted {self.instance_id} ({where})"
            )
        if self.how == "adopted":
            return "adopted", (
                f"instance {name} ({self.instance_id}), launched by a parallel run or an earlier request, "
                "instead of launching another"
            )
        return "launched", f"instance {name} ({where})"


class Launcher:
    """Launches the instance ``name`` once: see the module docstring for the protocol."""

    def __init__(
        self,
        client: LambdaCloudClient,
        name: str,
        pacer: LaunchPacer,
        *,
        rate_limit_deadline: float,
        confirm_timeout: float,
        capacity_timeout: float = 0,
        log: Callable[[str], None] = lambda _text: None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.name = name
        self.pacer = pacer
        self.rate_limit_deadline = rate_limit_deadline
        self.confirm_timeout = confirm_timeout
        self.capacity_timeout = capacity_timeout
        self.log = log
        self.clock = clock
        self.sleep = sleep
        self.wall = wall  # the time of day, for the launched-at tag
        self.run_key = uuid.uuid4().hex
        self.attempts: list[dict[str, Any]] = []
        self.since = utc_text(wall() - LAUNCH_TIMES_MARGIN)

    def _attempt(self, type_name: str, region: str, result: str, *, tried: bool = True) -> None:
        """Record what a pair gave; a pair tried again (looking for capacity) keeps one entry with a count.
        ``tried=False`` updates the result of the last try (a duplicate found later) without counting a try."""
        for attempt in self.attempts:
            if (attempt["instance_type"], attempt["region"]) == (type_name, region):
                attempt["result"] = result
                attempt["tries"] += 1 if tried else 0
                return
        self.attempts.append({"instance_type": type_name, "region": region, "result": result, "tries": 1})

    def launch(
        self,
        body_for: Callable[[str], Mapping[str, Any]],
        choose: Callable[[list[Mapping[str, Any]]], Candidates],
        types: list[Mapping[str, Any]],
    ) -> LaunchOutcome:
        """Try the available pairs in order; without capacity, look again until ``capacity_timeout``."""
        deadline = self.clock() + self.capacity_timeout
        pause = min(15.0, max(2.0, self.capacity_timeout / 10))
        looks = 0
        while True:
            candidates = choose(types)
            looks += 1
            for type_name, region in candidates.available:
                body = dict(body_for(region), instance_type_name=type_name, region_name=region)
                outcome = self._try(body, type_name, region)
                if outcome is not None:
                    return outcome
            unavailable = [pair for pair in candidates.pairs if pair not in candidates.available]
            for type_name, region in unavailable:
                self._attempt(type_name, region, "no-capacity")
            remaining = deadline - self.clock()
            if remaining <= 0:
                waited = f" after {looks} looks over {self.capacity_timeout:g} s" if self.capacity_timeout else ""
                raise LaunchFailed(
                    f"No capacity for {self.name}{waited}: {describe_attempts(self.attempts)}. "
                    f"Capacity right now: {describe_capacity(types, [t for t, _r in candidates.pairs] or [])}.",
                    self.attempts,
                )
            self.log(f"No capacity for {self.name} (look {looks}); looking again in {min(pause, remaining):g} s.")
            self.sleep(min(pause, remaining))
            types = list_instance_types(self.client)

    def _try(self, body: dict[str, Any], type_name: str, region: str) -> LaunchOutcome | None:
        """One pair: adopt, launch, or wait out 429s turn after turn. None when the pair has no capacity."""
        key = f"{self.run_key}-{len(self.attempts)}"
        pause = 0.0  # after a 429: what Retry-After asks beyond the pacer's interval, waited outside the turn
        while True:
            if pause > 0:
                self.sleep(pause)
            with self.pacer.turn():
                started = self.clock()
                existing = list_existing_named(self.client, self.name)
                if existing:
                    roundtrip = self.clock() - started
                    break  # adopted below, out of the turn
                try:
                    tagged = dict(body, tags=launch_tags(body.get("tags"), key, self.wall()))
                    instance_id = launch_instance(
                        self.client, tagged, key, self.pacer.interval, deadline=self.rate_limit_deadline
                    )
                except LambdaCloudError as error:
                    if error.code == INSUFFICIENT_CAPACITY:
                        self._attempt(type_name, region, "insufficient-capacity")
                        return None
                    wait = max(error.retry_after or 0.0, self.pacer.interval)
                    if error.status == 429 and self.clock() + wait < self.rate_limit_deadline:
                        pause = wait - self.pacer.interval
                        continue  # not processed: look again in the next turn, if it begins before the deadline
                    if error.may_have_processed:
                        self._attempt(type_name, region, f"answer lost ({error.kind})")
                        return self._reconcile(error, key, type_name, region)
                    self._attempt(type_name, region, str(error))
                    raise LaunchFailed(f"Launching {self.name} failed: {error}", self.attempts, error) from None
                roundtrip = self.clock() - started
            self._attempt(type_name, region, "launched")
            return self._settle(instance_id, type_name, region, roundtrip)
        survivor = self._adopt(existing, roundtrip)
        if survivor is None:  # they ended meanwhile: nothing to adopt, so the pair is tried again
            return self._try(body, type_name, region)
        self._attempt(type_name, region, "adopted")
        return LaunchOutcome(survivor, "adopted", attempts=self.attempts)

    def _adopt(self, existing: list[Mapping[str, Any]], roundtrip: float) -> str | None:
        """The survivor of the instances of the name found in the turn, once racers have settled
        (:func:`after_racers`), so that this run reports the instance that every racer keeps; None when they ended
        meanwhile."""
        existing = after_racers(self.client, self.name, existing, self.sleep, max(MIN_SETTLE_SECONDS, 2 * roundtrip))
        return self._survivor(str(existing[0]["id"]), existing) if existing else None

    def _reconcile(self, error: LambdaCloudError, key: str, type_name: str, region: str) -> LaunchOutcome:
        """After an answer that may have been processed: look for this launch's instance by name and tag until
        ``confirm_timeout``, never launch again; then the survivor of the name decides what this run keeps."""
        start = self.clock()
        while True:
            found = list_existing_named(self.client, self.name)
            own = next((str(item["id"]) for item in found if launch_key(item) == key and item.get("id")), None)
            if own is not None:
                self.log(f"The launch of {self.name} was processed after all: found {own}.")
                appeared = round(self.clock() - start, 1)
                outcome = LaunchOutcome(own, "recovered", type_name, region, self.attempts, seconds_to_appear=appeared)
                survivor = self._survivor(own, found)
                if survivor == own:
                    return outcome
                return self._give_way(own, survivor, type_name, region, "Another run")
            remaining = start + self.confirm_timeout - self.clock()
            if remaining <= 0 and found:
                # This run's launch never appeared: another run's instance of the name is the one to keep.
                survivor = self._survivor(str(found[0]["id"]), found)
                self._attempt(type_name, region, f"answer lost ({error.kind}), adopted {survivor}", tried=False)
                return LaunchOutcome(survivor, "adopted", attempts=self.attempts)
            if remaining <= 0:
                raise LaunchFailed(
                    f"The answer to the launch of {self.name} ({type_name} in {region}) was lost ({error}), and no "
                    f"instance named {self.name!r} appeared within {self.confirm_timeout:g} s (launch_confirm_timeout)."
                    " Nothing else was launched. A re-run adopts the instance if it appears later, and launches it "
                    "if it never does.",
                    self.attempts,
                    error,
                )
            self.sleep(min(RECONCILE_POLL_SECONDS, max(0.5, self.confirm_timeout / 10), remaining))

    def recheck(self, outcome: LaunchOutcome) -> LaunchOutcome:
        """List the name once more before reporting (after the instance became active): the survivor of the name
        may be another run's instance that was not listed yet at the settle step. When it is, this run terminates
        its own and adopts it."""
        if outcome.how not in ("launched", "recovered"):
            return outcome
        survivor = self._survivor(outcome.instance_id)
        if survivor == outcome.instance_id:
            return outcome
        type_name, region = outcome.instance_type or "", outcome.region or ""
        return self._give_way(outcome.instance_id, survivor, type_name, region, "A parallel run")

    def _settle(self, own: str, type_name: str, region: str, roundtrip: float) -> LaunchOutcome:
        """List the name again after a pause; of several instances, the survivor (:meth:`_survivor`) is kept
        everywhere."""
        self.sleep(max(MIN_SETTLE_SECONDS, 2 * roundtrip))
        survivor = self._survivor(own)
        if survivor == own:
            return LaunchOutcome(own, "launched", type_name, region, self.attempts)
        return self._give_way(own, survivor, type_name, region, "A parallel run")

    def _survivor(self, own: str, found: list[Mapping[str, Any]] | None = None) -> str:
        """The instance of the name that every racer keeps, this run's own included: the one the API made first by
        the audit trail, then the lowest id (an instance the trail does not show yet counts as the latest)."""
        listed = found if found is not None else list_existing_named(self.client, self.name)
        ids = {str(item["id"]) for item in listed if item.get("id")} | {own}
        if len(ids) == 1:
            return own
        made = instance_launch_times(self.client, ids, self.since)
        return min(ids, key=lambda instance_id: (instance_id not in made, made.get(instance_id, 0.0), instance_id))

    def _give_way(self, own: str, survivor: str, type_name: str, region: str, who: str) -> LaunchOutcome:
        """Terminate this run's own instance, and only it, and adopt the survivor."""
        self.log(f"{who} launched {self.name} too ({survivor}); terminating our duplicate {own}.")
        terminate_instances(self.client, [own])
        self._attempt(type_name, region, f"duplicate of {survivor}, terminated", tried=False)
        return LaunchOutcome(survivor, "replaced", type_name, region, self.attempts, terminated=own)
