# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The controller's side of cluster_job: start a job on the node, watch it, bring its log home.

Each node of a job runs this task at the same time (one fork each). The watch polls the node over the task's own
connection; a node that stops answering, or that the API no longer calls active, ends its watch within the
heartbeat. A failed watch leaves a marker in the log directory, and the other nodes' watches stop their jobs when
they see it, so that one dead node does not keep the rest running until the time limit.
"""

from __future__ import annotations

import os
import time

from ansible.errors import AnsibleActionFail, AnsibleConnectionFailure, AnsibleError
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.lambdalabs.cloud.plugins.module_utils._api import list_instances
from ansible_collections.lambdalabs.cloud.plugins.module_utils._client import (
    API_KEY_ENV,
    API_URL_ENV,
    LambdaCloudError,
    client_from_options,
)
from ansible_collections.lambdalabs.cloud.plugins.module_utils._job import (
    LOG_FILE,
    JobWatch,
    gone_reason,
    parse_status,
    start_script,
    status_script,
    stop_script,
)
from ansible_collections.lambdalabs.cloud.plugins.module_utils._validation import (
    InvalidParameter,
    check_text,
    seconds,
)
from ansible_collections.lambdalabs.cloud.plugins.plugin_utils._action_args import validated_args

display = Display()

FAILED_MARKER = ".failed"
ARGUMENT_SPEC = {
    "command": {"type": "str", "required": True},
    "run_id": {"type": "str", "required": True},
    "log_dir": {"type": "path", "required": True},
    "env_file": {"type": "str", "default": "/etc/lambda-cluster/env"},
    "nodes": {"type": "int", "default": 0},
    "timeout": {"type": "raw", "default": 86400},
    "heartbeat_seconds": {"type": "raw", "default": 60},
    "progress_seconds": {"type": "raw", "default": 30},
    "poll_seconds": {"type": "raw", "default": 2},
    "tail_lines": {"type": "int", "default": 20},
    "instance_id": {"type": "str"},
    "watch_ids": {"type": "list", "elements": "str", "default": []},
    "api_key": {"type": "str", "no_log": True},
    "api_url": {"type": "str"},
    "request_timeout": {"type": "float", "default": 10},
    "validate_certs": {"type": "bool", "default": True},
}


class ActionModule(ActionBase):
    _supports_check_mode = False
    _supports_async = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars or {})
        p = validated_args(ARGUMENT_SPEC, self._task.args, self._check)
        host = (task_vars or {}).get("inventory_hostname") or self._play_context.remote_addr
        directory = f".lambda-jobs/{p['run_id']}"
        os.makedirs(p["log_dir"], mode=0o700, exist_ok=True)
        try:  # a missing or malformed API key fails here, before the job starts, in one line
            api = _ApiWatch(p) if p["watch_ids"] else None
        except LambdaCloudError as error:
            raise AnsibleActionFail(str(error)) from None
        started = self._shell(start_script(p["command"], directory, p["env_file"], p["nodes"]))
        if started.get("rc") != 0:
            raise AnsibleActionFail(f"{host}: the job did not start: {_said(started)}")
        outcome = self._watch(host, p, directory, api)
        result.update(outcome)
        if outcome["state"] != "succeeded":
            self._mark_failed(p["log_dir"], outcome["msg"])
            result["failed"] = True
        result["changed"] = True
        return result

    @staticmethod
    def _check(p):
        if not p["command"].strip() or "\x00" in p["command"]:
            raise InvalidParameter("command", "must be a command to run, without NUL characters.")
        check_text("run_id", p["run_id"])
        if not p["run_id"].replace("-", "").isalnum():
            raise InvalidParameter("run_id", "must be letters, digits and '-'.")
        p["timeout"] = seconds("timeout", p["timeout"], 366 * 86400) or 86400
        p["heartbeat_seconds"] = max(1.0, seconds("heartbeat_seconds", p["heartbeat_seconds"], 86400))
        p["progress_seconds"] = max(1.0, seconds("progress_seconds", p["progress_seconds"], 86400))
        p["poll_seconds"] = max(0.5, seconds("poll_seconds", p["poll_seconds"], 3600))
        p["log_dir"] = os.path.abspath(p["log_dir"])
        p["api_key"] = p["api_key"] or os.environ.get(API_KEY_ENV)
        p["api_url"] = p["api_url"] or os.environ.get(API_URL_ENV)

    def _shell(self, script):
        """Run a shell script on the node as the task's user; the script goes to the shell's standard input."""
        return self._low_level_execute_command("/bin/sh", sudoable=True, in_data=script.encode())

    def _watch(self, host, p, directory, api):
        clock = time.monotonic
        watch = JobWatch(host, clock(), p["timeout"], p["heartbeat_seconds"], p["progress_seconds"])
        marker = os.path.join(p["log_dir"], FAILED_MARKER)
        display.display(f"{host}: job started; its log comes home to {p['log_dir']}/{host}.log")
        while True:
            try:
                answer = self._shell(status_script(directory, p["tail_lines"]))
                rc, tail = parse_status(answer.get("stdout", ""))
                watch.answered(clock(), rc, tail)
            except (AnsibleConnectionFailure, ValueError) as error:
                watch.silent(" ".join(str(error).split())[:300])
                self._fresh_connection()
            gone = api.gone() if api else {}
            for node_id, why in gone.items():
                if node_id != p["instance_id"]:
                    self._mark_failed(p["log_dir"], why)
            ended = watch.verdict(clock(), gone.get(p["instance_id"]), _read(marker))
            if ended:
                break
            line = watch.progress_line(clock())
            if line:
                display.display(line)
            time.sleep(p["poll_seconds"])
        state, reason = ended
        if state in ("stopped", "timed_out"):
            self._try(lambda: self._shell(stop_script(directory)))
        log = self._bring_log(host, p["log_dir"], directory) if state != "lost" else None
        return {
            "state": state,
            "rc": watch.rc,
            "msg": reason,
            "seconds": round(clock() - watch.start, 1),
            "log": log,
            "tail": watch.tail,
        }

    def _bring_log(self, host, log_dir, directory):
        """The job's whole log, copied to ``log_dir/<host>.log``; None when the node cannot give it."""
        local = os.path.join(log_dir, f"{host}.log")
        home = self._try(lambda: self._shell("cd && pwd").get("stdout", "").strip())
        if not home:
            return None
        fetched = self._try(lambda: self._connection.fetch_file(f"{home}/{directory}/{LOG_FILE}", local))
        return local if fetched is not False and os.path.exists(local) else None

    def _try(self, call):
        try:
            return call()
        except AnsibleError as error:
            display.warning(f"cluster_job: {' '.join(str(error).split())[:300]}")
            return False

    def _fresh_connection(self):
        try:
            self._connection.reset()
        except AnsibleError:
            pass

    @staticmethod
    def _mark_failed(log_dir, reason):
        """The first failure of the run, for the other nodes' watches; later ones leave it as it is."""
        try:
            fd = os.open(os.path.join(log_dir, FAILED_MARKER), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(reason)


class _ApiWatch:
    """The API's view of the job's nodes, read once every few seconds (one request for all of them)."""

    def __init__(self, p):
        self.ids = set(p["watch_ids"])
        self.every = max(p["poll_seconds"], min(10.0, p["heartbeat_seconds"] / 3))
        self.client = client_from_options(p)
        self.next_read = 0.0
        self.found = {}

    def gone(self):
        """Node id -> why it left the job, for the nodes that left it so far."""
        now = time.monotonic()
        if now < self.next_read:
            return self.found
        self.next_read = now + self.every
        try:
            listed = {i.get("id"): i for i in list_instances(self.client)}
        except LambdaCloudError as error:  # the API's trouble is not the job's: the next read tries again
            display.vvv(f"cluster_job: reading the instances failed: {error}")
            return self.found
        for node_id in sorted(self.ids - set(self.found)):
            why = gone_reason(listed.get(node_id))
            if why:
                name = (listed.get(node_id) or {}).get("name") or node_id
                self.found[node_id] = f"node {name} ({node_id}) left the job: {why}"
        return self.found


def _read(path):
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read().strip() or "another node's job failed"
    except FileNotFoundError:
        return None


def _said(run):
    return " ".join(f"{run.get('stderr', '')} {run.get('stdout', '')}".split())[:300] or f"exit status {run.get('rc')}"
