# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The control API's view of the account and its seeding: ``GET`` and ``POST /_simulator/state``.

Seeded resources are completed from the catalogue (instance types and regions may be given by name alone) and
keep what they are given, the status of instances included; seeded instances get no node.
"""

from __future__ import annotations

from typing import Any

from sim_account import Account
from sim_account_base import NO_TYPE_SUGGESTION, iso_time, new_id
from sim_catalogue import INSTANCE_TYPES, REGION_OBJECTS, REGIONS
from sim_file_systems import new_file_system, ordered_file_system
from sim_instances import actions_for, ordered_instance
from sim_keys import random_public_key
from sim_requests import parse_rules, parse_time
from sim_validation import check_keys, expect_object, field_name, get_list, get_str, invalid, require_str, type_name

STATE_PARTS = ("instances", "ssh_keys", "file_systems", "firewall_rules", "firewall_rulesets", "capacity")


def snapshot_view(account: Account) -> dict[str, Any]:
    """What ``GET /_simulator/state`` shows."""
    return {
        "instances": list(account.instances.values()),
        "ssh_keys": account.list_ssh_keys(),
        "file_systems": account.list_file_systems(),
        "firewall_rules": account.firewall_rules,
        "firewall_rulesets": account.list_rulesets(),
        "capacity": account.capacity,
    }


def merge(account: Account, body: Any, now: float) -> dict[str, Any]:
    """``POST /_simulator/state``: add or replace resources, complete them, set capacity."""
    obj = expect_object(body)
    check_keys(obj, STATE_PARTS)
    capacity = parse_capacity(obj.get("capacity"))
    raw_instances = get_list(obj, "instances") or []
    launch_times = [seed_launch_time(raw, index) for index, raw in enumerate(raw_instances)]
    instances = [seed_instance(account, raw, index) for index, raw in enumerate(raw_instances)]
    keys = [seed_ssh_key(raw, index) for index, raw in enumerate(get_list(obj, "ssh_keys") or [])]
    systems = [seed_file_system(raw, index, now) for index, raw in enumerate(get_list(obj, "file_systems") or [])]
    rulesets = [seed_ruleset(raw, index, now) for index, raw in enumerate(get_list(obj, "firewall_rulesets") or [])]
    rules = parse_rules(obj["firewall_rules"], "firewall_rules") if "firewall_rules" in obj else None
    account.capacity.update(capacity)
    for instance, launched in zip(instances, launch_times):
        account.instances[instance["id"]] = instance
        account.pending.pop(instance["id"], None)
        if launched is not None:
            account.record_past_event("instance", "launched", instance, launched)
    account.ssh_keys.update((key["id"], key) for key in keys)
    account.file_systems.update((fs["id"], fs) for fs in systems)
    account.rulesets.update((ruleset["id"], ruleset) for ruleset in rulesets)
    if rules is not None:
        account.firewall_rules = rules
    if instances:
        account.instances_changed()
    account.dirty = True
    return {
        "merged": {
            "instances": len(instances),
            "ssh_keys": len(keys),
            "file_systems": len(systems),
            "firewall_rulesets": len(rulesets),
        },
        "instance_ids": [instance["id"] for instance in instances],
        "ssh_key_ids": [key["id"] for key in keys],
        "file_system_ids": [fs["id"] for fs in systems],
        "firewall_ruleset_ids": [ruleset["id"] for ruleset in rulesets],
    }


def parse_capacity(value: Any) -> dict[str, list[str]]:
    if value is None:
        return {}
    capacity = expect_object(value, "capacity")
    result = {}
    for type_name_, regions in capacity.items():
        where = field_name("capacity", type_name_)
        if type_name_ not in INSTANCE_TYPES:
            raise invalid(f"'{where}': unknown instance type.", NO_TYPE_SUGGESTION)
        if not isinstance(regions, list) or not all(isinstance(region, str) for region in regions):
            raise invalid(f"'{where}' must be an array of region names.")
        unknown = [region for region in regions if region not in REGIONS]
        if unknown:
            raise invalid(f"'{where}': unknown region(s) {', '.join(unknown)}.")
        result[type_name_] = list(dict.fromkeys(regions))
    return result


def region_ref(region: Any, where: str) -> dict[str, Any]:
    """A region object completed from the catalogue when given by name alone."""
    if isinstance(region, dict) and set(region) == {"name"}:
        region = region["name"]
    if isinstance(region, str):
        if region not in REGION_OBJECTS:
            raise invalid(f"'{where}': unknown region {region!r}.", f"Use one of: {', '.join(REGIONS)}.")
        return REGION_OBJECTS[region]
    if isinstance(region, dict):
        return region
    raise invalid(f"'{where}' must be a region name or object, not {type_name(region)}.")


def instance_type_ref(instance_type: Any, where: str) -> dict[str, Any]:
    """An instance type object completed from the catalogue when given by name alone."""
    if isinstance(instance_type, dict) and set(instance_type) == {"name"}:
        instance_type = instance_type["name"]
    if isinstance(instance_type, str):
        if instance_type not in INSTANCE_TYPES:
            raise invalid(f"'{where}': unknown instance type {instance_type!r}.", NO_TYPE_SUGGESTION)
        return INSTANCE_TYPES[instance_type]
    if isinstance(instance_type, dict):
        return instance_type
    raise invalid(f"'{where}' must be an instance type name or object, not {type_name(instance_type)}.")


def seed_launch_time(raw: Any, index: int) -> float | None:
    """``launched_at`` (ISO 8601) of a seeded instance: the time of the audit trail's launch event it gets."""
    where = field_name("instances", index)
    given = expect_object(raw, where)
    if "launched_at" not in given:
        return None
    return parse_time(require_str(given, "launched_at", where), f"{where}.launched_at")


def seed_instance(account: Account, raw: Any, index: int) -> dict[str, Any]:
    where = field_name("instances", index)
    given = expect_object(raw, where)
    instance = {key: value for key, value in given.items() if key != "launched_at"}
    instance_id = instance.get("id") or new_id()
    if not isinstance(instance_id, str):
        raise invalid(f"'{where}.id' must be a string.")
    instance["id"] = instance_id
    instance["instance_type"] = instance_type_ref(given.get("instance_type", "gpu_1x_a10"), f"{where}.instance_type")
    instance["region"] = region_ref(given.get("region", "us-west-1"), f"{where}.region")
    status = instance.setdefault("status", "active")
    for key in ("ssh_key_names", "file_system_names", "tags", "firewall_rulesets"):
        if key not in instance:
            instance[key] = []
    if "actions" not in instance:
        instance["actions"] = actions_for(status)
    if status in ("active", "unhealthy") or "ip" in instance:
        account.assign_network(instance, None)
    return ordered_instance(instance)


def seed_ssh_key(raw: Any, index: int) -> dict[str, Any]:
    where = field_name("ssh_keys", index)
    given = expect_object(raw, where)
    check_keys(given, ("id", "name", "public_key"), ("name",), where)
    name = require_str(given, "name", where, min_length=1)
    return {
        "id": get_str(given, "id", where, min_length=1) or new_id(),
        "name": name,
        "public_key": get_str(given, "public_key", where) or random_public_key(name),
    }


def seed_file_system(raw: Any, index: int, now: float) -> dict[str, Any]:
    where = field_name("file_systems", index)
    given = expect_object(raw, where)
    name = require_str(given, "name", where, min_length=1)
    fs = new_file_system(name, "us-west-1", now)
    fs.update({key: value for key, value in given.items() if key != "is_in_use"})
    fs["region"] = region_ref(given.get("region", "us-west-1"), f"{where}.region")
    return ordered_file_system(fs)


def seed_ruleset(raw: Any, index: int, now: float) -> dict[str, Any]:
    where = field_name("firewall_rulesets", index)
    given = expect_object(raw, where)
    check_keys(given, ("id", "name", "region", "rules", "created", "instance_ids"), ("name",), where)
    return {
        "id": get_str(given, "id", where, min_length=1) or new_id(),
        "name": require_str(given, "name", where),
        "region": region_ref(given.get("region", "us-west-1"), f"{where}.region"),
        "rules": parse_rules(given.get("rules", []), f"{where}.rules"),
        "created": get_str(given, "created", where) or iso_time(now),
    }
