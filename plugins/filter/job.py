# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the run_and_teardown playbook: the check before a job, and the report after it."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.lambdalabs.cloud.plugins.module_utils._cluster import cluster_group
from ansible_collections.lambdalabs.cloud.plugins.module_utils._job import JobOptions, job_plan, job_report
from ansible_collections.lambdalabs.cloud.plugins.module_utils._validation import InvalidParameter


def _plan(instances, cluster, groups, hostvars, **options):
    """The plan from the API's instances and the inventory: the hosts of the cluster's group and their lambda_id."""
    hosts = groups.get(cluster_group(cluster), []) if isinstance(cluster, str) and cluster else []
    inventory = {host: hostvars[host].get("lambda_id") for host in hosts}
    try:
        checked = JobOptions.checked(**options)
    except InvalidParameter as error:
        return {"error": f"Invalid value for {error} Nothing was run or terminated.", "targets": []}
    return job_plan(instances, cluster, inventory, checked)


def _report(hostvars, plan, teardown_on_failure=True, result_var="_cluster_job"):
    try:
        return job_report({host: hostvars[host].get(result_var) for host in plan["targets"]}, plan, teardown_on_failure)
    except InvalidParameter as error:
        raise AnsibleFilterError(f"Invalid value for {error}") from None


class FilterModule:
    def filters(self):
        return {"job_plan": _plan, "job_report": _report}
