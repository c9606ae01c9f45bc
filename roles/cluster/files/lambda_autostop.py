# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Autostop for a Lambda Cloud cluster, run on its head node by the lambdalabs.cloud.cluster role.

Every ``interval`` seconds it reads the GPU utilization of every node of the cluster: the head's with nvidia-smi,
the others' over SSH with a key that may run nothing but that nvidia-smi query. When every GPU of every node has
stayed below ``threshold`` percent for ``minutes``, it does what ``action`` says:

- ``terminate``: it lists the account's instances, and terminates the cluster's (its ``cluster`` tag) through the
  Lambda Cloud API, with the key in ``key_file``: only when it sampled every one of them, so that it never ends a
  node it could not see idle;
- ``notify``: it only logs, and writes ``notice`` files, once per idle stretch.

Each decision is a line in /var/log/lambda-autostop.log. The idle stretch is kept in a state file between rounds;
a gap without rounds (a restart of the head node, a stopped watchdog) starts it again, so a node that was down is
never counted as idle. It uses the API key for these two requests and nothing else, and follows no redirect: the
key goes to the configured API URL only.

Only the Python standard library: a node need not have anything installed.

    lambda_autostop.py check    # one round: sample, decide, act
    lambda_autostop.py loop     # a round every interval seconds, one loop at a time (a lock); ends when the
                                # configuration is removed
    lambda_autostop.py stop     # ends the running loop
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

CONFIG = "/etc/lambda-autostop/config.json"
STATE = "/var/lib/lambda-autostop/state.json"
NOTICE = "/var/lib/lambda-autostop/notice"
LOG = "/var/log/lambda-autostop.log"
LOG_MAX = 1024 * 1024
LOCK = "/run/lambda-autostop.lock"
PID_FILE = "/run/lambda-autostop.pid"
QUERY = ["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"]
EXISTING = ("booting", "active", "unhealthy")
SSH_TIMEOUT = 15
API_TIMEOUT = 30
USER_AGENT = "lambdalabs.cloud-autostop"


# ---------------------------------------------------------------------- pure decisions
def parse_utilization(text):
    """The GPUs' utilization (percent) from nvidia-smi's CSV, one line per GPU; None when it is not that (no GPU,
    an error, a value that is no number)."""
    values = []
    for raw in (text or "").splitlines():
        cell = raw.strip().rstrip("%").strip()
        if not cell:
            continue
        try:
            value = float(cell)
        except ValueError:
            return None
        if not math.isfinite(value) or value < 0:
            return None
        values.append(value)
    return values or None


def decide(samples, threshold, minutes, idle_since, now):
    """What one round concludes from ``samples`` (node name -> the GPUs' utilization, or None when the node could
    not be read): ``(verdict, idle_since, line)``.

    ``verdict`` is ``busy`` (a GPU at or above ``threshold``), ``unknown`` (a node could not be read: never taken
    for idle), ``idle`` (all below, for less than ``minutes``) or ``stop`` (all below for ``minutes`` or more).
    ``idle_since`` is when the idle stretch began (None when there is none)."""
    unread = sorted(name for name, values in samples.items() if values is None)
    if not samples:
        return "unknown", None, "no node to sample"
    if unread:
        return "unknown", None, f"could not read {', '.join(unread)}: not idle"
    busy = sorted(name for name, values in samples.items() if max(values) >= threshold)
    peak = max(max(values) for values in samples.values())
    if busy:
        return "busy", None, f"busy: {', '.join(busy)} at or above {threshold:g}% (peak {peak:g}%)"
    since = now if idle_since is None else idle_since
    idle_for = now - since
    line = f"idle: {len(samples)} node(s) below {threshold:g}% (peak {peak:g}%) for {idle_for:.0f} s"
    line += f" of {minutes * 60:.0f} s"
    return ("stop" if idle_for >= minutes * 60 else "idle"), since, line


def cluster_instances(instances, cluster):
    """The account's existing instances whose ``cluster`` tag is ``cluster``."""
    found = []
    for instance in instances if isinstance(instances, list) else []:
        if not isinstance(instance, dict) or instance.get("status") not in EXISTING:
            continue
        tags = instance.get("tags") or []
        if any(isinstance(t, dict) and t.get("key") == "cluster" and t.get("value") == cluster for t in tags):
            found.append(instance)
    return found


def unsampled(instances, sampled_ids):
    """The cluster's instances that this watchdog does not sample (a node added after it was set up)."""
    return sorted(str(i.get("name") or i.get("id")) for i in instances if str(i.get("id")) not in sampled_ids)


# ---------------------------------------------------------------------- the node's side
def utc(now):
    return datetime.fromtimestamp(now, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def log(line, now=None):
    """A line in the log (root only); past LOG_MAX bytes, the log moves to LOG.1 and starts again."""
    try:
        if os.path.getsize(LOG) > LOG_MAX:
            os.replace(LOG, LOG + ".1")
    except OSError:
        pass
    with open(os.open(LOG, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640), "a", encoding="utf-8") as handle:
        handle.write(f"{utc(time.time() if now is None else now)} {line}\n")


def read_json(path, default):
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return default


def write_json(path, value):
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    temporary = path + ".new"
    with open(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", encoding="utf-8") as handle:
        json.dump(value, handle)
    os.replace(temporary, path)


def sample(config, node):
    """One node's GPU utilization, or None."""
    if node.get("local"):
        command = QUERY
    else:
        command = [
            "ssh", "-i", config["ssh_key"], "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
            "-o", f"UserKnownHostsFile={config['known_hosts']}", "-o", "StrictHostKeyChecking=yes",
            "-o", f"ConnectTimeout={SSH_TIMEOUT}", "-F", "/dev/null",
            f"{config['user']}@{node['address']}", " ".join(QUERY),
        ]  # fmt: skip
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=2 * SSH_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return parse_utilization(done.stdout) if done.returncode == 0 else None


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Refuses every redirect: urllib would send the Authorization header on to wherever a redirect points."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        raise urllib.error.HTTPError(req.full_url, code, f"redirect to another URL refused ({code})", headers, fp)


OPENER = urllib.request.build_opener(_NoRedirect)


def api(config, method, path, body=None):
    with open(config["key_file"], encoding="utf-8") as handle:
        key = handle.read().strip()
    request = urllib.request.Request(
        config["api_url"].rstrip("/") + path,
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json", "User-Agent": USER_AGENT},
    )
    with OPENER.open(request, timeout=API_TIMEOUT) as answer:  # the configured API URL, and no other
        return json.load(answer).get("data")


def _said(error):
    """An error as the log may show it: a ValueError can quote a request header, the API key's among them."""
    return type(error).__name__ if isinstance(error, ValueError) else str(error)


def terminate(config, sampled_ids):
    """Terminate the cluster's instances, when every one of them was sampled; a line saying what happened."""
    try:
        members = cluster_instances(api(config, "GET", "/instances"), config["cluster"])
    except (OSError, ValueError, urllib.error.URLError) as error:
        return f"not stopped: the API's list of instances could not be read ({_said(error)}); trying again next round"
    if not members:
        return f"nothing to stop: the API lists no running instance of cluster {config['cluster']}"
    missed = unsampled(members, sampled_ids)
    if missed:
        return f"not stopped: {', '.join(missed)} of cluster {config['cluster']} are not sampled by this watchdog"
    ids = [str(member["id"]) for member in members]
    try:
        api(config, "POST", "/instance-operations/terminate", {"instance_ids": ids})
    except (OSError, ValueError, urllib.error.URLError) as error:
        return f"not stopped: terminating failed ({_said(error)}); trying again next round"
    names = ", ".join(sorted(str(member.get("name") or member["id"]) for member in members))
    return f"terminated cluster {config['cluster']}: {names}"


def labels(nodes):
    """A name per node for the log: its name, with its id where two nodes share it."""
    names = [node["name"] for node in nodes]
    return [node["name"] if names.count(node["name"]) == 1 else f"{node['name']} ({node['id']})" for node in nodes]


def stretch_start(state, basis, now, interval):
    """The idle stretch carried over from the last round, or None: a stretch does not survive a change of the
    threshold or the nodes, a gap without rounds (a restart, a stopped watchdog), or a clock that went back."""
    since, last = state.get("idle_since"), state.get("last_round")
    if since is None or state.get("basis") != basis or not isinstance(last, (int, float)):
        return None
    if now < since or now - last > 2 * interval + 2 * SSH_TIMEOUT:
        return None
    return since


def check(config, now=None):
    """One round: sample every node, decide, act; log the decision."""
    now = time.time() if now is None else now
    nodes = config["nodes"]
    with ThreadPoolExecutor(max_workers=min(16, max(1, len(nodes)))) as pool:
        values = list(pool.map(lambda node: sample(config, node), nodes))
    samples = dict(zip(labels(nodes), values))
    state = read_json(STATE, {})
    basis = json.dumps([config["threshold"], sorted(str(node["id"]) for node in nodes)])
    since = stretch_start(state, basis, now, float(config.get("interval", 30)))
    verdict, since, line = decide(samples, config["threshold"], config["minutes"], since, now)
    if verdict == "stop" and config["action"] == "terminate":
        line += "; " + terminate(config, {str(node["id"]) for node in nodes})
    elif verdict == "stop" and not state.get("notified"):
        line += f"; idle for {config['minutes']:g} min: notice written to {NOTICE} (action notify)"
        with open(NOTICE, "w", encoding="utf-8") as handle:
            handle.write(f"{utc(now)} cluster {config['cluster']} has been idle for {config['minutes']:g} min\n")
        state["notified"] = True
    if verdict != "stop":
        state.pop("notified", None)
    state.update(idle_since=since, last_round=now, basis=basis)
    write_json(STATE, state)
    log(line, now)
    return verdict


def _end(_signum, _frame):
    raise SystemExit(0)


def loop():
    """A round every interval seconds, while the configuration exists; one loop at a time (the lock)."""
    lock = os.open(LOCK, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return 0  # another loop runs
    signal.signal(signal.SIGTERM, _end)
    with open(PID_FILE, "w", encoding="utf-8") as handle:
        handle.write(f"{os.getpid()}\n")
    log("watchdog started")
    try:
        while True:
            config = read_json(CONFIG, None)
            if not config:
                log("watchdog ended: no configuration")
                return 0
            try:
                check(config)
            except Exception as error:  # one bad round must not end the watchdog
                said = _said(error)
                log(f"round failed: {type(error).__name__}" + ("" if said == type(error).__name__ else f": {said}"))
            time.sleep(max(1.0, float(config.get("interval", 30))))
    finally:
        try:
            os.unlink(PID_FILE)
        except OSError:
            pass


def stop(timeout=10.0):
    """End the running loop, if any, and wait until it has ended (so that a new one can take the lock). Only a
    process that holds the lock and runs this program is signalled: a stale PID file names nobody."""
    lock = os.open(LOCK, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return 0  # no loop holds the lock
    except OSError:
        pass
    finally:
        os.close(lock)
    pid = read_json(PID_FILE, None)
    try:
        with open(f"/proc/{int(pid)}/cmdline", "rb") as handle:
            ours = b"lambda_autostop.py" in handle.read()
    except (OSError, TypeError, ValueError):
        return 1
    if not ours or int(pid) <= 1:
        return 1
    os.kill(int(pid), signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not os.path.exists(f"/proc/{int(pid)}"):
            return 0
        time.sleep(0.1)
    return 1


def main(argv):
    command = argv[1] if len(argv) > 1 else ""
    if command == "check":
        config = read_json(CONFIG, None)
        if not config:
            print(f"No configuration in {CONFIG}.", file=sys.stderr)
            return 1
        print(check(config))
        return 0
    if command == "loop":
        return loop()
    if command == "stop":
        return stop()
    print("Usage: lambda_autostop.py check|loop|stop", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
