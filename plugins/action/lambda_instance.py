# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The controller's side of lambda_instance: the module runs as it is, and while it runs with wait=true (a launch
that waits for capacity, a boot of up to 25 minutes, a termination), a line every progress_seconds says how long it
has been and what the API shows of the instance.

A module cannot print while it runs, so it runs in a thread here; the line comes from one read of the instance list
(one request per line, well within the API's rate), and from the time alone when that read fails.
"""

from __future__ import annotations

import os
import threading
import time

from ansible.module_utils.parsing.convert_bool import boolean
from ansible.utils.display import Display

from ansible_collections.lambdalabs.cloud.plugins.module_utils._api import list_instances
from ansible_collections.lambdalabs.cloud.plugins.module_utils._client import (
    API_KEY_ENV,
    API_URL_ENV,
    client_from_options,
)
from ansible_collections.lambdalabs.cloud.plugins.module_utils._wait import instance_progress_line
from ansible_collections.lambdalabs.cloud.plugins.plugin_utils._progress import ProgressAction

display = Display()


class ActionModule(ProgressAction):
    MODULE = "lambdalabs.cloud.lambda_instance"
    TIMEOUT_OPTION = "wait_timeout"

    def progress_plan(self, args):
        waits = boolean(True if args.get("wait") is None else args["wait"], strict=False)
        return super().progress_plan(args) if waits else None

    def with_progress(self, args, task_vars, every, timeout):
        """The module in a thread; a line every ``every`` seconds while it runs."""
        outcome, errors = {}, []

        def module_run():
            try:
                outcome.update(self._execute_module(module_name=self.MODULE, module_args=args, task_vars=task_vars))
            # Raised again below, in the task's own thread.
            except BaseException as error:  # pylint: disable=broad-exception-caught
                errors.append(error)

        worker = threading.Thread(target=module_run, name="lambda_instance", daemon=True)
        start = time.monotonic()
        worker.start()
        worker.join(every)
        while worker.is_alive():
            line = instance_progress_line(args, self._status(args), time.monotonic() - start, timeout)
            display.display(f"lambda_instance: {line}")
            worker.join(every)
        if errors:
            raise errors[0]
        return outcome

    @staticmethod
    def _status(args):
        """The instance's status as the API lists it now (by id, else by name), 'not listed' when it is not there,
        or None when the list cannot be read."""
        options = dict(args)
        options["api_key"] = options.get("api_key") or os.environ.get(API_KEY_ENV)
        options["api_url"] = options.get("api_url") or os.environ.get(API_URL_ENV)
        try:
            instances = list_instances(client_from_options(options))
        # A progress line never fails a task.
        except Exception:  # pylint: disable=broad-exception-caught
            return None
        wanted = [i for i in instances if args.get("id") and i.get("id") == args["id"]]
        wanted = wanted or [i for i in instances if args.get("name") and i.get("name") == args["name"]]
        return ", ".join(sorted({str(i.get("status")) for i in wanted})) or "not listed"
