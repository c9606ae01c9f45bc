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

from ansible.utils.display import Display

from ansible_collections.lambdalabs.cloud.plugins.module_utils._wait import progress_line
from ansible_collections.lambdalabs.cloud.plugins.plugin_utils._progress import ProgressAction

display = Display()


class ActionModule(ProgressAction):
    MODULE = "lambdalabs.cloud.lambda_instance_wait"

    def progress_plan(self, args):
        plan = super().progress_plan(args)
        return plan if plan and plan[0] < plan[1] else None

    def with_progress(self, args, task_vars, every, timeout):
        """The wait in steps of ``every`` seconds (report_after), one result for the whole wait."""
        start = time.monotonic()
        polls = 0
        while True:
            waited = time.monotonic() - start
            left = max(1.0, timeout - waited)
            step = dict(args, timeout=math.ceil(left), report_after=min(every, left), waited_before=waited)
            outcome = self._execute_module(module_name=self.MODULE, module_args=step, task_vars=task_vars)
            polls += outcome.get("polls") or 0
            if outcome.get("failed") or outcome.get("done", True):
                return dict(outcome, polls=polls)
            nodes, state = outcome.get("nodes") or [], args.get("state") or "active"
            display.display(f"lambda_instance_wait: {progress_line(nodes, state, time.monotonic() - start, timeout)}")
