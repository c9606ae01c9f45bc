# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the gpu_node role: the GPU facts after a change of persistence mode."""

from __future__ import annotations

from ansible_collections.lambdalabs.cloud.plugins.module_utils._gpu import with_persistence


class FilterModule:
    def filters(self):
        return {"gpu_persistence": with_persistence}
