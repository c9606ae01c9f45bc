# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which hosts a playbook runs on: an explicit host pattern, or a cluster's group, that must match hosts.

A playbook that ran on every host of the inventory by default would wire, sample or configure the wrong machines;
one whose pattern matched nothing (a misspelt group, an inventory source that could not be read, no ``-i``) used to
end "ok" having done nothing. Both are refused, with the cluster groups that the inventory does hold.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ansible_collections.lambdalabs.cloud.plugins.module_utils._api import natural_key
from ansible_collections.lambdalabs.cloud.plugins.module_utils._cluster import cluster_group

CLUSTER_PREFIX = "lambda_cluster_"


def target_pattern(pattern: Any = None, cluster: Any = None) -> str:
    """The host pattern a playbook runs on: ``pattern`` when given, else the group of cluster ``cluster``, else ''."""
    if isinstance(pattern, str) and pattern.strip():
        return pattern.strip()
    if isinstance(cluster, str) and cluster.strip():
        return cluster_group(cluster.strip())
    return ""


def _clusters(groups: Mapping[str, Any]) -> str:
    found = sorted((name for name in groups if name.startswith(CLUSTER_PREFIX)), key=natural_key)
    if not found:
        return (
            "The inventory has no cluster group: was it given with -i, and could its source be read (see its warnings)?"
        )
    shown = ", ".join(f"{name} ({len(groups[name] or [])} host(s))" for name in found)
    return f"Cluster groups in the inventory: {shown}."


def target_problem(pattern: str, variable: str, matched: list[str] | None, groups: Mapping[str, Any]) -> str:
    """Why a playbook must not run on ``pattern`` (given as ``variable``), or '' when it matches hosts."""
    if not pattern:
        return (
            f"Give the hosts: -e {variable}=PATTERN (a cluster's group such as lambda_cluster_training, or any host "
            f"pattern), or -e lambda_cluster_name=NAME. {_clusters(groups)}"
        )
    if not matched:
        return f"{variable} {pattern!r} matches no host of the inventory. {_clusters(groups)}"
    return ""
