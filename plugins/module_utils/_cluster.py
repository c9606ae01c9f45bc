# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The cluster role's logic: which nodes a cluster wants, which are missing or extra, and what it costs.

Pure functions over the role's variables and the instance list; the ``lambdalabs.cloud.cluster_*`` filters
expose them to the role. A node's ``user_data`` never enters a plan: it may hold secrets, and plans are facts.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import Any

from ansible_collections.lambdalabs.cloud.plugins.module_utils._api import (
    CLUSTER_TAG,
    EXPIRY_TAG,
    instance_type_name,
    is_existing,
    natural_key,
    price_cents_per_hour,
    region_name,
    tag_of,
)
from ansible_collections.lambdalabs.cloud.plugins.module_utils._cluster_rules import (
    check_settings,
    choices,
    cluster_expiry,
)
from ansible_collections.lambdalabs.cloud.plugins.module_utils._cost import spent
from ansible_collections.lambdalabs.cloud.plugins.module_utils._firewall import normalize_rules
from ansible_collections.lambdalabs.cloud.plugins.module_utils._validation import (
    TAG_KEY_PATTERN,
    InvalidParameter,
    check_new_name,
    check_number,
    check_tags,
    tag_value,
)

CLUSTER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,47}")
NODE_KEYS = (
    "name",
    "instance_type",
    "region",
    "ssh_key_name",
    "file_system_names",
    "file_system_mounts",
    "image",
    "user_data",
    "tags",
    "firewall_ruleset_ids",
    "firewall_ruleset_names",
    "hostname",
    "min_gpus",
    "max_price_cents_per_hour",
)
RESERVED_TAGS = (CLUSTER_TAG, EXPIRY_TAG)
MAX_NODES = 256


def cluster_group(name: str) -> str:
    """The inventory group of a cluster: lambda_cluster_<name>, with every character but letters, digits and '_'
    turned into '_' (llm-ft gives lambda_cluster_llm_ft), as the inventory plugin's keyed groups do."""
    return "lambda_cluster_" + re.sub(r"[^A-Za-z0-9_]", "_", str(name))


def check_cluster_name(name: Any, param: str = "lambda_cluster_name") -> None:
    """A cluster's name: 1 to 48 letters, digits, '-' or '_', starting with a letter or a digit."""
    if not isinstance(name, str) or not CLUSTER_NAME.fullmatch(name):
        raise InvalidParameter(
            param,
            f"{param} must be 1 to 48 letters, digits, '-' or '_', starting with a letter or a digit; got {name!r}.",
        )


def is_member(instance: Mapping[str, Any], cluster: str) -> bool:
    return is_existing(instance) and tag_of(instance, CLUSTER_TAG) == cluster


def _given_nodes(cluster: str, nodes: Any) -> list[dict[str, Any]]:
    """The nodes as dictionaries with a name, from a count and a pattern or from a list."""
    if isinstance(nodes, Mapping):
        unknown = sorted(set(nodes) - {"count", "name_pattern"})
        count = nodes.get("count")
        pattern = nodes.get("name_pattern") or "{cluster}-{index}"
        if unknown or isinstance(count, bool) or not isinstance(count, int):
            raise InvalidParameter(
                "lambda_cluster_nodes",
                "lambda_cluster_nodes must be a count plus a name pattern, for example "
                f"{{count: 3, name_pattern: '{{cluster}}-{{index}}'}}, or a list of nodes; got {dict(nodes)!r}.",
            )
        check_number("lambda_cluster_nodes.count", count, minimum=0, maximum=MAX_NODES)
        if not isinstance(pattern, str) or "{index}" not in pattern:
            raise InvalidParameter("lambda_cluster_nodes.name_pattern", f"{pattern!r} must contain {{index}}.")
        return [
            {"name": pattern.replace("{cluster}", cluster).replace("{index}", str(index))}
            for index in range(1, count + 1)
        ]
    if not isinstance(nodes, list):
        raise InvalidParameter(
            "lambda_cluster_nodes",
            f"lambda_cluster_nodes must be a count plus a name pattern, or a list; got {nodes!r}.",
        )
    if len(nodes) > MAX_NODES:
        raise InvalidParameter("lambda_cluster_nodes", f"at most {MAX_NODES} nodes, got {len(nodes)}.")
    return [dict(node) if isinstance(node, Mapping) else {"name": node} for node in nodes]


def wanted_nodes(cluster: str, nodes: Any, defaults: Any) -> list[dict[str, Any]]:
    """Every wanted node with the defaults merged in (tags merged too), without user_data, checked."""
    check_cluster_name(cluster)
    if defaults is not None and not isinstance(defaults, Mapping):
        raise InvalidParameter("lambda_cluster_defaults", f"must be a dictionary, got {defaults!r}.")
    defaults = dict(defaults or {})
    wanted, seen = [], set()
    for given in [defaults | {"name": "(defaults)"}, *_given_nodes(cluster, nodes)]:
        unknown = sorted(set(given) - set(NODE_KEYS))
        if unknown:
            raise InvalidParameter(
                "lambda_cluster_nodes",
                f"node {given.get('name')!r} has the keys {', '.join(unknown)}; only the keys "
                f"{', '.join(NODE_KEYS)} are allowed.",
            )
        tags = given.get("tags") or {}
        if not isinstance(tags, Mapping):
            raise InvalidParameter("lambda_cluster_nodes", f"the tags of node {given.get('name')!r} must be a dict.")
        for key in tags:
            if not TAG_KEY_PATTERN.fullmatch(str(key)):
                raise InvalidParameter(
                    "lambda_cluster_nodes",
                    f"tag keys must match {TAG_KEY_PATTERN.pattern} (lowercase, 2-55 characters); got {key!r}.",
                )
            if key in RESERVED_TAGS:
                raise InvalidParameter(
                    "lambda_cluster_nodes", "the role sets the tags cluster and expires-at itself; remove them."
                )
    for given in _given_nodes(cluster, nodes):
        name = given.get("name")
        check_new_name("lambda_cluster_nodes", name if isinstance(name, str) else None)
        if not isinstance(name, str):
            raise InvalidParameter("lambda_cluster_nodes", f"every node needs a name, got {name!r}.")
        if name in seen:
            raise InvalidParameter("lambda_cluster_nodes", f"every node needs a unique name; {name!r} is given twice.")
        seen.add(name)
        tags = {**(defaults.get("tags") or {}), **(given.get("tags") or {})}
        check_tags("lambda_cluster_nodes", tags)  # values as lambda_instance takes them: no list, no NaN
        node = {**defaults, **given, "tags": {str(k): tag_value(v) for k, v in tags.items()}}
        node.pop("user_data", None)
        wanted.append(node)
    return wanted


def firewall_ruleset_name(cluster: str) -> str:
    """The name of the ruleset the role keeps for a cluster's own firewall rules."""
    return f"cluster-{cluster}"


def _firewall(plan: dict[str, Any], cluster: str, wanted: list[dict[str, Any]]) -> str | None:
    """Give every wanted node the cluster's own ruleset, and record the regions it is needed in; or the problem."""
    regions = list(dict.fromkeys(region for node in wanted for region in choices(node.get("region"))))
    if not regions or any(not node.get("region") for node in wanted):
        return (
            "lambda_cluster_firewall_rules needs the regions of every node (lambda_cluster_defaults.region, or region "
            "on each node): the cluster's ruleset is made in each of them."
        )
    plan.update(firewall_ruleset=firewall_ruleset_name(cluster), firewall_regions=regions)
    for node in wanted:
        node["firewall_ruleset_names"] = [*(node.get("firewall_ruleset_names") or []), plan["firewall_ruleset"]]
    return None


def _missing(
    wanted: list[dict[str, Any]], members: list[Mapping[str, Any]], cluster: str, expiry: str | None
) -> list[dict[str, Any]]:
    """The wanted nodes that are not members yet, with their launch tags; raises when one cannot be launched."""
    member_names = {m.get("name") for m in members}
    missing = []
    for node in wanted:
        if node["name"] in member_names:
            continue
        if not node.get("instance_type") or not node.get("ssh_key_name"):
            raise InvalidParameter(
                "lambda_cluster_nodes",
                f"Node {node['name']} needs instance_type and ssh_key_name, in lambda_cluster_defaults or in the node "
                "itself.",
            )
        launch_tags = {**node["tags"], CLUSTER_TAG: cluster, **({EXPIRY_TAG: expiry} if expiry else {})}
        missing.append({**node, "tags": launch_tags})
    return missing


def _conflicts(instances: list[Mapping[str, Any]], cluster: str, names: set[str]) -> list[dict[str, Any]]:
    """The existing instances that have a node's name but are not members of the cluster."""
    return [
        {"name": i.get("name"), "id": i.get("id")}
        for i in instances
        if is_existing(i) and i.get("name") in names and not is_member(i, cluster)
    ]


def _problem(error: InvalidParameter) -> str:
    return error.detail if error.detail.startswith(("lambda_", "Node ")) else f"{error.param}: {error.detail}"


def plan_cluster(
    instances: list[Mapping[str, Any]],
    cluster: str,
    nodes: Any,
    defaults: Any,
    state: str = "present",
    ttl_hours: Any = None,
    now: float | None = None,
    firewall_rules: Any = None,
    settings: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """What the role does: members, wanted, missing (with their launch tags), extra (highest first), conflicts,
    and, with ``firewall_rules``, the cluster's own ruleset and the regions it is needed in.

    A problem with the variables is not raised but returned as ``error``, one line for the role to fail with;
    ``settings`` are the keyword arguments of ``check_settings`` (the role's other variables).
    """
    plan: dict[str, Any] = {"error": None, "group": cluster_group(cluster), "members": [], "wanted": []}
    plan.update(missing=[], extra=[], conflicts=[], firewall_ruleset=None, firewall_regions=[])
    plan.update(expires_at=None, expiry_note=None)
    try:
        check_cluster_name(cluster)
        check_settings(**(settings or {}))
        if state not in ("present", "absent"):
            raise InvalidParameter(
                "lambda_cluster_state", f"lambda_cluster_state must be present or absent: {state!r}."
            )
        members = sorted((i for i in instances if is_member(i, cluster)), key=lambda i: natural_key(i.get("name")))
        plan["members"] = members
        if state == "absent":
            return plan
        wanted = wanted_nodes(cluster, nodes, defaults)
        expiry, plan["expiry_note"] = cluster_expiry(members, ttl_hours, now)
        plan["expires_at"] = expiry
        if firewall_rules is not None:
            normalize_rules("lambda_cluster_firewall_rules", firewall_rules)  # as lambda_firewall_ruleset checks them
        plan["error"] = _firewall(plan, cluster, wanted) if firewall_rules is not None else None
        if plan["error"]:
            return plan
        plan["wanted"] = wanted
        plan["missing"] = _missing(wanted, members, cluster, expiry)
    except InvalidParameter as error:
        plan["error"] = _problem(error)
        return plan
    names = {node["name"] for node in wanted}
    extra = [m for m in members if m.get("name") not in names]
    plan["extra"] = sorted(extra, key=lambda i: natural_key(i.get("name")), reverse=True)
    plan["conflicts"] = _conflicts(instances, cluster, names)
    if plan["conflicts"]:
        taken = ", ".join(f"{c['name']} ({c['id']})" for c in plan["conflicts"])
        plan["error"] = (
            f"Instance {taken} is not tagged cluster={cluster}, but has the name of a node. Nothing was launched. "
            "Rename or terminate it, or choose other node names."
        )
    return plan


def node_user_data(nodes: Any, name: str, defaults: Any) -> str | None:
    """The user_data of one node (its own, else the defaults'), read straight from the role's variables."""
    for node in nodes if isinstance(nodes, list) else []:
        if isinstance(node, Mapping) and node.get("name") == name and node.get("user_data") is not None:
            return node["user_data"]
    return (defaults or {}).get("user_data") if isinstance(defaults, Mapping) else None


def _first(value: Any) -> str | None:
    if isinstance(value, str):
        return value.split(",")[0].strip() or None
    return value[0] if value else None


def failover(launches: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The launched nodes that did not get their first choice of type and region."""
    moved = []
    for launch in launches:
        placement = launch.get("placement")
        if not isinstance(placement, Mapping):
            continue
        first_type, first_region = _first(launch.get("instance_type")), _first(launch.get("region"))
        if placement.get("instance_type") == first_type and (
            not first_region or placement.get("region") == first_region
        ):
            continue
        first = first_type + (f" in {first_region}" if first_region else "")
        moved.append(
            {
                "name": launch["name"],
                "first_choice": first,
                "instance_type": placement.get("instance_type"),
                "region": placement.get("region"),
                "change": f"{first} had no capacity; launched as {placement.get('instance_type')} in "
                f"{placement.get('region')}",
            }
        )
    return moved


def node_row(instance: Mapping[str, Any]) -> dict[str, Any]:
    """A node as the cluster's result lists it."""
    itype = instance.get("instance_type") if isinstance(instance.get("instance_type"), Mapping) else {}
    return {
        "name": instance.get("name"),
        "id": instance.get("id"),
        "status": instance.get("status"),
        "instance_type": instance_type_name(instance),
        "region": region_name(instance),
        "ip": instance.get("ip"),
        "private_ip": instance.get("private_ip"),
        "gpus": (itype.get("specs") or {}).get("gpus"),
        "price_cents_per_hour": price_cents_per_hour(instance),
    }


def wait_ids(plan: Mapping[str, Any], launches: Any, ssh: bool = False) -> list[str]:
    """The ids the role waits for: the members still booting (and the active ones too when it waits for SSH), but not
    those beyond the wanted nodes, and every instance it launched."""
    statuses = ("booting", "active") if ssh else ("booting",)
    beyond = {m.get("id") for m in plan.get("extra") or []}  # not the cluster's any more, removed or not
    ids = [m.get("id") for m in plan.get("members") or [] if m.get("status") in statuses and m.get("id") not in beyond]
    instances = [launch.get("instance") for launch in launches or [] if isinstance(launch, Mapping)]
    return ids + [i.get("id") for i in instances if isinstance(i, Mapping)]


def current_instances(*lists: Any, removed: Any = None) -> list[dict[str, Any]]:
    """The cluster's instances as last seen: later lists win by id; removed ones and non-dicts are left out."""
    merged: dict[str, dict[str, Any]] = {}
    for items in lists:
        for item in items or []:
            if isinstance(item, Mapping) and item.get("id"):
                merged[str(item["id"])] = dict(item)
    gone = set(removed or [])
    current = [i for i in merged.values() if i.get("id") not in gone and i.get("name") not in gone]
    return sorted(current, key=lambda i: natural_key(i.get("name")))


def cluster_result(
    plan: Mapping[str, Any],
    instances: list[Mapping[str, Any]],
    launches: list[Mapping[str, Any]] | None = None,
    failure: Mapping[str, Any] | None = None,
    removed: list[str] | None = None,
    state: str = "present",
    name: str | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """``lambda_cluster_result``: what the role did and what the cluster is now, with the same types everywhere."""
    launches = list(launches or [])
    removed = list(removed or [])
    members = list(plan.get("members") or [])
    result: dict[str, Any] = {"name": name, "state": state, "group": plan.get("group"), "failed_launch": failure}
    result["saved_cents_per_hour"] = sum(price_cents_per_hour(m) for m in members if m.get("name") in removed)
    # What the removed nodes had cost, from their launched-at tags.
    result["removed_spent"] = spent(
        [m for m in members if m.get("name") in removed], time.time() if now is None else now
    )
    if state == "absent":
        result.update(launched=[], recovered=[], terminated=removed, extra=[], failover=[], not_launched=[])
        result.update(unhealthy=[], nodes=[])
        result.update(extra_cents_per_hour=0, expires_at=None, expiry_note=None, price_cents_per_hour=0)
        return result
    launched = [launch["name"] for launch in launches if launch.get("changed")]
    # Launched, though the API's answer to the launch was unclear (lost, late or garbled): found by name.
    recovered = [launch["name"] for launch in launches if (launch.get("launch") or {}).get("how") == "recovered"]
    tried = {launch["name"] for launch in launches} | ({failure["name"]} if failure else set())
    current = current_instances(instances, removed=removed)
    left = [m for m in plan.get("extra") or [] if m.get("name") not in removed]  # beyond the wanted nodes, running
    result.update(
        launched=launched,
        recovered=recovered,
        terminated=removed,
        extra=[f"{m.get('name')} ({m.get('id')})" for m in left],
        extra_cents_per_hour=sum(price_cents_per_hour(m) for m in left),
        expires_at=plan.get("expires_at"),
        expiry_note=plan.get("expiry_note"),
        failover=failover(launches),
        not_launched=[node["name"] for node in plan.get("missing") or [] if node["name"] not in tried],
        unhealthy=[i.get("name") for i in current if i.get("status") == "unhealthy"],
        price_cents_per_hour=sum(price_cents_per_hour(i) for i in current),
        nodes=[node_row(i) for i in current],
    )
    return result
