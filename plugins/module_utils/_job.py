# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A job on a cluster's nodes: the check before it starts, the script each node runs, and the watch that ends it.

The plan (``job_plan``) refuses a job that could end in a teardown of the wrong thing: no cluster name, a name that
matches no cluster, a cluster without an active node, an inventory that does not hold the nodes the API lists. The
watch (``JobWatch``) decides, poll by poll, whether a node's job runs, ended, or must be given up: the node stopped
answering for the heartbeat, left ``active``, ran out of time, or another node's job failed.
"""

from __future__ import annotations

import base64
import os
import secrets
import shlex
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from ansible_collections.lambdalabs.cloud.plugins.module_utils._api import (
    CLUSTER_TAG,
    EXPIRY_TAG,
    is_existing,
    natural_key,
    tag_of,
)
from ansible_collections.lambdalabs.cloud.plugins.module_utils._cluster import check_cluster_name, cluster_group
from ansible_collections.lambdalabs.cloud.plugins.module_utils._cost import parse_utc
from ansible_collections.lambdalabs.cloud.plugins.module_utils._validation import (
    InvalidParameter,
    check_text,
    seconds,
    switch,
)
from ansible_collections.lambdalabs.cloud.plugins.module_utils._wait import duration

RUN_ON = ("head", "all")
# Time between the job's time limit and the cluster's expiry: the log copy and the teardown fit in it.
EXPIRY_MARGIN = 600
EXIT_FILE, LOG_FILE, PID_FILE = "exit", "job.log", "pid"
STATUS_MARK = "@@lambda-job"


def _clusters(instances: list[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    found: dict[str, list[Mapping[str, Any]]] = {}
    for instance in instances:
        name = tag_of(instance, CLUSTER_TAG)
        if name and is_existing(instance):
            found.setdefault(name, []).append(instance)
    return found


def _listing(clusters: Mapping[str, list[Any]]) -> str:
    if not clusters:
        return "the account has no cluster"
    shown = ", ".join(f"{name} ({len(nodes)} node(s))" for name, nodes in sorted(clusters.items()))
    return f"clusters in the account: {shown}"


@dataclass(frozen=True)
class JobOptions:
    """The run_and_teardown variables that shape the plan, checked as the user gave them (``-e`` gives strings)."""

    run_on: str = "head"
    timeout: float = 86400
    require_expiry: bool = True
    margin: float = EXPIRY_MARGIN
    forks: int = 5
    log_dir: str = "lambda-job-logs"

    @classmethod
    def checked(
        cls,
        run_on: Any = "head",
        timeout: Any = 86400,
        require_expiry: Any = True,
        margin: Any = EXPIRY_MARGIN,
        forks: Any = 5,
        log_dir: Any = "lambda-job-logs",
    ) -> JobOptions:
        if run_on not in RUN_ON:
            raise InvalidParameter("run_on", f"must be head or all, got {run_on!r}.")
        check_text("run_log_dir", log_dir)
        return cls(
            run_on=run_on,
            timeout=seconds("run_timeout", timeout, 366 * 86400) or 86400,
            require_expiry=switch("run_require_expiry", require_expiry),
            margin=seconds("run_expiry_margin", margin, 86400),
            forks=int(seconds("forks", forks, 10**6)),
            log_dir=log_dir,
        )


def job_plan(
    instances: list[Mapping[str, Any]],
    cluster: Any,
    inventory: Mapping[str, Any],
    options: JobOptions | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """Where a job runs, and for how long; ``error`` is one line when it must not start.

    ``instances`` is what the API lists, ``inventory`` maps the hosts of the cluster's inventory group to their
    instance ids (``lambda_id``). The job's time limit is cut to end ``options.margin`` before the cluster's expiry.
    """
    options = options or JobOptions()
    plan: dict[str, Any] = {"error": None, "head": None, "targets": [], "ids": {}, "watch_ids": {}, "msg": ""}
    plan["timeout"] = options.timeout
    clusters = _clusters(instances)
    try:
        if cluster in (None, ""):
            raise InvalidParameter("lambda_cluster_name", "is required: give the cluster the job runs on.")
        check_cluster_name(cluster)
    except InvalidParameter as error:
        return dict(plan, error=f"{error} {_listing(clusters).capitalize()}. Nothing was run or terminated.")
    group = cluster_group(cluster)
    plan.update(group=group, cluster=cluster)
    nodes = clusters.get(cluster, [])
    active = {i["id"]: i for i in nodes if i.get("status") == "active"}
    if not nodes:
        plan["error"] = f"No cluster named {cluster!r}: {_listing(clusters)}. Nothing was run or terminated."
        return plan
    if not active:
        plan["error"] = (
            f"Cluster {cluster} has no active node ({_statuses(nodes)}): provision it again, or wait for its nodes. "
            "Nothing was run or terminated."
        )
        return plan
    problem = _inventory_problem(cluster, group, active, inventory)
    hosts = sorted(inventory, key=natural_key)
    targets = hosts if options.run_on == "all" else hosts[:1]
    if not problem and len(targets) > options.forks:
        problem = (
            f"The job runs on {len(targets)} nodes but Ansible has {options.forks} forks: run with -f {len(targets)}."
        )
    if problem:
        return dict(plan, error=f"{problem} Nothing was run or terminated.")
    plan = _placed(plan, cluster, hosts, targets, inventory, options, now)
    plan = _bounded_by_expiry(plan, cluster, list(active.values()), options, now)
    if not plan["error"]:
        plan["summary"] = (
            f"The job {plan['run_id']} runs on {', '.join(targets)}; the logs come to {plan['log_dir']}. {plan['msg']}"
        )
    return plan


def _placed(
    plan: dict[str, Any],
    cluster: str,
    hosts: list[str],
    targets: list[str],
    inventory: Mapping[str, Any],
    options: JobOptions,
    now: float | None,
) -> dict[str, Any]:
    """The plan with where the job runs, its run id and where its logs go."""
    started = datetime.fromtimestamp(time.time() if now is None else now, timezone.utc)
    run_id = f"{started:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"
    plan.update(
        head=hosts[0],
        targets=targets,
        # A job on every node needs their rank variables, written for this many nodes.
        env_nodes=len(targets) if options.run_on == "all" else 0,
        ids=dict(inventory),
        # The head node's watch reads the API for every node of the job (one request for all); the others' do not.
        watch_ids={host: [inventory[t] for t in targets] if host == hosts[0] else [] for host in targets},
        run_id=run_id,
        log_dir=os.path.abspath(os.path.join(os.path.expanduser(options.log_dir), f"{cluster}-{run_id}")),
    )
    return plan


def _statuses(nodes: list[Mapping[str, Any]]) -> str:
    counts: dict[str, int] = {}
    for node in nodes:
        counts[str(node.get("status"))] = counts.get(str(node.get("status")), 0) + 1
    return ", ".join(f"{count} {status}" for status, count in sorted(counts.items()))


def _inventory_problem(cluster: str, group: str, active: Mapping[str, Any], inventory: Mapping[str, Any]) -> str:
    """Why the inventory cannot be trusted with this job, or an empty string."""
    if not inventory:
        return (
            f"The inventory has no host in group {group}, but the API lists {len(active)} active node(s) of cluster "
            f"{cluster}: give the cluster's inventory with -i, or read the warnings of its inventory source, which "
            "could not be read."
        )
    unknown = sorted((host for host, node_id in inventory.items() if node_id not in active), key=natural_key)
    missing = sorted((str(node.get("name") or node_id) for node_id, node in active.items()), key=natural_key)
    missing = [name for name in missing if name not in inventory and _id_of(active, name) not in inventory.values()]
    if unknown:
        return (
            f"The inventory's group {group} holds {', '.join(unknown)}, which the API does not list as active nodes "
            f"of cluster {cluster}: refresh the inventory (its cache may be stale)."
        )
    if missing:
        return (
            f"The inventory misses active node(s) {', '.join(missing)} of cluster {cluster}: refresh the inventory, "
            "or read the warnings of its source."
        )
    return ""


def _id_of(active: Mapping[str, Any], name: str) -> Any:
    return next((node_id for node_id, node in active.items() if node.get("name") == name), None)


def _bounded_by_expiry(
    plan: dict[str, Any], cluster: str, active: list[Mapping[str, Any]], options: JobOptions, now: float | None
) -> dict[str, Any]:
    """The job's time limit and what the plan says about the cluster's expiry (Lambda sets tags at launch only, so
    the expiry cannot be added to running nodes: it comes from lambda_cluster_ttl_hours at provision)."""
    current = time.time() if now is None else now
    expiries = [parse_utc(tag_of(node, EXPIRY_TAG)) for node in active]
    if any(when is None for when in expiries):
        if options.require_expiry:
            plan["error"] = (
                f"Cluster {cluster} has node(s) without an expires-at tag: if this controller stopped during the job, "
                "nothing would end the cluster. Provision it with lambda_cluster_ttl_hours (Lambda sets tags at "
                "launch only), or give -e run_require_expiry=false. Nothing was run or terminated."
            )
            return plan
        plan["msg"] = f"Cluster {cluster} has no expiry: if this controller stops, it bills until someone ends it."
        return plan
    first = min(when for when in expiries if when is not None)
    left = first.timestamp() - current - options.margin
    if left <= 0:
        plan["error"] = (
            f"Cluster {cluster} expires at {first:%Y-%m-%dT%H:%M:%SZ}, in {duration(first.timestamp() - current)}: "
            f"too soon for a job ({duration(options.margin)} are kept for the logs and the teardown: "
            "run_expiry_margin). Nothing was run or terminated."
        )
        return plan
    plan["timeout"] = min(options.timeout, left)
    plan["expires_at"] = first.strftime("%Y-%m-%dT%H:%M:%SZ")
    plan["msg"] = (
        f"Cluster {cluster} expires at {plan['expires_at']}: if this controller stops, reap terminates it then. "
        f"The job may run {duration(plan['timeout'])}."
    )
    return plan


# ------------------------------------------------------------------ on the node
def start_script(command: str, directory: str, env_file: str, nodes: int = 0) -> str:
    """The shell script that starts the job in ``directory`` (relative to the run user's home), detached from the
    connection: the job's output goes to its log, its exit status to EXIT_FILE, its process group to PID_FILE.

    With ``nodes``, the env file must be there and be written for that many nodes (NNODES), or the job does not
    start: a cluster that changed since the env file was written would give the job wrong ranks."""
    env = shlex.quote(env_file)
    job = f"set -o pipefail\nif [ -r {env} ]; then . {env}; fi\n( {command}\n) > {LOG_FILE} 2>&1\n"
    encoded = base64.b64encode(job.encode()).decode()
    quoted = shlex.quote(directory)
    check_env = (
        f'[ -r {env} ] || {{ echo {env}" cannot be read: run the lambdalabs.cloud.train playbook first" >&2; '
        "exit 3; }\n"
        f'found=$(. {env} && echo "$NNODES")\n'
        f'[ "$found" = {int(nodes)} ] || {{ echo {env}" is written for ${{found:-no}} node(s), not {int(nodes)}: '
        'run the lambdalabs.cloud.train playbook again" >&2; exit 3; }\n'
        if nodes
        else ""
    )
    return (
        "set -e\n"
        "cd\n"
        f"{check_env}"
        f"mkdir -p {quoted} && cd {quoted}\n"
        f"echo {encoded} | base64 -d > job.sh\n"
        f"rm -f {EXIT_FILE} {LOG_FILE}\n"
        # setsid: its own session, so the job outlives the connection and its whole group can be stopped.
        f"setsid bash -c 'echo $$ > {PID_FILE}; bash job.sh; echo $? > {EXIT_FILE}.new; mv {EXIT_FILE}.new "
        f"{EXIT_FILE}' < /dev/null > /dev/null 2>&1 &\n"
        "echo started\n"
    )


def status_script(directory: str, lines: int) -> str:
    """Prints the job's exit status (empty while it runs) and the last ``lines`` lines of its log."""
    quoted = shlex.quote(directory)
    return (
        f"cd && cd {quoted} || exit 4\n"
        f'echo "{STATUS_MARK} exit=$(cat {EXIT_FILE} 2>/dev/null)"\n'
        f"tail -n {int(lines)} {LOG_FILE} 2>/dev/null || true\n"
    )


def stop_script(directory: str) -> str:
    """Ends the job's whole process group, if it still runs, and records it as ended by SIGTERM (143)."""
    quoted = shlex.quote(directory)
    return (
        f"cd && cd {quoted} && [ ! -e {EXIT_FILE} ] || exit 0\n"
        # kill of the negative group id: the kernel signals the whole group at once, also a child being forked
        # meanwhile, which pkill, reading the processes one by one, could miss and leave running.
        f'kill -TERM "-$(cat {PID_FILE})" 2>/dev/null || true\n'
        f"[ -e {EXIT_FILE} ] || echo 143 > {EXIT_FILE}\n"
    )


def parse_status(stdout: str) -> tuple[int | None, list[str]]:
    """The exit status (None while the job runs) and the log's last lines, from what ``status_script`` printed."""
    lines = stdout.splitlines()
    for index, line in enumerate(lines):
        if line.startswith(f"{STATUS_MARK} exit="):
            value, after = line.split("=", 1)[1].strip(), index + 1
            return (int(value) if value.lstrip("-").isdigit() else None), lines[after:]
    raise ValueError(f"the node's answer has no job status: {stdout[-200:]!r}")


# ------------------------------------------------------------------ on the controller
class JobWatch:
    """What one node's job has come to, from the polls so far; times are a monotonic clock's."""

    def __init__(self, host: str, start: float, timeout: float, heartbeat: float, progress: float) -> None:
        self.host, self.start, self.timeout, self.heartbeat, self.progress = host, start, timeout, heartbeat, progress
        self.last_answer = start
        self.last_shown = start
        self.last_error = ""
        self.tail: list[str] = []
        self.rc: int | None = None

    def answered(self, now: float, rc: int | None, tail: list[str]) -> None:
        self.last_answer, self.rc, self.last_error = now, rc, ""
        if tail:
            self.tail = tail

    def silent(self, error: str) -> None:
        self.last_error = error

    def verdict(self, now: float, gone: str | None = None, peer: str | None = None) -> tuple[str, str] | None:
        """``(state, reason)`` once the watch is over, else None. ``gone`` says why the API no longer calls the
        node active; ``peer`` names another node whose job failed."""
        if self.rc is not None:
            state = "succeeded" if self.rc == 0 else "failed"
            return state, f"{self.host}: the job ended with exit status {self.rc}"
        if gone:
            return "lost", f"{self.host}: {gone}"
        if now - self.last_answer >= self.heartbeat:
            return "lost", (
                f"{self.host} did not answer for {duration(now - self.last_answer)} (run_heartbeat_seconds "
                f"{self.heartbeat:g}): {self.last_error or 'no answer'}"
            )
        if peer:
            return "stopped", f"{self.host}: stopped because {peer}"
        if now - self.start >= self.timeout:
            return "timed_out", f"{self.host}: the job ran out of its {duration(self.timeout)}"
        return None

    def progress_line(self, now: float) -> str | None:
        """A line to show, at most every ``progress`` seconds."""
        if now - self.last_shown < self.progress:
            return None
        self.last_shown = now
        last = self.tail[-1] if self.tail else "(no output yet)"
        waiting = f"; no answer for {duration(now - self.last_answer)}" if self.last_error else ""
        return f"{self.host}: running for {duration(now - self.start)}{waiting}; log: {last}"


def gone_reason(instance: Mapping[str, Any] | None) -> str | None:
    """Why a node no longer runs the job, from the API's view of it, or None while it is active."""
    if instance is None:
        return "the API no longer lists the node's instance"
    status = instance.get("status")
    return None if status == "active" else f"the node's instance is now {status}"


def job_report(results: Mapping[str, Any], plan: Mapping[str, Any], teardown_on_failure: Any = True) -> dict[str, Any]:
    """What the job came to on each node, from each node's cluster_job result (``results``: host -> result):
    a line a node, ``failure``, the reason of a node that failed by itself, ``message``, the line the run fails
    with (both empty when every node succeeded), and ``teardown``, whether the cluster goes."""
    lines, failures, tails = [], [], {}
    for host in plan["targets"]:
        result = results.get(host) or {}
        tails[host] = result.get("tail") or []
        state = result.get("state") or ("unreachable" if result.get("unreachable") else "not run")
        rc = result.get("rc")
        line = f"{host}: {state}" + (f", exit status {rc}" if rc is not None else "")
        line += f"; log: {result['log']}" if result.get("log") else "; no log (the node could not give it)"
        lines.append(line)
        if state != "succeeded":
            failures.append((state == "stopped", result.get("msg") or f"{host}: {state}"))
    # A node stopped because another failed is not the cause: the other one is.
    failure = min(failures)[1] if failures else ""
    message, teardown = "", switch("teardown_on_failure", teardown_on_failure) or not failures
    if failures:
        kept = "torn down" if teardown else "left running for a look"
        message = (
            f"The job on cluster {plan.get('cluster')} failed: {failure}. The cluster was {kept}. The logs are in "
            f"{plan.get('log_dir')}."
        )
    return {
        "ok": not failures,
        "teardown": teardown,
        "lines": lines,
        "tails": tails,
        "failure": failure,
        "message": message,
    }
