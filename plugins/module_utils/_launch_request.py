# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What to launch: the launch options of lambda_instance, their checks, the request body, and comparing an
existing instance with the request."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ansible_collections.lambdalabs.cloud.plugins.module_utils._api import (
    dict_to_tags,
    instance_type_name,
    list_file_systems,
    list_firewall_rulesets,
    list_images,
    list_instance_types,
    list_ssh_keys,
    region_name,
    tags_to_dict,
)
from ansible_collections.lambdalabs.cloud.plugins.module_utils._client import DEFAULT_REQUEST_TIMEOUT, LambdaCloudClient
from ansible_collections.lambdalabs.cloud.plugins.module_utils._launch import (
    CONFIRM_REQUEST_TIMEOUTS,
    MIN_CONFIRM_SECONDS,
    Candidates,
    Launcher,
    confirm_floor,
    launch_candidates,
)
from ansible_collections.lambdalabs.cloud.plugins.module_utils._pacer import LaunchPacer
from ansible_collections.lambdalabs.cloud.plugins.module_utils._validation import (
    InvalidParameter,
    check_choice,
    check_file_system_name,
    check_hostname,
    check_id,
    check_instance_type,
    check_mount_point,
    check_name,
    check_new_name,
    check_number,
    check_region,
    check_tags,
    check_text,
    check_user_data,
    tag_value,
)

# How long a launch whose answer was lost is looked for by default, unless the floor is longer.
DEFAULT_CONFIRM_SECONDS = 180

WEEK = 7 * 24 * 3600

LAUNCH_OPTIONS: dict[str, Any] = {
    "instance_type": {"type": "list", "elements": "str"},
    "region": {"type": "list", "elements": "str"},
    "min_gpus": {"type": "int"},
    "max_price_cents_per_hour": {"type": "int"},
    "capacity_timeout": {"type": "int", "default": 0},
    "ssh_key_name": {"type": "list", "elements": "str", "aliases": ["ssh_key_names"], "no_log": False},
    "file_system_names": {"type": "list", "elements": "str"},
    "file_system_mounts": {
        "type": "list",
        "elements": "dict",
        "options": {
            "name": {"type": "str"},
            "file_system_id": {"type": "str"},
            "mount_point": {"type": "str", "required": True},
        },
        "mutually_exclusive": [["name", "file_system_id"]],
        "required_one_of": [["name", "file_system_id"]],
    },
    "image": {
        "type": "dict",
        "options": {"id": {"type": "str"}, "family": {"type": "str"}},
        "mutually_exclusive": [["id", "family"]],
        "required_one_of": [["id", "family"]],
    },
    "user_data": {"type": "str", "no_log": True},
    "tags": {"type": "dict"},
    "hostname": {"type": "str"},
    "firewall_ruleset_ids": {"type": "list", "elements": "str"},
    "firewall_ruleset_names": {"type": "list", "elements": "str"},
    "launch_interval": {"type": "float", "default": 12},
    "launch_confirm_timeout": {"type": "int"},
}


def check_instance_options(p: Mapping[str, Any]) -> None:
    """Everything about lambda_instance's options that can be checked without the API."""
    check_id("id", p.get("id"))
    check_name("name", p.get("name"))
    check_hostname("hostname", p.get("hostname"))
    check_tags("tags", p.get("tags"))
    check_user_data("user_data", p.get("user_data"))
    check_region("region", p.get("region") or [])
    check_instance_type("instance_type", p.get("instance_type") or [])
    keys = p.get("ssh_key_name")
    if keys is not None and len(keys) != 1:
        raise InvalidParameter("ssh_key_name", f"the API takes exactly one SSH key, got {len(keys)}.")
    for key in keys or []:
        check_name("ssh_key_name", key)
    for name in p.get("file_system_names") or []:
        check_file_system_name("file_system_names", name)
    for index, mount in enumerate(p.get("file_system_mounts") or []):
        where = f"file_system_mounts[{index}]"
        check_file_system_name(f"{where}.name", mount.get("name"))
        check_id(f"{where}.file_system_id", mount.get("file_system_id"))
        check_mount_point(f"{where}.mount_point", mount.get("mount_point"))
    image = p.get("image") or {}
    check_id("image.id", image.get("id"))
    check_text("image.family", image.get("family"), max_length=128)
    for ruleset_id in p.get("firewall_ruleset_ids") or []:
        check_id("firewall_ruleset_ids", ruleset_id)
    for ruleset in p.get("firewall_ruleset_names") or []:
        check_name("firewall_ruleset_names", ruleset)
    check_number("wait_timeout", p.get("wait_timeout"), minimum=0, maximum=WEEK)
    check_number("progress_seconds", p.get("progress_seconds"), minimum=0, maximum=WEEK)
    check_number("capacity_timeout", p.get("capacity_timeout"), minimum=0, maximum=WEEK)
    check_number("launch_confirm_timeout", p.get("launch_confirm_timeout"), minimum=0, maximum=24 * 3600)
    check_number("launch_interval", p.get("launch_interval"), minimum=0, maximum=3600)
    check_number("min_gpus", p.get("min_gpus"), minimum=0, maximum=1024)
    check_number("max_price_cents_per_hour", p.get("max_price_cents_per_hour"), minimum=0, maximum=10**7)


def confirm_timeout(p: Mapping[str, Any]) -> float:
    """How long to look for an instance after an unclear launch answer: launch_confirm_timeout, which must cover an
    answer that the API processes late (:func:`confirm_floor`); unset, 180 s or the floor when that is longer."""
    timeout = p.get("request_timeout")
    floor = confirm_floor(DEFAULT_REQUEST_TIMEOUT if timeout is None else timeout)
    value = p.get("launch_confirm_timeout")
    if value is None:
        return max(DEFAULT_CONFIRM_SECONDS, floor)
    if value < floor:
        raise InvalidParameter(
            "launch_confirm_timeout",
            f"must be at least {floor:g} s ({CONFIRM_REQUEST_TIMEOUTS} times request_timeout, and at least "
            f"{MIN_CONFIRM_SECONDS:g} s), got {value:g}: a shorter look for a launch whose answer was lost can miss "
            "an instance that the API creates late.",
        )
    return float(value)


def _narrow_regions(
    param: str, regions: list[str] | None, used: list[Mapping[str, Any]], what: str
) -> list[str] | None:
    """The requested regions narrowed to the one region that the attached resources live in."""
    required = sorted({str(region_name(item)) for item in used})
    if not required:
        return regions
    names = ", ".join(sorted({str(item.get("name")) for item in used}))
    if len(required) > 1:
        raise InvalidParameter(param, f"the {what} {names} are in different regions: {', '.join(required)}.")
    if regions and required[0] not in regions:
        raise InvalidParameter(
            "region",
            f"{what} {names} is in {required[0]}, which is not among the requested regions ({', '.join(regions)}); "
            "an instance can only use those of its own region.",
        )
    return required


def _rulesets_by_region(
    client: LambdaCloudClient, names: list[str], regions: list[str] | None
) -> tuple[dict[str, list[str]], list[str]]:
    """The ids of the named rulesets in each region that has all of them, and those regions (in request order)."""
    rulesets = list_firewall_rulesets(client)
    check_choice("firewall_ruleset_names", names, (r.get("name") for r in rulesets), "firewall ruleset")
    by_region: dict[str, list[str]] = {}
    for region in dict.fromkeys(str(region_name(r)) for r in rulesets):
        ids = []
        for name in names:
            here = [r["id"] for r in rulesets if r.get("name") == name and region_name(r) == region]
            if len(here) > 1:
                raise InvalidParameter(
                    "firewall_ruleset_names", f"{len(here)} rulesets are named '{name}' in {region}."
                )
            ids += here
        if len(ids) == len(names):
            by_region[region] = ids
    eligible = [region for region in regions or by_region if region in by_region]
    if not eligible:
        where = f"any of the requested regions ({', '.join(regions)})" if regions else "one region"
        raise InvalidParameter("firewall_ruleset_names", f"no ruleset set {', '.join(names)} is complete in {where}.")
    return by_region, eligible


def build_launch_request(
    client: LambdaCloudClient, p: Mapping[str, Any], types: list[Mapping[str, Any]]
) -> tuple[dict[str, Any], list[str] | None]:
    """Read what a launch needs, refuse what the API would refuse, and return the body and the eligible regions."""
    for param in ("instance_type", "ssh_key_name"):
        if not p.get(param):
            raise InvalidParameter(param, "is required to launch an instance.")
    check_choice("instance_type", p["instance_type"], (t["name"] for t in types), "instance type")
    check_choice("ssh_key_name", p["ssh_key_name"], (k["name"] for k in list_ssh_keys(client)), "SSH key")
    regions = p.get("region")
    body: dict[str, Any] = {"ssh_key_names": p["ssh_key_name"], "name": p["name"]}
    if p.get("file_system_names") or p.get("file_system_mounts"):
        systems = list_file_systems(client)
        by_name = {fs["name"]: fs for fs in systems}
        by_id = {fs["id"]: fs for fs in systems}
        check_choice("file_system_names", p.get("file_system_names"), by_name, "file system")
        used = [by_name[name] for name in p.get("file_system_names") or []]
        mounts = []
        for mount in p.get("file_system_mounts") or []:
            if mount.get("name"):
                check_choice("file_system_mounts", mount["name"], by_name, "file system")
                fs = by_name[mount["name"]]
            else:
                check_choice("file_system_mounts", mount["file_system_id"], by_id, "file system id")
                fs = by_id[mount["file_system_id"]]
            used.append(fs)
            mounts.append({"file_system_id": fs["id"], "mount_point": mount["mount_point"]})
        regions = _narrow_regions("file_system_names", regions, used, "file system")
        if p.get("file_system_names"):
            body["file_system_names"] = p["file_system_names"]
        if mounts:
            body["file_system_mounts"] = mounts
    by_region: dict[str, list[str]] = {}
    if p.get("firewall_ruleset_names"):
        by_region, regions = _rulesets_by_region(client, p["firewall_ruleset_names"], regions)
    if p.get("firewall_ruleset_ids"):
        body["firewall_rulesets"] = [{"id": ruleset_id} for ruleset_id in p["firewall_ruleset_ids"]]
    if by_region:
        body["_firewall_by_region"] = by_region
    image = p.get("image")
    if image:
        images = [i for i in list_images(client) if not regions or region_name(i) in regions]
        if image.get("id"):
            check_choice("image", image["id"], (i["id"] for i in images), "image id")
            body["image"] = {"id": image["id"]}
        else:
            check_choice("image", image["family"], (i.get("family") for i in images), "image family")
            body["image"] = {"family": image["family"]}
    if p.get("user_data") is not None:
        body["user_data"] = p["user_data"]
    if p.get("tags"):
        body["tags"] = dict_to_tags(p["tags"])
    if p.get("hostname"):
        body["hostname"] = p["hostname"]
    return body, regions


def differences(p: Mapping[str, Any], instance: Mapping[str, Any]) -> list[str]:
    """Requested attributes that differ from the instance and cannot change in place."""
    found = []

    def differ(param: str, actual: Any, wanted: Any) -> None:
        found.append(f"{param} is {actual!r} (requested {wanted!r})")

    if p.get("instance_type") and instance_type_name(instance) not in p["instance_type"]:
        differ("instance_type", instance_type_name(instance), p["instance_type"])
    if p.get("region") and region_name(instance) not in p["region"]:
        differ("region", region_name(instance), p["region"])
    if p.get("ssh_key_name") and sorted(instance.get("ssh_key_names") or []) != sorted(p["ssh_key_name"]):
        differ("ssh_key_name", instance.get("ssh_key_names"), p["ssh_key_name"])
    actual_fs = sorted(instance.get("file_system_names") or [])
    if p.get("file_system_names") and not set(p["file_system_names"]) <= set(actual_fs):
        differ("file_system_names", actual_fs, p["file_system_names"])
    actual_tags = tags_to_dict(instance.get("tags"))
    wanted_tags = {str(k): tag_value(v) for k, v in (p.get("tags") or {}).items()}
    if any(actual_tags.get(k) != v for k, v in wanted_tags.items()):
        differ("tags", actual_tags, wanted_tags)
    if p.get("hostname") and instance.get("hostname") and instance["hostname"] != p["hostname"]:
        differ("hostname", instance["hostname"], p["hostname"])
    return found


@dataclass
class LaunchPlan:
    """A checked launch: the request body, the eligible regions and the instance types read for it."""

    body: dict[str, Any]
    regions: list[str] | None
    types: list[Mapping[str, Any]]
    params: Mapping[str, Any]

    def body_for(self, region: str) -> dict[str, Any]:
        """The request body for a region: the rulesets given by name are the ones of that region."""
        body = {key: value for key, value in self.body.items() if not key.startswith("_")}
        by_region = self.body.get("_firewall_by_region")
        if by_region:
            ids = [r["id"] for r in body.get("firewall_rulesets", [])] + by_region.get(region, [])
            body["firewall_rulesets"] = [{"id": ruleset_id} for ruleset_id in dict.fromkeys(ids)]
        return body

    def choose(self, types: list[Mapping[str, Any]]) -> Candidates:
        p = self.params
        return launch_candidates(
            types, p["instance_type"], self.regions, p.get("min_gpus"), p.get("max_price_cents_per_hour")
        )

    def predicted(self) -> dict[str, Any]:
        """What check mode reports: the first pair with capacity now (or, when capacity is awaited, the first)."""
        candidates = self.choose(self.types)
        pairs = candidates.available or (candidates.pairs if self.params.get("capacity_timeout") else [])
        if not pairs:
            raise InvalidParameter("instance_type", "no requested type and region has capacity now; a run would fail.")
        type_name, region = pairs[0]
        return {"instance_type": type_name, "region": region}


def plan_launch(client: LambdaCloudClient, p: Mapping[str, Any]) -> LaunchPlan:
    """Read and check what a launch needs; refuse a name that could be mistaken for another, a confirm window too
    short, and limits that exclude every requested type."""
    check_new_name("name", p.get("name"))
    confirm_timeout(p)
    types = list_instance_types(client)
    body, regions = build_launch_request(client, p, types)
    plan = LaunchPlan(body, regions, types, p)
    excluded = plan.choose(types).excluded
    if len(excluded) == len(set(p["instance_type"])):
        limits = "; ".join(f"{name}: {why}" for name, why in excluded.items())
        raise InvalidParameter("instance_type", f"every requested type is excluded by the limits ({limits}).")
    return plan


def launcher_for(client: LambdaCloudClient, p: Mapping[str, Any], log: Callable[[str], None]) -> Launcher:
    return Launcher(
        client,
        p["name"],
        LaunchPacer(client.api_url, p["launch_interval"]),
        rate_limit_deadline=time.monotonic() + p["wait_timeout"],
        confirm_timeout=confirm_timeout(p),
        capacity_timeout=p["capacity_timeout"],
        log=log,
    )
