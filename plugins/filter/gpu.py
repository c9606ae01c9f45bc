# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the gpu_node role: GPU facts from nvidia-smi, and the file system mount checks."""

from __future__ import annotations

from ansible_collections.lambdalabs.cloud.plugins.module_utils._gpu import (
    gpu_facts,
    mount_plan,
    mount_problem,
    node_problems,
    with_persistence,
)


def _mounted(plan, results):
    """The problem with the mounts, given the registered results of findmnt (rc 0: mounted); None when none."""
    found = [r.get("item") for r in results or [] if r.get("rc") == 0]
    return mount_problem(plan, found)


class FilterModule:
    def filters(self):
        return {
            "gpu_facts": gpu_facts,
            "gpu_persistence": with_persistence,
            "gpu_node_problems": node_problems,
            "mount_plan": mount_plan,
            "mount_problem": _mounted,
        }
