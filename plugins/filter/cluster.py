# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the cluster role: plan a cluster, report on it, and give its nodes their host variables."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.lambdalabs.cloud.plugins.module_utils._autostop import autostop_plan
from ansible_collections.lambdalabs.cloud.plugins.module_utils._cluster import (
    cluster_group,
    cluster_result,
    current_instances,
    node_user_data,
    plan_cluster,
    wait_ids,
)
from ansible_collections.lambdalabs.cloud.plugins.module_utils._cluster_report import (
    cluster_summary,
    group_note,
    launch_failure,
    removal_summary,
    unhealthy_warning,
)
from ansible_collections.lambdalabs.cloud.plugins.module_utils._cluster_rules import node_types
from ansible_collections.lambdalabs.cloud.plugins.module_utils._heal import heal_plan
from ansible_collections.lambdalabs.cloud.plugins.module_utils._hostvars import (
    DEFAULT_SSH_COMMON_ARGS,
    DEFAULT_USER,
    instance_addresses,
    instance_hostvars,
)
from ansible_collections.lambdalabs.cloud.plugins.module_utils._targets import target_pattern, target_problem
from ansible_collections.lambdalabs.cloud.plugins.module_utils._validation import InvalidParameter


def _plan(
    instances, cluster, nodes=None, defaults=None, state="present", ttl_hours=None, firewall_rules=None, settings=None
):
    return plan_cluster(
        list(instances or []),
        cluster,
        nodes,
        defaults,
        state=state,
        ttl_hours=ttl_hours,
        firewall_rules=firewall_rules,
        settings=settings,
    )


def _result(plan, instances, launches=None, failure=None, removed=None, state="present", name=None):
    return cluster_result(plan, list(instances or []), launches, failure, removed, state, name)


def _add_host(instance, groups=(), connect_with="ip", user=DEFAULT_USER, ssh_common_args=DEFAULT_SSH_COMMON_ARGS):
    """The arguments of ansible.builtin.add_host for one instance: name, groups and its lambda_* variables."""
    try:
        host_vars = instance_hostvars(instance, connect_with=connect_with, user=user, ssh_common_args=ssh_common_args)
    except InvalidParameter as error:  # pragma: no cover - instance_hostvars does not check
        raise AnsibleFilterError(str(error)) from None
    return {"name": instance.get("name") or instance.get("id"), "groups": list(groups), **host_vars}


class FilterModule:
    def filters(self):
        return {
            "target_pattern": target_pattern,
            "target_problem": target_problem,
            "cluster_group": cluster_group,
            "cluster_node_types": node_types,
            "cluster_plan": _plan,
            "cluster_user_data": node_user_data,
            "cluster_result": _result,
            "cluster_instances": lambda lists, removed=None: current_instances(*lists, removed=removed),
            "cluster_summary": cluster_summary,
            "cluster_removal": removal_summary,
            "cluster_group_note": group_note,
            "cluster_unhealthy_warning": unhealthy_warning,
            "cluster_launch_failure": launch_failure,
            "cluster_wait_ids": wait_ids,
            "cluster_autostop": autostop_plan,
            "heal_plan": lambda instances, lost: heal_plan(list(instances or []), lost),
            "instance_add_host": _add_host,
            "instance_addresses": lambda instances: instance_addresses(list(instances or [])),
        }
