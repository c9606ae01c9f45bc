# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The base of the action plugins whose module may wait a long time: a module cannot print while it runs, so its
action plugin runs it in a way that lets a line come every ``progress_seconds`` (30 by default)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ansible.plugins.action import ActionBase

from ansible_collections.lambdalabs.cloud.plugins.plugin_utils._action_args import finite_number


class ProgressAction(ActionBase):
    """Runs ``MODULE`` once as it is, or, when the task waits, through :meth:`with_progress`."""

    MODULE = ""
    TIMEOUT_OPTION = "timeout"
    _supports_check_mode = True
    _supports_async = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = dict(self._task.args)
        plan = self.progress_plan(args)
        if plan is None:
            # One run: the module checks every option (and refuses a bad one in one line), and does as it is asked.
            result.update(self._execute_module(module_name=self.MODULE, module_args=args, task_vars=task_vars))
        else:
            result.update(self.with_progress(args, task_vars or {}, *plan))
        return result

    def progress_plan(self, args: Mapping[str, Any]) -> tuple[float, float] | None:
        """(progress_seconds, timeout) when the task waits long enough for progress lines; None to run the module
        once (check mode, no progress lines, no timeout, or an option the module will refuse)."""
        timeout = finite_number(args.get(self.TIMEOUT_OPTION), 1800)
        every = finite_number(args.get("progress_seconds"), 30)
        if self._play_context.check_mode or not timeout or not every or every <= 0:
            return None
        return every, timeout

    def with_progress(self, args: dict[str, Any], task_vars: dict[str, Any], every: float, timeout: float) -> dict:
        raise NotImplementedError
