# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The controller's side of lambda_instance_wait: the wait runs in steps of progress_seconds, with a line between two.

A module cannot print while it runs; a boot of up to 25 minutes, or a cluster of many nodes, deserves to show that it
moves. Each step is one run of the module (report_after), and the task's result is that of the whole wait: each
node's seconds counted from its start, every poll counted.
"""

from __future__ import annotations

import math
import time

from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.lambdalabs.cloud.plugins.module_utils._wait import progress_line

display = Display()

MODULE = "lambdalabs.cloud.lambda_instance_wait"


def _number(value, default):
    try:
        number = float(default if value is None else value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


class ActionModule(ActionBase):
    _supports_check_mode = True
    _supports_async = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = dict(self._task.args)
        timeout = _number(args.get("timeout"), 1800)
        every = _number(args.get("progress_seconds"), 30)
        if self._play_context.check_mode or not timeout or not every or every <= 0 or every >= timeout:
            # One run: the module checks the options, and waits (or reads once in check mode) as it is.
            result.update(self._execute_module(module_name=MODULE, module_args=args, task_vars=task_vars))
            return result
        start = time.monotonic()
        polls = 0
        while True:
            waited = time.monotonic() - start
            left = max(1.0, timeout - waited)
            step = dict(args, timeout=math.ceil(left), report_after=min(every, left), waited_before=waited)
            outcome = self._execute_module(module_name=MODULE, module_args=step, task_vars=task_vars)
            polls += outcome.get("polls") or 0
            if outcome.get("failed") or outcome.get("done", True):
                result.update(outcome, polls=polls)
                return result
            nodes, state = outcome.get("nodes") or [], args.get("state") or "active"
            display.display(f"lambda_instance_wait: {progress_line(nodes, state, time.monotonic() - start, timeout)}")
