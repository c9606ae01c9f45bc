# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the reap playbook: which instances have expired, and what to say about them."""

from __future__ import annotations

from ansible_collections.lambdalabs.cloud.plugins.module_utils._expiry import reap_plan, reap_report


def _plan(instances, tag="expires-at"):
    return reap_plan(list(instances or []), tag)


class FilterModule:
    def filters(self):
        return {"reap_plan": _plan, "reap_report": reap_report}
