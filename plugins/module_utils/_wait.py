# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Waiting for instances to become active or to be gone (one instance, or many with one request per poll), and
for a node to accept a connection.

The clock and the sleep are parameters, so that the unit tests run the waits on a fake clock.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

# Statuses in which an instance will never become active again.
ENDED_STATUSES = frozenset({"terminated", "terminating", "preempted"})
TARGETS = ("active", "gone")
T = TypeVar("T")


def duration(seconds: float) -> str:
    """``2 min 10 s``, ``30 min``, ``1 h 5 min``, ``40 s``."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min" + (f" {seconds % 60} s" if seconds % 60 else "")
    return f"{seconds // 3600} h" + (f" {seconds % 3600 // 60} min" if seconds % 3600 // 60 else "")


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


# The time between two reads of a wait: a node that becomes active is noticed within it. A wait is all that its
# controller's run does meanwhile (one list request per poll, however many nodes), so it may use the API's one
# request per second; a 429 that still comes is waited out like any other.
POLL_CAP = 1.0


def poll_intervals(first: float = POLL_CAP, factor: float = 1.5, cap: float = POLL_CAP) -> Iterator[float]:
    """Poll intervals that grow from ``first`` by ``factor`` up to ``cap`` seconds: by default, every second."""
    interval = first
    while True:
        yield interval
        interval = min(cap, interval * factor)


def reached(instance: Mapping[str, Any] | None, target: str) -> bool | None:
    """Whether ``instance`` is where ``target`` wants it: True, False while it may get there, None if it will not by
    waiting (ended, gone, or unhealthy: only a restart or a replacement helps)."""
    status = instance.get("status") if instance else None
    if target == "gone":
        return status in (None, "terminated")
    if status == "active":
        return True
    if status is None or status in ENDED_STATUSES or status == "unhealthy":
        return None  # waiting cannot make it active
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

    Never raises for a slow or lost instance: the result says, per instance, whether it reached the target, was lost
    on the way (ended, gone, unhealthy), or timed out, and after how many seconds it got there. The wait ends at the
    first lost instance: the others are left ``waiting``, as waiting longer cannot make the group whole.
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
        if not pending or report.with_outcome("lost"):
            break
        remaining = start + timeout - clock()
        if remaining <= 0:
            break
        sleep(min(interval, remaining))
        look()
    if not report.with_outcome("lost"):
        for instance_id in pending:
            report.nodes[instance_id].outcome = "timeout"
    report.seconds = round(clock() - start, 3)
    return report


class PermanentConnectionError(Exception):
    """A connection failure that waiting cannot mend (a refused key, a changed host key); the message says what to
    fix."""


def permanent_ssh_problem(message: str, key_file: str | None = None) -> str | None:
    """What to fix when an SSH failure will not get better by waiting, or None when it may (a node still booting).

    ``message`` is what ssh said; ``key_file`` is the private key the connection offered."""
    text = " ".join(str(message).split())
    if "REMOTE HOST IDENTIFICATION HAS CHANGED" in text or "Host key verification failed" in text:
        line = re.search(r"Offending \S+ key in (\S+):(\d+)", text)
        host = re.search(r"Host key for (\S+) has changed", text)
        where = f"line {line.group(2)} of {line.group(1)}" if line else "the controller's known_hosts"
        fix = f"ssh-keygen -f {line.group(1)} -R {host.group(1)}" if line and host else "ssh-keygen -R <address>"
        return (
            f"the node's host key differs from the one in {where}: Lambda gives a terminated node's address to a new "
            f"node, whose key is new. If this node is new, forget the old key ({fix}) and run again."
        )
    if "Permission denied" in text and "publickey" in text:
        return (
            f"the node refused the SSH key {key_file or '(no key file given)'} (Permission denied (publickey)): give "
            "the private key of the Lambda SSH key the node was launched with (ansible_ssh_private_key_file), and the "
            "node's user (ansible_user, ubuntu on Lambda's images)."
        )
    if "too long for Unix domain socket" in text:
        path = re.search(r'path "([^"]+)" too long', text)
        return (
            f"ssh cannot create its control socket {path.group(1) if path else ''} (too long for a Unix socket, 108 "
            "bytes at most): set a shorter control_path_dir (ANSIBLE_SSH_CONTROL_PATH_DIR) or ControlPath."
        )
    return None


def call_until_connected(
    call: Callable[[], T],
    timeout: float,
    errors: tuple[type[BaseException], ...],
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    interval: float = 1.0,
    between: Callable[[BaseException], None] | None = None,
    permanent: Callable[[BaseException], str | None] | None = None,
) -> tuple[T, float]:
    """Call ``call`` until it raises none of ``errors`` (the connection failures), every ``interval`` seconds for
    up to ``timeout`` seconds; ``between`` runs after each failure (to reset the connection).

    Returns what ``call`` returned and the seconds from the start to the call that worked (0 when the first did).
    When time is up, the last failure is raised as it is; any other exception is raised at once. A failure that
    ``permanent`` explains raises :class:`PermanentConnectionError` with that explanation at once.
    """
    start = clock()
    while True:
        began = clock()
        try:
            return call(), round(began - start, 3)
        except errors as error:
            problem = permanent(error) if permanent is not None else None
            if problem:
                raise PermanentConnectionError(problem) from None
            remaining = start + timeout - clock()
            if remaining <= 0:
                raise
            if between is not None:
                between(error)
            sleep(min(interval, remaining))


def progress_line(nodes: Iterable[Mapping[str, Any]], state: str, elapsed: float, timeout: float) -> str:
    """One line on a long wait, such as ``3/8 active, 5 booting, 2 min 10 s of 30 min``: how many instances are
    there, the statuses of the others, and the time."""
    nodes = list(nodes)
    there = [node for node in nodes if node.get("outcome") == "reached"]
    counts: dict[str, int] = {}
    for node in nodes:
        if node.get("outcome") != "reached":
            status = str(node.get("status") or "gone")
            counts[status] = counts.get(status, 0) + 1
    others = "".join(f", {count} {status}" for status, count in sorted(counts.items()))
    return f"{len(there)}/{len(nodes)} {state}{others}, {duration(elapsed)} of {duration(timeout)}"


def sampling_line(host: str, samples: list[list[int]], total: int, elapsed: float, window: float) -> str:
    """One line while a node's GPU utilization is sampled over a window, such as ``node-1: 3/6 utilization samples
    (peak 0%), 10 min of 25 min``."""
    values = [value for sample in samples for value in sample]
    peak = f"peak {max(values)}%" if values else "no utilization read"
    return f"{host}: {len(samples)}/{total} utilization samples ({peak}), {duration(elapsed)} of {duration(window)}"


def instance_progress_line(args: Mapping[str, Any], status: str | None, elapsed: float, timeout: float) -> str:
    """One line while lambda_instance runs with wait, such as ``trainer-1: booting, waiting until active, 2 min 10 s
    so far (wait_timeout 30 min)``: the instance as the task names it, its status (None when it could not be read),
    and the time since the task began (a launch may first wait for capacity, so it can pass wait_timeout)."""
    label = args.get("name") or args.get("id") or "the instance"
    if args.get("name") and args.get("id"):
        label = f"{args['name']} ({args['id']})"
    state = args.get("state") or "present"
    goal = {"absent": "terminated", "restarted": "active again"}.get(state, "active")
    seen = f"{status}" if status else "status not read"
    return f"{label}: {seen}, waiting until {goal}, {duration(elapsed)} so far (wait_timeout {duration(timeout)})"
