# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the capacity playbook: its variables, checked, as lambda_instance_type_info's options."""

from __future__ import annotations

from ansible_collections.lambdalabs.cloud.plugins.module_utils._capacity import capacity_options


class FilterModule:
    def filters(self):
        return {"capacity_options": capacity_options}
