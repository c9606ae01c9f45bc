# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Self-heal of a cluster node: what the heal playbook does when a node turned unhealthy or disappeared.

An unhealthy node is terminated; a node that is gone (preempted, terminated by someone else) is only replaced. The
replacement is the cluster role's: the cluster's nodes by name, the lost one among them, with the lost node's type,
region, SSH key and file systems, so that the role launches exactly the one missing node, and it inherits the
cluster's expiry. Run twice for the same node, it launches nothing more: the replacement has the node's name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ansible_collections.lambdalabs.cloud.plugins.module_utils._api import (
    CLUSTER_TAG,
    instance_type_name,
    is_existing,
    natural_key,
    region_name,
    tag_of,
    tags_to_dict,
)
from ansible_collections.lambdalabs.cloud.plugins.module_utils._cluster import RESERVED_TAGS, check_cluster_name
from ansible_collections.lambdalabs.cloud.plugins.module_utils._cost import LAUNCHED_AT_TAG
from ansible_collections.lambdalabs.cloud.plugins.module_utils._launch import LAUNCH_TAG
from ansible_collections.lambdalabs.cloud.plugins.module_utils._validation import InvalidParameter

# Tags that the collection sets at each launch: the replacement gets its own.
LAUNCH_TAGS = (LAUNCH_TAG, LAUNCHED_AT_TAG)


def heal_plan(instances: list[Mapping[str, Any]], lost: Mapping[str, Any]) -> dict[str, Any]:
    """From the account's instances and the event's ``lost`` instance (``id``, ``name``, ``cluster``, ...): the
    node to ``terminate`` (its id, or None), and the cluster role's ``cluster``, ``nodes`` and ``defaults``; or
    ``heal`` false with the ``reason``."""
    lost = lost if isinstance(lost, Mapping) else {}
    cluster = str(lost.get("cluster") or "")
    name = str(lost.get("name") or "")
    plan: dict[str, Any] = {"heal": False, "cluster": cluster, "name": name, "terminate": None, "error": None}
    try:
        check_cluster_name(cluster)
        if not name or not lost.get("id"):
            raise InvalidParameter("heal_instance", "heal_instance needs the lost node's id and name.")
    except InvalidParameter as error:
        return plan | {"error": f"heal_instance: {error.detail}", "reason": None}
    current = next((i for i in instances if str(i.get("id")) == str(lost.get("id"))), None)
    if current is not None and current.get("status") in ("booting", "active"):
        return plan | {"reason": f"{name} ({lost.get('id')}) of cluster {cluster} is {current.get('status')} now."}
    others = [i for i in instances if is_existing(i) and str(i.get("id")) != str(lost.get("id"))]
    members = [i for i in others if tag_of(i, CLUSTER_TAG) == cluster]
    if any(member.get("name") == name for member in members):
        return plan | {"reason": f"{name} of cluster {cluster} has a replacement already."}
    template = current if current is not None else (members[0] if members else lost)
    keys = template.get("ssh_key_names") or [m.get("ssh_key_names") for m in members if m.get("ssh_key_names")][:1]
    if keys and isinstance(keys[0], list):
        keys = keys[0]
    if not keys:
        return plan | {"reason": f"No SSH key of cluster {cluster} is known: {name} is left for a person to replace."}
    tags = {k: v for k, v in tags_to_dict(template.get("tags")).items() if k not in RESERVED_TAGS + LAUNCH_TAGS}
    node = {
        "name": name,
        "instance_type": [instance_type_name(template) or lost.get("instance_type")],
        "region": [region_name(template) or lost.get("region")],
        "ssh_key_name": keys[0],
        "file_system_names": list(template.get("file_system_names") or []),
        "tags": tags,
    }
    names = sorted({str(m.get("name")) for m in members} | {name}, key=natural_key)
    state = "unhealthy" if current is not None and is_existing(current) else "gone"
    return plan | {
        "heal": True,
        "terminate": str(current["id"]) if current is not None and is_existing(current) else None,
        "nodes": [{"name": n} for n in names],
        "defaults": {key: value for key, value in node.items() if key != "name"},
        "reason": f"{name} of cluster {cluster} is {state}: replacing it.",
    }
