# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Waiting for instances to become active or to be gone (one instance, or many with one request per poll), and
for a node to accept a connection.

The clock and the sleep are parameters, so that the unit tests run the waits on a fake clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

# Statuses in which an instance will never become active again.
ENDED_STATUSES = frozenset({"terminated", "terminating", "preempted"})
TARGETS = ("active", "gone")
T = TypeVar("T")


class WaitTimeout(Exception):
    """The instance did not reach the wanted state in time; it is left in place."""

    def __init__(self, instance: Mapping[str, Any] | None, instance_id: str, timeout: float) -> None:
        status = instance.get("status") if instance else "gone"
        super().__init__(f"instance {instance_id} was still '{status}' after {timeout:g} s")
        self.instance = instance
        self.instance_id = instance_id
        self.status = status


class InstanceLost(Exception):
    """The instance ended (terminated, preempted, vanished) while waiting for it to become active."""

    def __init__(self, instance: Mapping[str, Any] | None, instance_id: str) -> None:
        status = instance.get("status") if instance else "gone"
        super().__init__(f"instance {instance_id} became '{status}' while waiting for it to become active")
        self.instance = instance
        self.instance_id = instance_id
        self.status = status


def poll_intervals(first: float = 2.0, factor: float = 1.5, cap: float = 15.0) -> Iterator[float]:
    """Growing poll intervals: 2, 3, 4.5, ... up to ``cap`` seconds."""
    interval = first
    while True:
        yield interval
        interval = min(cap, interval * factor)


def reached(instance: Mapping[str, Any] | None, target: str) -> bool | None:
    """Whether ``instance`` is where ``target`` wants it: True, False while it may get there, None if it never will."""
    status = instance.get("status") if instance else None
    if target == "gone":
        return status in (None, "terminated")
    if status == "active":
        return True
    if status is None or status in ENDED_STATUSES:
        return None
    return False


def wait_for_instance(
    read: Callable[[], Mapping[str, Any] | None],
    instance_id: str,
    target: str,
    timeout: float,
    last: Mapping[str, Any] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    intervals: Iterable[float] | None = None,
) -> tuple[Mapping[str, Any] | None, int]:
    """Poll one instance with ``read`` until it is ``active`` or, for ``gone``, terminated or deleted.

    Returns the last instance read (None when gone) and the number of polls.
    Raises :class:`WaitTimeout` or, when waiting for ``active``, :class:`InstanceLost`.
    """
    deadline = clock() + timeout
    polls = 0
    instance = last
    for interval in intervals if intervals is not None else poll_intervals():
        remaining = deadline - clock()
        if remaining <= 0:
            raise WaitTimeout(instance, instance_id, timeout)
        sleep(min(interval, remaining))
        polls += 1
        instance = read()
        state = reached(instance, target)
        if state:
            return instance, polls
        if state is None:
            raise InstanceLost(instance, instance_id)
    raise WaitTimeout(instance, instance_id, timeout)


@dataclass
class NodeWait:
    """How waiting went for one instance of a group."""

    instance_id: str
    status: str | None = None
    seconds: float | None = None  # when it reached the target, counted from the start of the wait
    outcome: str = "waiting"  # reached, lost or timeout


@dataclass
class GroupWait:
    """The outcome of :func:`wait_for_instances`."""

    nodes: dict[str, NodeWait] = field(default_factory=dict)
    instances: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    polls: int = 0
    seconds: float = 0.0

    @property
    def done(self) -> bool:
        return all(node.outcome == "reached" for node in self.nodes.values())

    def with_outcome(self, outcome: str) -> list[NodeWait]:
        return [node for node in self.nodes.values() if node.outcome == outcome]


def wait_for_instances(
    read_all: Callable[[], list[Mapping[str, Any]]],
    instance_ids: Iterable[str],
    target: str,
    timeout: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    intervals: Iterable[float] | None = None,
    progress: Callable[[GroupWait], None] | None = None,
) -> GroupWait:
    """Wait for several instances at once: one ``read_all`` (one list request) per poll for all of them.

    Never raises for a slow or lost instance: the result says, per instance, whether it reached the target,
    was lost on the way, or timed out, and after how many seconds it got there.
    """
    start = clock()
    report = GroupWait(nodes={instance_id: NodeWait(instance_id) for instance_id in dict.fromkeys(instance_ids)})
    pending = set(report.nodes)

    def look() -> None:
        report.polls += 1
        current = {str(item.get("id")): item for item in read_all()}
        now = clock() - start
        for instance_id in list(pending):
            instance = current.get(instance_id)
            node = report.nodes[instance_id]
            node.status = instance.get("status") if instance else None
            if instance is not None:
                report.instances[instance_id] = instance
            state = reached(instance, target)
            if state is None or state:
                node.outcome = "reached" if state else "lost"
                node.seconds = round(now, 3) if state else None
                pending.discard(instance_id)
        if progress is not None:
            progress(report)

    if pending:
        look()
    for interval in intervals if intervals is not None else poll_intervals():
        if not pending:
            break
        remaining = start + timeout - clock()
        if remaining <= 0:
            break
        sleep(min(interval, remaining))
        look()
    for instance_id in pending:
        report.nodes[instance_id].outcome = "timeout"
    report.seconds = round(clock() - start, 3)
    return report


def call_until_connected(
    call: Callable[[], T],
    timeout: float,
    errors: tuple[type[BaseException], ...],
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    interval: float = 1.0,
    between: Callable[[BaseException], None] | None = None,
) -> tuple[T, float]:
    """Call ``call`` until it raises none of ``errors`` (the connection failures), every ``interval`` seconds for
    up to ``timeout`` seconds; ``between`` runs after each failure (to reset the connection).

    Returns what ``call`` returned and the seconds from the start to the call that worked (0 when the first did).
    When time is up, the last failure is raised as it is; any other exception is raised at once.
    """
    start = clock()
    while True:
        began = clock()
        try:
            return call(), round(began - start, 3)
        except errors as error:
            remaining = start + timeout - clock()
            if remaining <= 0:
                raise
            if between is not None:
                between(error)
            sleep(min(interval, remaining))
