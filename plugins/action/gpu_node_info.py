# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The controller's side of gpu_node_info: wait until the node accepts a connection, read it, check what it found.

One task per node does what took three (wait_for_connection, the read, an assert). When the task asks only for the
GPUs, the hostname and the mounts, the node is read with one shell script instead of a Python module run: Python
starting on the node and importing Ansible's module code is most of the CPU a node costs a play. Utilization samples
that span a long window (reap_idle's 30 minutes) are taken one at a time from here, with a progress line between two.
"""

from __future__ import annotations

import secrets
import shlex
import time

from ansible.errors import AnsibleActionFail, AnsibleConnectionFailure, AnsibleError
from ansible.plugins.action import ActionBase
from ansible.plugins.connection import ConnectionBase
from ansible.utils.display import Display

from ansible_collections.lambdalabs.cloud.plugins.module_utils._gpu import (
    node_problems,
    node_summary,
    parse_utilization,
)
from ansible_collections.lambdalabs.cloud.plugins.module_utils._node_read import (
    ARGUMENT_SPEC,
    UTILIZATION_ARGS,
    needs_module,
    node_facts,
    read_script,
    split_read,
)
from ansible_collections.lambdalabs.cloud.plugins.module_utils._validation import (
    check_number,
    check_text,
    seconds,
)
from ansible_collections.lambdalabs.cloud.plugins.module_utils._wait import (
    PermanentConnectionError,
    call_until_connected,
    permanent_ssh_problem,
    sampling_line,
)
from ansible_collections.lambdalabs.cloud.plugins.plugin_utils._action_args import validated_args

display = Display()

MODULE = "lambdalabs.cloud.gpu_node_info"
MAX_CONNECT_TIMEOUT = 86400  # a day
# The module's options as the controller checks them: mount_root is left as given (the module expands ~ and $VAR on
# the node, where they mean something).
CONTROLLER_SPEC = dict(ARGUMENT_SPEC, mount_root=dict(ARGUMENT_SPEC["mount_root"], type="str"))


class ActionModule(ActionBase):
    _supports_check_mode = True
    _supports_async = False

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        self._task_vars = task_vars
        result = super().run(tmp, task_vars)
        # An option given as null (a variable that renders to None) takes its default, on both ways of reading.
        args = {key: value for key, value in self._task.args.items() if value is not None}
        params = validated_args(CONTROLLER_SPEC, args, self._check)
        window = params["utilization_interval"] * (params["utilization_samples"] - 1)
        stepped = 0 < params["progress_seconds"] < window
        if stepped:
            # The node takes the first sample with the facts; the others come one at a time (_sample).
            args["utilization_samples"] = 1

        if needs_module(params) or not self._is_pipelining_enabled("new"):
            # The module; also where the connection cannot hand the script to the shell's standard input the way it
            # pipelines modules (pipelining off, su, a connection without it).

            def read_node():
                return self._execute_module(module_name=MODULE, module_args=args, task_vars=task_vars)

        else:

            def read_node():
                return self._read_with_shell(params)

        timeout = params["connect_timeout"]
        try:
            outcome, waited = call_until_connected(
                read_node,
                timeout,
                (AnsibleConnectionFailure,),
                between=self._retry_later,
                permanent=lambda error: permanent_ssh_problem(str(error), self._play_context.private_key_file),
            )
        except PermanentConnectionError as error:
            host = task_vars.get("inventory_hostname") or self._play_context.remote_addr
            raise AnsibleActionFail(f"{host}: {error}") from None
        except AnsibleConnectionFailure as error:
            if not timeout:
                raise
            raise AnsibleConnectionFailure(
                f"connect_timeout: the node did not accept a connection within {timeout:g} s: {error}"
            ) from None
        result.update(outcome)
        result["connect_seconds"] = waited
        if result.get("failed") or result.get("skipped"):
            return result
        host = task_vars.get("inventory_hostname") or self._play_context.remote_addr
        if stepped and result.get("utilization"):
            result["utilization"] = self._sample(params, host, list(result["utilization"]), window)
        checks = (params["require_gpu"], params["check_gpu_count"], params["check_mounts"])
        problems = node_problems(host, result, params["instance_type"], *checks)
        result["msg"] = " ".join(problems) if problems else node_summary(host, result)
        if problems:
            result["failed"] = True
        return result

    @staticmethod
    def _check(params):
        params["connect_timeout"] = seconds("connect_timeout", params["connect_timeout"], MAX_CONNECT_TIMEOUT)
        params["progress_seconds"] = seconds("progress_seconds", params["progress_seconds"], MAX_CONNECT_TIMEOUT)
        check_number("utilization_samples", params["utilization_samples"], minimum=0, maximum=1000)
        check_number("utilization_interval", params["utilization_interval"], minimum=0, maximum=3600)
        check_text("nvidia_smi", params["nvidia_smi"])
        check_text("mount_root", params["mount_root"])

    def _sample(self, params, host, samples, window):
        """The remaining utilization samples, ``utilization_interval`` apart (counted from the first), each one
        nvidia-smi run over the connection; a progress line every ``progress_seconds`` while it waits."""
        total, every = params["utilization_samples"], params["progress_seconds"]
        command = shlex.join([params["nvidia_smi"], *UTILIZATION_ARGS])
        start = time.monotonic()
        while len(samples) < total:
            due = start + len(samples) * params["utilization_interval"]
            while (left := due - time.monotonic()) > 0:
                time.sleep(min(left, every))
                if due > time.monotonic():
                    line = sampling_line(host, samples, total, time.monotonic() - start, window)
                    display.display(f"gpu_node_info: {line}")
            run = self._low_level_execute_command(command, sudoable=True)
            samples.append(parse_utilization(run.get("stdout")) if run.get("rc") == 0 else [])
        return samples

    def _read_with_shell(self, params):
        """The result the module would give, from one shell script run on the node (no Python there)."""
        marker = f"@@{secrets.token_hex(8)}"
        # The script goes to the shell's standard input: no terminal is allocated (ssh would merge stderr into
        # stdout), and it works under become as pipelining does.
        shell = "/bin/sh"
        env = self._compute_environment_string()
        run = self._low_level_execute_command(
            f"{env} {shell}" if env else shell,
            sudoable=True,
            in_data=read_script(params["nvidia_smi"], marker).encode(),
        )
        try:
            read = split_read(run.get("stdout", ""), run.get("stderr", ""), marker)
        except ValueError as error:
            raise AnsibleActionFail(str(error)) from None
        facts = node_facts(params, read["query"], read["summary"], read["hostname"], read["mountinfo"])
        return {"changed": False, **facts, "utilization": [], "interface": None, "reachable": {}}

    def _retry_later(self, error):
        display.vvv(f"gpu_node_info: no connection yet, trying again: {error}", host=self._play_context.remote_addr)
        # An interpreter discovered while the node was away may be a guess: discover it again, as
        # ansible.builtin.wait_for_connection does.
        if self._discovered_interpreter_key:
            self._task_vars.get("ansible_facts", {}).pop(self._discovered_interpreter_key, None)
        # A fresh connection for the next try (for ssh, the ControlMaster of the failed one is stopped).
        if type(self._connection).reset is not ConnectionBase.reset:
            try:
                self._connection.reset()
            except AnsibleError as reset_error:
                display.vvv(f"gpu_node_info: resetting the connection failed: {reset_error}")
