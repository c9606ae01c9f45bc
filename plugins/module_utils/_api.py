# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The API's resources as typed calls, and the accessors of their shapes.

One function per endpoint the collection uses, so that paths, quoting of ids,
retry classes and the shapes of answers are written once. Nothing here knows
about Ansible, waiting or launch orchestration.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from ansible_collections.lambdalabs.cloud.plugins.module_utils._client import (
    RETRY_SAFE,
    LambdaCloudClient,
    LambdaCloudError,
    api_path,
)
from ansible_collections.lambdalabs.cloud.plugins.module_utils._validation import tag_value

INSTANCE_STATUSES = ("booting", "active", "unhealthy", "terminated", "terminating", "preempted")
# An instance "exists" while it is in one of these; the others count as gone.
EXISTING_STATUSES = frozenset({"booting", "active", "unhealthy"})
IMAGE_ARCHITECTURES = ("x86_64", "arm64")
JUPYTER_FIELDS = ("jupyter_token", "jupyter_url")
INSUFFICIENT_CAPACITY = "instance-operations/launch/insufficient-capacity"


# --------------------------------------------------------------------- shapes
def region_name(resource: Mapping[str, Any]) -> str | None:
    region = resource.get("region")
    return region.get("name") if isinstance(region, Mapping) else region


def instance_type_name(instance: Mapping[str, Any]) -> str | None:
    itype = instance.get("instance_type")
    return itype.get("name") if isinstance(itype, Mapping) else itype


def capacity_regions(instance_type: Mapping[str, Any]) -> list[str]:
    return [
        r["name"] if isinstance(r, Mapping) else r for r in instance_type.get("regions_with_capacity_available", [])
    ]


def tags_to_dict(tags: Any) -> dict[str, str]:
    """The API's ``[{"key", "value"}]`` list as a dict; a dict is taken as it is."""
    if isinstance(tags, Mapping):
        return {str(key): tag_value(value) for key, value in tags.items()}
    if not isinstance(tags, list):
        return {}
    return {str(tag["key"]): tag_value(tag.get("value")) for tag in tags if isinstance(tag, Mapping) and "key" in tag}


# The tags that the cluster role gives each node: its cluster's name, and the time after which reap ends it.
CLUSTER_TAG = "cluster"
EXPIRY_TAG = "expires-at"


def tag_of(instance: Mapping[str, Any], key: str) -> str | None:
    """The value of the tag ``key`` of ``instance``, or None when it has no such tag."""
    return tags_to_dict(instance.get("tags")).get(key)


def dict_to_tags(tags: Mapping[str, Any] | None) -> list[dict[str, str]]:
    return [{"key": str(key), "value": tag_value(value)} for key, value in (tags or {}).items()]


def is_existing(instance: Mapping[str, Any]) -> bool:
    return instance.get("status") in EXISTING_STATUSES


def cents(value: Any) -> int:
    """A price in cents as a whole number: a number (or its text) rounded to the nearest cent; 0 for anything else."""
    if isinstance(value, bool):
        return 0
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return 0
    return round(value) if isinstance(value, (int, float)) and math.isfinite(value) else 0


def price_cents_per_hour(instance: Mapping[str, Any]) -> int:
    """What an instance costs per hour, in whole cents, from its instance type; 0 when the API does not say."""
    itype = instance.get("instance_type")
    return cents(itype.get("price_cents_per_hour")) if isinstance(itype, Mapping) else 0


def dollars(cents_value: Any) -> str:
    """Cents as dollars with two decimals, without the sign: 129 gives "1.29"; None gives "0.00"."""
    return f"{cents(cents_value) / 100:.2f}"


def natural_key(name: Any) -> tuple[Any, ...]:
    """Natural order of names: node-2 before node-10."""
    return tuple(int(part) if part.isdecimal() else part for part in re.split(r"(\d+)", str(name or "")))


def without_secrets(instance: dict[str, Any] | None) -> dict[str, Any] | None:
    """The instance without its JupyterLab token and URL, which are credentials."""
    if not isinstance(instance, dict):
        return instance
    return {key: value for key, value in instance.items() if key not in JUPYTER_FIELDS}


def represent_instance(instance: dict[str, Any] | None, include_jupyter: bool = False) -> dict[str, Any] | None:
    """An instance as every result shows it: tags as a dict, Jupyter credentials only when asked for."""
    if not isinstance(instance, dict):
        return instance
    shown = dict(instance if include_jupyter else without_secrets(instance) or {})
    if "tags" in shown:
        shown["tags"] = tags_to_dict(shown["tags"])
    return shown


def find_named(items: Iterable[Mapping[str, Any]], name: str) -> list[Mapping[str, Any]]:
    return [item for item in items if item.get("name") == name]


# --------------------------------------------------------------------- instances
def list_instances(client: LambdaCloudClient) -> list[dict[str, Any]]:
    data = client.get("/instances")
    if data is not None and not isinstance(data, list):
        raise LambdaCloudError("The API answered GET /instances without a list of instances.", kind="body")
    return [item for item in data or [] if isinstance(item, dict)]


def list_existing(client: LambdaCloudClient) -> list[dict[str, Any]]:
    """The existing (booting, active, unhealthy) instances."""
    return [item for item in list_instances(client) if is_existing(item)]


def named(instances: Iterable[Mapping[str, Any]], name: str) -> list[Mapping[str, Any]]:
    """The instances with this name, lowest id first."""
    return sorted(find_named(instances, name), key=lambda item: str(item.get("id")))


def list_existing_named(client: LambdaCloudClient, name: str) -> list[Mapping[str, Any]]:
    """The existing instances with this name, lowest id first."""
    return named(list_existing(client), name)


def get_instance(client: LambdaCloudClient, instance_id: str) -> dict[str, Any] | None:
    """The instance with this id, or None when the API does not know it."""
    try:
        data = client.get(api_path("instances", instance_id))
    except LambdaCloudError as error:
        if error.status == 404:
            return None
        raise
    return data if isinstance(data, dict) else None


def rename_instance(client: LambdaCloudClient, instance_id: str, name: str) -> dict[str, Any]:
    return client.post(api_path("instances", instance_id), {"name": name}, retry=RETRY_SAFE)


def launch_instance(
    client: LambdaCloudClient,
    body: Mapping[str, Any],
    idempotency_key: str,
    default_retry_after: float,
    deadline: float | None = None,
) -> str:
    """One launch request (never repeated after an unclear answer; 429s waited out until ``deadline``); its id."""
    data = client.post(
        "/instance-operations/launch",
        dict(body),
        default_retry_after=default_retry_after,
        headers={"Idempotency-Key": idempotency_key},
        deadline=deadline,
    )
    ids = data.get("instance_ids") if isinstance(data, dict) else None
    if not isinstance(ids, list) or not ids or not isinstance(ids[0], str) or not ids[0]:
        # A success without an id was processed all the same: an unclear answer, to reconcile by name.
        raise LambdaCloudError(
            "The API answered the launch with a success that carries no instance id.",
            method="POST",
            path="/instance-operations/launch",
            may_have_processed=True,
            kind="body",
        )
    return ids[0]


def terminate_instances(client: LambdaCloudClient, instance_ids: list[str]) -> list[dict[str, Any]]:
    """Terminate; repeating it is harmless, so it is retried like a read."""
    data = client.post("/instance-operations/terminate", {"instance_ids": instance_ids}, retry=RETRY_SAFE)
    return list((data or {}).get("terminated_instances") or [])


def restart_instances(client: LambdaCloudClient, instance_ids: list[str]) -> list[dict[str, Any]]:
    data = client.post("/instance-operations/restart", {"instance_ids": instance_ids})
    return list((data or {}).get("restarted_instances") or [])


# --------------------------------------------------------------------- catalogue
def list_instance_types(client: LambdaCloudClient) -> list[dict[str, Any]]:
    """Instance types flattened to one dict each, cheapest first."""
    data = client.get("/instance-types") or {}
    types = []
    for name, item in data.items():
        entry = dict(item.get("instance_type") or {})
        entry.setdefault("name", name)
        entry["regions_with_capacity_available"] = item.get("regions_with_capacity_available") or []
        types.append(entry)
    types.sort(key=lambda t: (t.get("price_cents_per_hour", 0), t["name"]))
    return types


def list_images(client: LambdaCloudClient) -> list[dict[str, Any]]:
    return client.get("/images") or []


# --------------------------------------------------------------------- SSH keys and file systems
def list_ssh_keys(client: LambdaCloudClient) -> list[dict[str, Any]]:
    """SSH keys, never with a private key (the API only returns one when it generates a pair)."""
    keys = client.get("/ssh-keys") or []
    return [{k: v for k, v in key.items() if k != "private_key"} for key in keys]


def add_ssh_key(client: LambdaCloudClient, name: str, public_key: str | None) -> dict[str, Any]:
    """Add a key; without ``public_key`` the API generates a pair and answers with the private key, once. A generated
    key answered without its id or private key was created all the same: an unclear answer, like a lost one."""
    body = {"name": name} if public_key is None else {"name": name, "public_key": public_key}
    data = client.post("/ssh-keys", body)
    if public_key is None and not (
        isinstance(data, dict) and data.get("id") and isinstance(data.get("private_key"), str)
    ):
        raise LambdaCloudError(
            "The API answered the key generation with a success that carries no private key.",
            method="POST",
            path="/ssh-keys",
            may_have_processed=True,
            kind="body",
        )
    return data


def list_file_systems(client: LambdaCloudClient) -> list[dict[str, Any]]:
    return client.get("/file-systems") or []


def create_file_system(client: LambdaCloudClient, name: str, region: str) -> dict[str, Any]:
    return client.post("/filesystems", {"name": name, "region": region})


def delete_confirmed(client: LambdaCloudClient, path: str, still_there: Callable[[], bool]) -> None:
    """DELETE ``path``; an error after which the resource is gone anyway (a retried delete) is success."""
    try:
        client.delete(path)
    except LambdaCloudError as error:
        if error.status in (400, 404) and not still_there():
            return
        raise


def delete_ssh_key(client: LambdaCloudClient, key_id: str) -> None:
    delete_confirmed(
        client, api_path("ssh-keys", key_id), lambda: any(k.get("id") == key_id for k in list_ssh_keys(client))
    )


def delete_file_system(client: LambdaCloudClient, fs_id: str) -> None:
    delete_confirmed(
        client, api_path("filesystems", fs_id), lambda: any(f.get("id") == fs_id for f in list_file_systems(client))
    )


def known_regions(*resource_lists: Iterable[Mapping[str, Any]]) -> set[str]:
    """Every region the API mentions in these lists (capacity of instance types, images, file systems, ...)."""
    found: set[str] = set()
    for items in resource_lists:
        for item in items:
            found.update(capacity_regions(item))
            name = region_name(item)
            if isinstance(name, str):
                found.add(name)
    return found


# --------------------------------------------------------------------- firewalls
def list_firewall_rulesets(client: LambdaCloudClient) -> list[dict[str, Any]]:
    return client.get("/firewall-rulesets") or []


def create_firewall_ruleset(client: LambdaCloudClient, name: str, region: str, rules: list[dict[str, Any]]) -> dict:
    return client.post("/firewall-rulesets", {"name": name, "region": region, "rules": rules})


def update_firewall_ruleset(client: LambdaCloudClient, ruleset_id: str, rules: list[dict[str, Any]]) -> dict:
    """Replace the rules of a ruleset: one PATCH, which is safe to repeat."""
    return client.patch(api_path("firewall-rulesets", ruleset_id), {"rules": rules}, retry=RETRY_SAFE)


def delete_firewall_ruleset(client: LambdaCloudClient, ruleset_id: str) -> None:
    delete_confirmed(
        client,
        api_path("firewall-rulesets", ruleset_id),
        lambda: any(r.get("id") == ruleset_id for r in list_firewall_rulesets(client)),
    )


def get_global_firewall_rules(client: LambdaCloudClient) -> list[dict[str, Any]]:
    return list((client.get("/firewall-rulesets/global") or {}).get("rules") or [])


def update_global_firewall_rules(client: LambdaCloudClient, rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    data = client.patch("/firewall-rulesets/global", {"rules": rules}, retry=RETRY_SAFE)
    return list((data or {}).get("rules") or [])


# --------------------------------------------------------------------- audit events
def audit_events_page(client: LambdaCloudClient, params: Mapping[str, Any]) -> tuple[list[dict[str, Any]], str | None]:
    """One page of audit events and the token of the next one (None on the last page)."""
    data = client.get("/audit-events", params={k: v for k, v in params.items() if v is not None}) or {}
    return list(data.get("events") or []), data.get("page_token") or None


# The audit trail's actions that make an instance, and how many of its pages a launch reads at most.
INSTANCE_MADE_ACTIONS = frozenset({"launched", "created", "launch", "create"})
LAUNCH_TIME_PAGES = 10
INSTANCE_RESOURCE_TYPE = "cloud.instance"  # as the API reference names resource types (cloud.api_key)


def event_seconds(text: Any) -> float | None:
    """An audit event's ``event_time`` (ISO 8601, UTC) as seconds since the epoch; None when it is not one."""
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text).timestamp()
    except ValueError:
        return None


def instance_launch_times(client: LambdaCloudClient, ids: Iterable[str], since: str) -> dict[str, float]:
    """When the API made each of the instances ``ids`` (seconds since the epoch), from the audit trail's events since
    ``since`` (ISO 8601): the one order of launches that every controller reads alike. An instance without such an
    event is left out; a trail that cannot be read gives nothing."""
    wanted = {f"lrn:cloud:instance:{instance_id}": instance_id for instance_id in ids}
    found: dict[str, float] = {}
    token = None
    for _page in range(LAUNCH_TIME_PAGES):
        try:
            query = {"start": since, "resource_type": INSTANCE_RESOURCE_TYPE, "page_token": token}
            events, token = audit_events_page(client, query)
        except LambdaCloudError:
            return {}
        for event in events:
            if not isinstance(event, Mapping) or event.get("action") not in INSTANCE_MADE_ACTIONS:
                continue
            when = event_seconds(event.get("event_time"))
            if when is None:
                continue
            for lrn in event.get("resource_lrns") or ():
                made = wanted.get(lrn) if isinstance(lrn, str) else None
                if made is not None and when < found.get(made, math.inf):
                    found[made] = when
        if token is None or len(found) == len(wanted):
            break
    return found
