# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""lambda_instances: an Event-Driven Ansible source of the changes to a Lambda Cloud account's instances.

It polls the Lambda Cloud API and puts one event on the queue per change it sees:

- ``launched``: an instance appeared;
- ``active``, ``unhealthy``, ``booting``, ``terminating``: an instance's status changed to it;
- ``terminated``: an instance turned ``terminated``, or was gone after it was seen ``terminating``;
- ``preempted``: an instance turned ``preempted``, or was gone without being seen terminating;
- ``expired``: an instance's ``expires-at`` tag passed (once per instance).

With ``audit_events: true`` it also puts each new audit event of the account (``audit_event``), alternating its
requests between the instances and the audit trail, so that each poll is still one request.

Every event is ``{"lambda_instances": {"type", "instance": {"id", "name", "status", "instance_type", "region",
"cluster", "tags"}, "previous_status", "at"}}`` (``audit_event`` events carry ``event`` instead of ``instance``).

The first poll only learns what exists (no ``launched`` for instances that were there before the source started),
unless ``initial_events: true``. It never puts the API key in an event or a log line.

Arguments:
    api_key: the Lambda Cloud API key (default: the environment's LAMBDA_API_KEY)
    api_url: the API's URL (default: LAMBDA_API_URL, else https://cloud.lambda.ai/api/v1)
    interval: seconds between polls, at least 1 (default 15)
    audit_events: also emit the account's new audit events (default false)
    initial_events: emit ``launched`` for the instances that exist at the start (default false)
    max_backoff: the longest wait after failed polls, in seconds (default 300)

Example:
    sources:
      - lambdalabs.cloud.lambda_instances:
          interval: 15
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import sys
import time
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

# The collection's own client and tag readers: this file lies in
# <collections>/ansible_collections/lambdalabs/cloud/extensions/eda/plugins/event_source/.
_HERE = Path(os.path.abspath(__file__))  # not resolved: the collection may be a link
if len(_HERE.parents) > 7 and _HERE.parents[6].name == "ansible_collections":
    if str(_HERE.parents[7]) not in sys.path:
        sys.path.append(str(_HERE.parents[7]))

from ansible_collections.lambdalabs.cloud.plugins.module_utils._api import (  # noqa: E402
    CLUSTER_TAG,
    EXISTING_STATUSES,
    EXPIRY_TAG,
    audit_events_page,
    event_seconds,
    instance_type_name,
    list_instances,
    region_name,
    tags_to_dict,
)
from ansible_collections.lambdalabs.cloud.plugins.module_utils._client import (  # noqa: E402
    LambdaCloudClient,
    LambdaCloudError,
)
from ansible_collections.lambdalabs.cloud.plugins.module_utils._cost import parse_utc  # noqa: E402
from ansible_collections.lambdalabs.cloud.plugins.module_utils._validation import (  # noqa: E402
    InvalidParameter,
    switch,
)

LOGGER = logging.getLogger("lambdalabs.cloud.lambda_instances")
STATUS_EVENTS = ("booting", "active", "unhealthy", "terminating", "terminated", "preempted")
MIN_INTERVAL = 1.0


def summary(instance: Mapping[str, Any]) -> dict[str, Any]:
    """What an event says of an instance: never its Jupyter token or URL."""
    tags = tags_to_dict(instance.get("tags"))
    shown = {
        "id": str(instance.get("id")),
        "name": instance.get("name") or "",
        "status": instance.get("status"),
        "instance_type": instance_type_name(instance),
        "region": region_name(instance),
        "ip": instance.get("ip"),
        "tags": tags,
    }
    if tags.get(CLUSTER_TAG):
        shown["cluster"] = tags[CLUSTER_TAG]
    return shown


class InstanceTracker:
    """The instances as last seen, and the events that a new list of them makes: one per change."""

    def __init__(self, initial_events: bool = False) -> None:
        self.known: dict[str, dict[str, Any]] | None = None
        self.expired: set[str] = set()
        self.initial_events = initial_events

    def update(self, instances: list[Mapping[str, Any]], now: float) -> list[dict[str, Any]]:
        current = {str(i.get("id")): summary(i) for i in instances if isinstance(i, Mapping) and i.get("id")}
        first = self.known is None
        known = self.known or {}
        events: list[dict[str, Any]] = []
        for instance_id, instance in current.items():
            before = known.get(instance_id)
            if before is None:
                if first and not self.initial_events:
                    continue
                events.append(_event("launched", instance, None, now))
                if instance["status"] != "booting" and instance["status"] in STATUS_EVENTS:
                    events.append(_event(instance["status"], instance, None, now))
            elif before["status"] != instance["status"] and instance["status"] in STATUS_EVENTS:
                events.append(_event(instance["status"], instance, before["status"], now))
        for instance_id, before in known.items():
            if instance_id in current or before["status"] in ("terminated", "preempted"):
                continue
            gone = "terminated" if before["status"] == "terminating" else "preempted"
            events.append(_event(gone, before | {"status": gone}, before["status"], now))
        for instance_id, instance in current.items():
            when = parse_utc(instance["tags"].get(EXPIRY_TAG))
            if instance["status"] in EXISTING_STATUSES and when is not None and when.timestamp() <= now:
                if instance_id not in self.expired:
                    self.expired.add(instance_id)
                    events.append(_event("expired", instance, instance["status"], now))
        self.expired &= set(current)
        self.known = current
        return events


def _event(kind: str, instance: Mapping[str, Any], previous: str | None, now: float) -> dict[str, Any]:
    return {"type": kind, "instance": dict(instance), "previous_status": previous, "at": now}


class AuditTracker:
    """The audit events already emitted, so that each new one is emitted once: the next read starts a second before
    the newest event seen, and the events of that second already emitted are skipped."""

    OVERLAP = 1.0

    def __init__(self, start: float) -> None:
        self.start = start
        self.seen: dict[str, float] = {}  # event id -> its time, for the events at or after ``start``

    def query(self) -> dict[str, Any]:
        return {"start": datetime.fromtimestamp(self.start, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")}

    def update(self, events: list[Any], now: float) -> list[dict[str, Any]]:
        new = []
        for event in events:
            if not isinstance(event, Mapping):
                continue
            event_id, when = str(event.get("event_id") or ""), event_seconds(event.get("event_time"))
            if not event_id or when is None or event_id in self.seen:
                continue
            self.seen[event_id] = when
            new.append({"type": "audit_event", "event": dict(event), "at": now})
        if self.seen:
            self.start = max(self.start, max(self.seen.values()) - self.OVERLAP)
            self.seen = {event_id: when for event_id, when in self.seen.items() if when >= self.start}
        return new


def pause_after(failures: int, interval: float, retry_after: float | None, max_backoff: float) -> float:
    """How long to wait after ``failures`` failed polls in a row: the interval doubled for each, up to
    ``max_backoff``, and never less than the API's Retry-After."""
    backoff = min(max_backoff, interval * 2 ** max(0, failures - 1)) if failures else interval
    return max(backoff, retry_after or 0.0, MIN_INTERVAL)


def _seconds(args: Mapping[str, Any], name: str, default: float, minimum: float) -> float:
    """A number of seconds from the rulebook, from ``minimum`` to a day; a ValueError names the argument."""
    value = args.get(name, default)
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = math.nan
    if isinstance(value, bool) or not minimum <= seconds <= 86400:
        raise ValueError(f"lambda_instances: {name} must be from {minimum:g} to 86400 seconds, got {value!r}.")
    return seconds


def _switch(args: Mapping[str, Any], name: str) -> bool:
    """A yes/no argument, as a playbook's switches are read (a templated "false" is false); a ValueError names it."""
    try:
        return switch(name, args.get(name, False))
    except InvalidParameter as error:
        raise ValueError(f"lambda_instances: {name} {error.detail}") from None


def settings(args: Mapping[str, Any]) -> dict[str, Any]:
    """The source's arguments, checked; a ValueError names a bad one."""
    interval = _seconds(args, "interval", 15, MIN_INTERVAL)
    return {
        "api_key": args.get("api_key") or os.environ.get("LAMBDA_API_KEY"),
        "api_url": args.get("api_url") or os.environ.get("LAMBDA_API_URL"),
        "interval": interval,
        "max_backoff": _seconds(args, "max_backoff", 300, interval),
        "audit_events": _switch(args, "audit_events"),
        "initial_events": _switch(args, "initial_events"),
    }


async def main(queue: asyncio.Queue, args: dict[str, Any]) -> None:
    """Poll the API and put the events on ``queue``, until cancelled. One request per poll."""
    options = settings(args)
    client = LambdaCloudClient(options["api_key"], options["api_url"], max_attempts=1)
    instances = InstanceTracker(options["initial_events"])
    audit = AuditTracker(time.time())
    failures, turn = 0, 0
    try:
        while True:
            reading_audit = options["audit_events"] and turn % 2 == 1 and instances.known is not None
            try:
                if reading_audit:
                    page, _token = await asyncio.to_thread(audit_events_page, client, audit.query())
                    events = audit.update(page, time.time())
                else:
                    listed = await asyncio.to_thread(list_instances, client)
                    events = instances.update(listed, time.time())
            except Exception as error:  # the source outlives any failed poll
                failures += 1
                retry_after = error.retry_after if isinstance(error, LambdaCloudError) else None
                wait = pause_after(failures, options["interval"], retry_after, options["max_backoff"])
                LOGGER.warning("lambda_instances: poll %d failed (%s); next in %g s", failures, error, wait)
                await asyncio.sleep(wait)
                continue
            if failures:
                LOGGER.info("lambda_instances: the API answers again after %d failed poll(s)", failures)
            failures = 0
            turn += 1
            for event in events:
                await queue.put(event)
            await asyncio.sleep(options["interval"])
    finally:
        client.close()


if __name__ == "__main__":
    # Print the events of the account in LAMBDA_API_KEY (and LAMBDA_API_URL), one per line.

    class PrintQueue:
        async def put(self, event: dict[str, Any]) -> None:
            print(event, flush=True)

    asyncio.run(main(PrintQueue(), {"interval": 5}))  # type: ignore[arg-type]
