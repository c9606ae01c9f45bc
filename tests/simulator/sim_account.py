# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The simulated account: its resources, the API operations on them and the instance lifecycle.

Not thread-safe by itself; the server calls it while holding one lock.

Instances are kept as ready-to-serve API objects. Their lifecycle is lazy: an
operation schedules timestamped transitions, and :meth:`Account.advance` applies
the due ones at the start of each request, touching only instances in transition.
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sim_addresses import AddressPool, private_for
from sim_catalogue import (
    DEFAULT_CAPACITY,
    DEFAULT_IMAGE_FAMILY,
    IMAGE_FAMILIES,
    IMAGES,
    IMAGES_BY_ID,
    INSTANCE_TYPES,
    REGION_OBJECTS,
    REGIONS,
    TYPE_ARCHITECTURE,
    default_firewall_rules,
    find_image,
)
from sim_hooks import InstanceHooks
from sim_keys import generate_key_pair, public_key_problem, random_public_key
from sim_requests import (
    FILESYSTEM_NAME_PATTERN,
    LaunchRequest,
    decode_page_token,
    encode_page_token,
    parse_rules,
    parse_time,
)
from sim_validation import (
    ApiError,
    check_keys,
    expect_object,
    field_name,
    get_list,
    get_str,
    get_str_list,
    invalid,
    not_found,
    require_str,
    type_name,
)

AUDIT_PAGE_SIZE = 50
AUDIT_CATALOG_VERSION = "2025-09-06"
GLOBAL_RULESET_ID = "global"
GLOBAL_RULESET_NAME = "Global Firewall Rules"

ACCOUNT_ID = "5d1c0f4c7e2a4b0b9a3e6f1d2c8b7a90"
USER = {"id": "0c6e3a1f9b8d4e2f8a7b6c5d4e3f2a1b", "email": "simulator@example.com", "status": "active"}
API_KEY_LRN = "lrn:cloud:api_key:9f8e7d6c5b4a39281706f5e4d3c2b1a0"

GONE_STATUSES = ("terminated",)
INSTANCE_KEY_ORDER = (
    "id",
    "name",
    "ip",
    "private_ip",
    "status",
    "ssh_key_names",
    "file_system_names",
    "file_system_mounts",
    "region",
    "instance_type",
    "hostname",
    "jupyter_token",
    "jupyter_url",
    "actions",
    "tags",
    "firewall_rulesets",
)

_AVAILABLE = {"available": True}
_NOT_LAUNCHED = {
    "available": False,
    "reason_code": "vm-has-not-launched",
    "reason_description": "The instance has not finished launching yet.",
}
_TERMINATING = {
    "available": False,
    "reason_code": "vm-is-terminating",
    "reason_description": "The instance is terminating or has been terminated.",
}
_ACTION_NAMES = ("migrate", "rebuild", "restart", "cold_reboot", "terminate")
ACTIONS_RUNNING = {name: _AVAILABLE for name in _ACTION_NAMES}
ACTIONS_BOOTING = {name: (_AVAILABLE if name == "terminate" else _NOT_LAUNCHED) for name in _ACTION_NAMES}
ACTIONS_TERMINATING = {name: _TERMINATING for name in _ACTION_NAMES}

NO_TYPE_SUGGESTION = "List the instance types with GET /api/v1/instance-types."
NO_INSTANCE_SUGGESTION = "List your instances with GET /api/v1/instances and check the ID."


def new_id() -> str:
    """A resource id: 32 lowercase hex characters."""
    return os.urandom(16).hex()


def iso_time(timestamp: float) -> str:
    """An ISO 8601 UTC timestamp with microseconds and a ``Z`` suffix."""
    return datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def actions_for(status: str) -> dict[str, Any]:
    if status == "booting":
        return ACTIONS_BOOTING
    if status in ("terminating", "terminated", "preempted"):
        return ACTIONS_TERMINATING
    return ACTIONS_RUNNING


def ordered_instance(instance: dict[str, Any]) -> dict[str, Any]:
    """The instance with its keys in the order the API answers them; unknown keys last."""
    result = {key: instance[key] for key in INSTANCE_KEY_ORDER if key in instance}
    for key, value in instance.items():
        if key not in result:
            result[key] = value
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


@dataclass
class Timing:
    """How long lifecycle phases last, in seconds."""

    boot_seconds: float = 5.0
    terminate_seconds: float = 2.0
    linger_seconds: float = 3.0


class Account:
    """Everything one API key sees, plus the capacity of the simulated cloud."""

    def __init__(
        self, timing: Timing, hooks: InstanceHooks | None = None, addresses: AddressPool | None = None
    ) -> None:
        self.timing = timing
        self.hooks = hooks or InstanceHooks()
        self.addresses = addresses or AddressPool()
        self.instances: dict[str, dict[str, Any]] = {}
        self.pending: dict[str, list[tuple[float, str]]] = {}
        self.requested_hostnames: dict[str, str] = {}
        self.launch_addresses: dict[str, list[str]] = {}
        self.ssh_keys: dict[str, dict[str, Any]] = {}
        self.file_systems: dict[str, dict[str, Any]] = {}
        self.firewall_rules: list[dict[str, Any]] = []
        self.rulesets: dict[str, dict[str, Any]] = {}
        self.capacity: dict[str, list[str]] = {}
        self.events: list[dict[str, Any]] = []
        self.dirty = False
        self._list_body: bytes | None = None
        self.reset()

    # ------------------------------------------------------------------ housekeeping

    def reset(self) -> None:
        """An empty account with the default catalogue capacity and firewall rules."""
        self.hooks.reset()
        self.addresses.release_all()
        self.instances = {}
        self.pending = {}
        self.requested_hostnames = {}
        self.launch_addresses = {}
        self.ssh_keys = {}
        self.file_systems = {}
        self.firewall_rules = default_firewall_rules()
        self.rulesets = {}
        self.capacity = copy.deepcopy(DEFAULT_CAPACITY)
        self.events = []
        self._instances_changed()

    def _instances_changed(self) -> None:
        self._list_body = None
        self.dirty = True

    def advance(self, now: float) -> None:
        """Apply every lifecycle transition that is due by ``now``."""
        if not self.pending:
            return
        for instance_id in list(self.pending):
            steps = self.pending[instance_id]
            while steps and steps[0][0] <= now:
                step = steps[0][1]
                boot = self.hooks.boot_state(instance_id) if step == "active" else "ready"
                if boot == "waiting" or (step == "terminated" and not self.hooks.stopped(instance_id)):
                    break  # the node is not there yet (or not gone yet): the step waits for it
                steps.pop(0)
                self._apply_step(instance_id, "unhealthy" if boot == "failed" else step)
            if not steps:
                del self.pending[instance_id]

    def _apply_step(self, instance_id: str, step: str) -> None:
        instance = self.instances.get(instance_id)
        if instance is None:
            return
        if step == "gone":
            del self.instances[instance_id]
            self.requested_hostnames.pop(instance_id, None)
            self.addresses.release((self.launch_addresses.pop(instance_id, None) or [instance.get("ip")])[0])
            self.hooks.gone(instance_id)
        elif step in ("active", "unhealthy"):
            instance["status"] = step
            instance["actions"] = ACTIONS_RUNNING
            addresses = self.launch_addresses.pop(instance_id, None)
            self._assign_network(instance, self.requested_hostnames.get(instance_id), addresses)
            self.instances[instance_id] = ordered_instance(instance)
        elif step == "terminated":
            instance["status"] = "terminated"
            instance["actions"] = ACTIONS_TERMINATING
        self._instances_changed()

    def _assign_network(
        self, instance: dict[str, Any], hostname: str | None, addresses: list[str] | None = None
    ) -> None:
        """Give an instance the addresses (loopback ones), hostname and Jupyter details a running one has."""
        if "ip" not in instance:
            instance["ip"], instance["private_ip"] = addresses or self.addresses.allocate()
        elif addresses:
            self.addresses.release(addresses[0])
        if "private_ip" not in instance:
            instance["private_ip"] = private_for(instance["ip"]) or self.addresses.allocate()[1]
        instance.setdefault("hostname", hostname or instance["ip"].replace(".", "-"))
        if "jupyter_token" not in instance:
            token = new_id()
            instance["jupyter_token"] = token
            instance["jupyter_url"] = f"https://jupyter-{new_id()}.lambdaspaces.com/?token={token}"

    def _event(self, resource: str, action: str, resource_id: str, details: dict[str, Any], now: float) -> None:
        lrn = f"lrn:cloud:{resource}:{resource_id}"
        self.events.append(
            {
                "service_name": "cloud",
                "resource_name": resource,
                "action": action,
                "catalog_version": AUDIT_CATALOG_VERSION,
                "event_id": new_id(),
                "event_time": iso_time(now),
                "actor_lrn": f"lrn:cloud:identity:{USER['id']}",
                "resource_lrns": [lrn],
                "resource_owner_lrn": f"lrn:cloud:account:{ACCOUNT_ID}",
                "request_api_key_lrn": API_KEY_LRN,
                "additional_details": {f"{resource}_lrn": lrn, **details},
                "_at": now,
            }
        )
        self.dirty = True

    # ------------------------------------------------------------------ instances

    def list_instances_body(self) -> bytes:
        """The whole ``GET /instances`` answer, serialized once per change of any instance."""
        if self._list_body is None:
            self._list_body = json.dumps({"data": list(self.instances.values())}).encode("utf-8")
        return self._list_body

    def get_instance(self, instance_id: str) -> dict[str, Any]:
        instance = self.instances.get(instance_id)
        if instance is None:
            raise not_found(f"Specified instance does not exist: {instance_id!r}.", NO_INSTANCE_SUGGESTION)
        return instance

    def rename_instance(self, instance_id: str, body: Any, now: float) -> dict[str, Any]:
        obj = expect_object(body)
        check_keys(obj, ("name",))
        name = get_str(obj, "name", max_length=64)
        instance = self.get_instance(instance_id)
        if name is not None and instance.get("name") != name:
            instance["name"] = name
            self.instances[instance_id] = instance = ordered_instance(instance)
            self._instances_changed()
            self._event("instance", "updated", instance_id, {"name": name}, now)
        return instance

    def _parse_ids(self, body: Any) -> list[str]:
        obj = expect_object(body)
        check_keys(obj, ("instance_ids",), ("instance_ids",))
        ids = get_str_list(obj, "instance_ids") or []
        if not ids:
            raise invalid("Field 'instance_ids' must list at least one instance ID.")
        unique = list(dict.fromkeys(ids))
        for instance_id in unique:
            self.get_instance(instance_id)
        return unique

    def restart(self, body: Any, now: float) -> list[dict[str, Any]]:
        ids = self._parse_ids(body)
        for instance_id in ids:
            status = self.instances[instance_id].get("status")
            if status in ("terminating", "terminated", "preempted"):
                raise invalid(
                    f"Instance {instance_id} is {status} and cannot be restarted.",
                    "Only running instances can be restarted; launch a new instance instead.",
                )
        restarted = []
        for instance_id in ids:
            instance = self.instances[instance_id]
            instance["status"] = "booting"
            instance["actions"] = ACTIONS_BOOTING
            self.pending[instance_id] = [(now + self.timing.boot_seconds, "active")]
            restarted.append(instance)
            self._event("instance", "restarted", instance_id, {}, now)
            self.hooks.restarted(instance_id)
        self._instances_changed()
        return restarted

    def terminate(self, body: Any, now: float) -> list[dict[str, Any]]:
        ids = self._parse_ids(body)
        terminated = []
        for instance_id in ids:
            instance = self.instances[instance_id]
            if instance.get("status") not in ("terminating", "terminated"):
                instance["status"] = "terminating"
                instance["actions"] = ACTIONS_TERMINATING
                done = now + self.timing.terminate_seconds
                self.pending[instance_id] = [(done, "terminated"), (done + self.timing.linger_seconds, "gone")]
                self._event("instance", "terminated", instance_id, self._instance_details(instance), now)
                self.hooks.terminated(instance_id)
            terminated.append(instance)
        self._instances_changed()
        return terminated

    @staticmethod
    def _instance_details(instance: dict[str, Any]) -> dict[str, Any]:
        return {
            "instance_type": instance.get("instance_type", {}).get("name"),
            "region": instance.get("region", {}).get("name"),
        }

    def launch(self, body: Any, now: float) -> list[str]:
        """Validate a launch request as the API does, then start booting the instance(s)."""
        request = LaunchRequest.parse(body)
        instance_type = INSTANCE_TYPES.get(request.instance_type_name)
        if instance_type is None:
            raise not_found(f"Instance type {request.instance_type_name!r} does not exist.", NO_TYPE_SUGGESTION)
        arch = TYPE_ARCHITECTURE[request.instance_type_name]
        key_name = request.ssh_key_names[0]
        public_key = next((key["public_key"] for key in self.ssh_keys.values() if key["name"] == key_name), None)
        if public_key is None:
            raise not_found(
                f"SSH key {key_name!r} does not exist.",
                "Add the key with POST /api/v1/ssh-keys, or list your keys with GET /api/v1/ssh-keys.",
            )
        mounts = self._resolve_mounts(request)
        self._check_image(request.image, request.region_name, arch)
        self._check_rulesets(request.firewall_rulesets, request.region_name)
        if request.region_name not in self.capacity.get(request.instance_type_name, ()):
            raise ApiError(
                400,
                "instance-operations/launch/insufficient-capacity",
                f"Not enough capacity to fulfill launch request: no {request.instance_type_name} "
                f"capacity in {request.region_name}.",
                "Try another region or instance type; GET /api/v1/instance-types lists the regions with capacity.",
            )
        ids = []
        for _index in range(request.quantity):
            instance_id = new_id()
            instance: dict[str, Any] = {"id": instance_id}
            if request.name is not None:
                instance["name"] = request.name
            instance["status"] = "booting"
            instance["ssh_key_names"] = [key_name]
            instance["file_system_names"] = list(dict.fromkeys(self.file_systems[mount[0]]["name"] for mount in mounts))
            if mounts:
                instance["file_system_mounts"] = [
                    {"mount_point": point, "file_system_id": fs_id} for fs_id, point in mounts
                ]
            instance["region"] = REGION_OBJECTS[request.region_name]
            instance["instance_type"] = instance_type
            instance["actions"] = ACTIONS_BOOTING
            instance["tags"] = request.tags
            instance["firewall_rulesets"] = [{"id": ruleset_id} for ruleset_id in request.firewall_rulesets]
            self.instances[instance_id] = instance
            if request.hostname:
                self.requested_hostnames[instance_id] = request.hostname
            ip, private_ip = self.launch_addresses[instance_id] = list(self.addresses.allocate())
            self.hooks.launched(
                instance_id,
                {
                    "hostname": request.hostname or ip.replace(".", "-"),
                    "ip": ip,
                    "private_ip": private_ip,
                    "public_key": public_key,
                    "user_data": request.user_data,
                    "mounts": [{"fs_id": fs_id, "target": point} for fs_id, point in mounts],
                    "instance_type": instance_type,
                },
            )
            self.pending[instance_id] = [(now + self.timing.boot_seconds, "active")]
            self._event("instance", "launched", instance_id, self._instance_details(instance), now)
            ids.append(instance_id)
        self._instances_changed()
        return ids

    def _resolve_mounts(self, request: LaunchRequest) -> list[tuple[str, str]]:
        """(file system id, mount point) pairs; explicit mounts override the default path."""
        by_name = {fs["name"]: fs for fs in self.file_systems.values()}
        mounts: dict[str, str] = {}
        for name in request.file_system_names:
            fs = by_name.get(name)
            if fs is None:
                raise not_found(
                    f"File system {name!r} does not exist.",
                    "Create it with POST /api/v1/filesystems, or list yours with GET /api/v1/file-systems.",
                )
            mounts[fs["id"]] = fs["mount_point"]
        for fs_id, point in request.file_system_mounts:
            if fs_id not in self.file_systems:
                raise not_found(
                    f"File system with ID {fs_id!r} does not exist.",
                    "List your file systems with GET /api/v1/file-systems and check the ID.",
                )
            mounts[fs_id] = point
        for fs_id in mounts:
            fs = self.file_systems[fs_id]
            if fs["region"]["name"] != request.region_name:
                raise ApiError(
                    400,
                    "instance-operations/launch/file-system-in-wrong-region",
                    f"File system {fs['name']!r} is in {fs['region']['name']}, "
                    f"not in the launch region {request.region_name}.",
                    "Launch in the file system's region, or use a file system in the launch region.",
                )
        return list(mounts.items())

    @staticmethod
    def _check_image(image: dict[str, str] | None, region: str, arch: str) -> None:
        if image is None:
            return
        if "id" in image:
            found = IMAGES_BY_ID.get(image["id"])
            if found is None:
                raise not_found(
                    f"Image with ID {image['id']!r} does not exist.",
                    "List the images with GET /api/v1/images.",
                )
            if found["region"]["name"] != region:
                raise invalid(
                    f"Image {image['id']} is available in {found['region']['name']}, not in {region}.",
                    "Use an image of the launch region, or give the image by family.",
                )
            if found["architecture"] != arch:
                raise invalid(
                    f"Image {image['id']} is built for {found['architecture']}; the instance type needs {arch}.",
                    "Choose an image of the instance type's architecture.",
                )
            return
        family = image["family"]
        if family not in IMAGE_FAMILIES or find_image(family, region, arch) is None:
            raise not_found(
                f"Image family {family!r} does not exist for {arch} in {region}.",
                f"List the images with GET /api/v1/images; the default is {DEFAULT_IMAGE_FAMILY}.",
            )

    def _check_rulesets(self, ruleset_ids: list[str], region: str) -> None:
        for ruleset_id in ruleset_ids:
            if ruleset_id == GLOBAL_RULESET_ID:
                continue
            ruleset = self.rulesets.get(ruleset_id)
            if ruleset is None:
                raise not_found(
                    f"Firewall ruleset {ruleset_id!r} does not exist.",
                    "List your firewall rulesets with GET /api/v1/firewall-rulesets.",
                )
            if ruleset["region"]["name"] != region:
                raise invalid(
                    f"Firewall ruleset {ruleset_id} is in {ruleset['region']['name']}, not in {region}.",
                    "The firewall rulesets must exist in the same region as the instance.",
                )

    def instance_types(self) -> dict[str, Any]:
        return {
            name: {
                "instance_type": instance_type,
                "regions_with_capacity_available": [
                    REGION_OBJECTS[region] for region in self.capacity.get(name, ()) if region in REGION_OBJECTS
                ],
            }
            for name, instance_type in INSTANCE_TYPES.items()
        }

    # ------------------------------------------------------------------ SSH keys

    def list_ssh_keys(self) -> list[dict[str, Any]]:
        return list(self.ssh_keys.values())

    def add_ssh_key(self, body: Any, now: float) -> dict[str, Any]:
        obj = expect_object(body)
        check_keys(obj, ("name", "public_key"), ("name",))
        name = require_str(obj, "name", min_length=1, max_length=64)
        public_key = get_str(obj, "public_key", min_length=1, max_length=4096)
        if public_key is not None:
            public_key = public_key.strip()
            problem = public_key_problem(public_key)
            if problem:
                raise invalid(
                    f"Field 'public_key' is not a valid SSH public key: {problem}.",
                    "Give the contents of a .pub file, or omit public_key to have a key pair generated.",
                )
        if any(key["name"] == name for key in self.ssh_keys.values()):
            raise ApiError(
                400,
                "global/duplicate",
                f"An SSH key named {name!r} already exists.",
                "Choose another name, or delete the existing key first.",
            )
        private_key = None
        if public_key is None:
            public_key, private_key = generate_key_pair(name)
        key = {"id": new_id(), "name": name, "public_key": public_key}
        self.ssh_keys[key["id"]] = key
        self._event("ssh_key", "created", key["id"], {"name": name}, now)
        if private_key is not None:
            return {**key, "private_key": private_key}
        return key

    def delete_ssh_key(self, key_id: str, now: float) -> dict[str, Any]:
        key = self.ssh_keys.pop(key_id, None)
        if key is None:
            raise invalid(
                f"SSH key with ID {key_id!r} does not exist.",
                "List your SSH keys with GET /api/v1/ssh-keys and check the ID.",
            )
        self._event("ssh_key", "deleted", key_id, {"name": key["name"]}, now)
        return {}

    # ------------------------------------------------------------------ file systems

    def _file_systems_in_use(self) -> tuple[set[str], set[str]]:
        """Ids and names of the file systems mounted by instances that are not terminated."""
        ids: set[str] = set()
        names: set[str] = set()
        for instance in self.instances.values():
            if instance.get("status") in GONE_STATUSES:
                continue
            names.update(instance.get("file_system_names") or ())
            for mount in instance.get("file_system_mounts") or ():
                ids.add(mount.get("file_system_id"))
        return ids, names

    def _file_system_view(self, fs: dict[str, Any], in_use: tuple[set[str], set[str]]) -> dict[str, Any]:
        view = dict(fs)
        view["is_in_use"] = fs["id"] in in_use[0] or fs["name"] in in_use[1]
        return {key: view[key] for key in _FS_KEY_ORDER if key in view} | view

    def list_file_systems(self) -> list[dict[str, Any]]:
        in_use = self._file_systems_in_use()
        return [self._file_system_view(fs, in_use) for fs in self.file_systems.values()]

    def create_file_system(self, body: Any, now: float) -> dict[str, Any]:
        obj = expect_object(body)
        check_keys(obj, ("name", "region"), ("name", "region"))
        name = require_str(obj, "name", min_length=1, max_length=60, pattern=FILESYSTEM_NAME_PATTERN)
        region = require_str(obj, "region", choices=REGIONS)
        if any(fs["name"] == name for fs in self.file_systems.values()):
            raise ApiError(
                400,
                "global/duplicate",
                f"A file system named {name!r} already exists.",
                "Choose another name; file system names are unique within an account.",
            )
        fs = self._new_file_system(name, region, now)
        self.file_systems[fs["id"]] = fs
        self._event("filesystem", "created", fs["id"], {"name": name, "region": region}, now)
        return self._file_system_view(fs, (set(), set()))

    @staticmethod
    def _new_file_system(name: str, region: str, now: float) -> dict[str, Any]:
        return {
            "id": new_id(),
            "name": name,
            "mount_point": f"/lambda/nfs/{name}",
            "created": iso_time(now),
            "created_by": USER,
            "region": REGION_OBJECTS[region],
            "bytes_used": 0,
        }

    def delete_file_system(self, fs_id: str, now: float) -> dict[str, Any]:
        fs = self.file_systems.get(fs_id)
        if fs is None:
            raise not_found(
                f"Filesystem was not found: {fs_id!r}.",
                "List your file systems with GET /api/v1/file-systems and check the ID.",
            )
        ids, names = self._file_systems_in_use()
        if fs_id in ids or fs["name"] in names:
            raise ApiError(
                400,
                "filesystems/filesystem-in-use",
                f"File system {fs['name']!r} is mounted to one or more instances.",
                "Terminate the instances that use it before deleting it.",
            )
        del self.file_systems[fs_id]
        self.hooks.file_system_deleted(fs_id)
        self._event("filesystem", "deleted", fs_id, {"name": fs["name"]}, now)
        return {"deleted_ids": [fs_id]}

    # ------------------------------------------------------------------ images

    @staticmethod
    def list_images() -> list[dict[str, Any]]:
        return IMAGES

    # ------------------------------------------------------------------ firewalls

    def set_firewall_rules(self, body: Any, now: float) -> list[dict[str, Any]]:
        obj = expect_object(body)
        check_keys(obj, ("data",), ("data",))
        self.firewall_rules = parse_rules(obj["data"], "data")
        self._event("firewall_rules", "updated", GLOBAL_RULESET_ID, {}, now)
        return self.firewall_rules

    def global_ruleset(self) -> dict[str, Any]:
        return {"id": GLOBAL_RULESET_ID, "name": GLOBAL_RULESET_NAME, "rules": self.firewall_rules}

    def patch_global_ruleset(self, body: Any, now: float) -> dict[str, Any]:
        obj = expect_object(body)
        check_keys(obj, ("rules",))
        if "rules" in obj:
            self.firewall_rules = parse_rules(obj["rules"], "rules")
            self._event("firewall_ruleset", "updated", GLOBAL_RULESET_ID, {}, now)
        return self.global_ruleset()

    def _ruleset_users(self) -> dict[str, list[str]]:
        users: dict[str, list[str]] = {}
        if not self.rulesets:
            return users
        for instance in self.instances.values():
            if instance.get("status") in GONE_STATUSES:
                continue
            for entry in instance.get("firewall_rulesets") or ():
                if isinstance(entry, dict) and entry.get("id") in self.rulesets:
                    users.setdefault(entry["id"], []).append(instance["id"])
        return users

    def _ruleset_view(self, ruleset: dict[str, Any], users: dict[str, list[str]]) -> dict[str, Any]:
        return {**ruleset, "instance_ids": users.get(ruleset["id"], [])}

    def list_rulesets(self) -> list[dict[str, Any]]:
        users = self._ruleset_users()
        return [self._ruleset_view(ruleset, users) for ruleset in self.rulesets.values()]

    def get_ruleset(self, ruleset_id: str) -> dict[str, Any]:
        ruleset = self.rulesets.get(ruleset_id)
        if ruleset is None:
            raise not_found(
                "Firewall ruleset does not exist or you do not have permission to access it.",
                "Check your firewall ruleset ID and try again.",
            )
        return self._ruleset_view(ruleset, self._ruleset_users())

    def create_ruleset(self, body: Any, now: float) -> dict[str, Any]:
        obj = expect_object(body)
        check_keys(obj, ("name", "region", "rules"), ("name", "region", "rules"))
        name = require_str(obj, "name", max_length=64)
        region = require_str(obj, "region", choices=REGIONS)
        rules = parse_rules(obj["rules"], "rules")
        ruleset = {
            "id": new_id(),
            "name": name,
            "region": REGION_OBJECTS[region],
            "rules": rules,
            "created": iso_time(now),
        }
        self.rulesets[ruleset["id"]] = ruleset
        self._event("firewall_ruleset", "created", ruleset["id"], {"name": name, "region": region}, now)
        return self._ruleset_view(ruleset, {})

    def patch_ruleset(self, ruleset_id: str, body: Any, now: float) -> dict[str, Any]:
        obj = expect_object(body)
        check_keys(obj, ("name", "rules"))
        name = get_str(obj, "name", max_length=64)
        rules = parse_rules(obj["rules"], "rules") if "rules" in obj else None
        self.get_ruleset(ruleset_id)
        ruleset = self.rulesets[ruleset_id]
        if name is not None:
            ruleset["name"] = name
        if rules is not None:
            ruleset["rules"] = rules
        self._event("firewall_ruleset", "updated", ruleset_id, {}, now)
        return self.get_ruleset(ruleset_id)

    def delete_ruleset(self, ruleset_id: str, now: float) -> dict[str, Any]:
        if ruleset_id == GLOBAL_RULESET_ID:
            raise invalid("The global firewall ruleset cannot be deleted.", "Update its rules instead.")
        view = self.get_ruleset(ruleset_id)
        if view["instance_ids"]:
            raise ApiError(
                400,
                "firewall-rulesets/firewall-ruleset-in-use",
                "Firewall ruleset is in use by one or more instances.",
                "Terminate all instances that are using the ruleset before deleting it.",
            )
        del self.rulesets[ruleset_id]
        self._event("firewall_ruleset", "deleted", ruleset_id, {}, now)
        return {}

    # ------------------------------------------------------------------ audit events

    def audit_events(self, query: dict[str, str]) -> dict[str, Any]:
        start = parse_time(query["start"], "start") if "start" in query else None
        end = parse_time(query["end"], "end") if "end" in query else None
        resource_type = query.get("resource_type")
        first = 0
        if query.get("page_token"):
            first = decode_page_token(query["page_token"])
        page: list[dict[str, Any]] = []
        next_token = None
        for index in range(first, len(self.events)):
            event = self.events[index]
            if start is not None and event["_at"] < start:
                continue
            if end is not None and event["_at"] > end:
                continue
            if resource_type and resource_type not in (
                event["resource_name"],
                f"{event['service_name']}.{event['resource_name']}",
            ):
                continue
            if len(page) == AUDIT_PAGE_SIZE:
                next_token = encode_page_token(index)
                break
            page.append({key: value for key, value in event.items() if key != "_at"})
        return {"events": page, "page_token": next_token}

    # ------------------------------------------------------------------ control API

    def snapshot_view(self) -> dict[str, Any]:
        """What ``GET /_simulator/state`` shows."""
        return {
            "instances": list(self.instances.values()),
            "ssh_keys": self.list_ssh_keys(),
            "file_systems": self.list_file_systems(),
            "firewall_rules": self.firewall_rules,
            "firewall_rulesets": self.list_rulesets(),
            "capacity": self.capacity,
        }

    def merge(self, body: Any, now: float) -> dict[str, Any]:
        """``POST /_simulator/state``: add or replace resources, complete them, set capacity."""
        obj = expect_object(body)
        allowed = ("instances", "ssh_keys", "file_systems", "firewall_rules", "firewall_rulesets", "capacity")
        check_keys(obj, allowed)
        capacity = self._parse_capacity(obj.get("capacity"))
        instances = [self._seed_instance(raw, index) for index, raw in enumerate(get_list(obj, "instances") or [])]
        keys = [self._seed_ssh_key(raw, index) for index, raw in enumerate(get_list(obj, "ssh_keys") or [])]
        systems = [
            self._seed_file_system(raw, index, now) for index, raw in enumerate(get_list(obj, "file_systems") or [])
        ]
        rulesets = [
            self._seed_ruleset(raw, index, now) for index, raw in enumerate(get_list(obj, "firewall_rulesets") or [])
        ]
        rules = parse_rules(obj["firewall_rules"], "firewall_rules") if "firewall_rules" in obj else None
        self.capacity.update(capacity)
        for instance in instances:
            self.instances[instance["id"]] = instance
            self.pending.pop(instance["id"], None)
        for key in keys:
            self.ssh_keys[key["id"]] = key
        for fs in systems:
            self.file_systems[fs["id"]] = fs
        for ruleset in rulesets:
            self.rulesets[ruleset["id"]] = ruleset
        if rules is not None:
            self.firewall_rules = rules
        if instances:
            self._instances_changed()
        self.dirty = True
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

    @staticmethod
    def _parse_capacity(value: Any) -> dict[str, list[str]]:
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

    def _seed_instance(self, raw: Any, index: int) -> dict[str, Any]:
        where = field_name("instances", index)
        given = expect_object(raw, where)
        instance = dict(given)
        instance_id = instance.get("id") or new_id()
        if not isinstance(instance_id, str):
            raise invalid(f"'{where}.id' must be a string.")
        instance["id"] = instance_id
        instance["instance_type"] = instance_type_ref(
            given.get("instance_type", "gpu_1x_a10"), f"{where}.instance_type"
        )
        instance["region"] = region_ref(given.get("region", "us-west-1"), f"{where}.region")
        status = instance.setdefault("status", "active")
        for key in ("ssh_key_names", "file_system_names", "tags", "firewall_rulesets"):
            if key not in instance:
                instance[key] = []
        if "actions" not in instance:
            instance["actions"] = actions_for(status)
        if status in ("active", "unhealthy") or "ip" in instance:
            self._assign_network(instance, None)
        return ordered_instance(instance)

    @staticmethod
    def _seed_ssh_key(raw: Any, index: int) -> dict[str, Any]:
        where = field_name("ssh_keys", index)
        given = expect_object(raw, where)
        check_keys(given, ("id", "name", "public_key"), ("name",), where)
        name = require_str(given, "name", where, min_length=1)
        return {
            "id": get_str(given, "id", where, min_length=1) or new_id(),
            "name": name,
            "public_key": get_str(given, "public_key", where) or random_public_key(name),
        }

    @staticmethod
    def _seed_file_system(raw: Any, index: int, now: float) -> dict[str, Any]:
        where = field_name("file_systems", index)
        given = expect_object(raw, where)
        name = require_str(given, "name", where, min_length=1)
        fs = Account._new_file_system(name, "us-west-1", now)
        fs.update({key: value for key, value in given.items() if key != "is_in_use"})
        fs["region"] = region_ref(given.get("region", "us-west-1"), f"{where}.region")
        return {key: fs[key] for key in _FS_KEY_ORDER if key in fs} | fs

    @staticmethod
    def _seed_ruleset(raw: Any, index: int, now: float) -> dict[str, Any]:
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

    # ------------------------------------------------------------------ persistence

    def to_file_data(self) -> dict[str, Any]:
        """Everything needed to continue later, lifecycle timestamps included."""
        return {
            "format": 1,
            "instances": list(self.instances.values()),
            "pending": {key: [list(step) for step in steps] for key, steps in self.pending.items()},
            "requested_hostnames": self.requested_hostnames,
            "launch_addresses": self.launch_addresses,
            "ssh_keys": list(self.ssh_keys.values()),
            "file_systems": list(self.file_systems.values()),
            "firewall_rules": self.firewall_rules,
            "firewall_rulesets": list(self.rulesets.values()),
            "capacity": self.capacity,
            "events": self.events,
        }

    def load_file_data(self, data: dict[str, Any]) -> None:
        self.reset()
        self.instances = {instance["id"]: instance for instance in data.get("instances", [])}
        self.pending = {
            key: [(float(at), str(step)) for at, step in steps] for key, steps in data.get("pending", {}).items()
        }
        self.requested_hostnames = dict(data.get("requested_hostnames", {}))
        self.launch_addresses = {key: list(value) for key, value in data.get("launch_addresses", {}).items()}
        for address in [instance.get("ip") for instance in self.instances.values()] + [
            pair[0] for pair in self.launch_addresses.values()
        ]:
            if address:
                self.addresses.mark_used(address)
        self.ssh_keys = {key["id"]: key for key in data.get("ssh_keys", [])}
        self.file_systems = {fs["id"]: fs for fs in data.get("file_systems", [])}
        self.firewall_rules = data.get("firewall_rules", self.firewall_rules)
        self.rulesets = {ruleset["id"]: ruleset for ruleset in data.get("firewall_rulesets", [])}
        self.capacity.update(data.get("capacity", {}))
        self.events = data.get("events", [])
        self._instances_changed()
        self.dirty = False


_FS_KEY_ORDER = ("id", "name", "mount_point", "created", "created_by", "is_in_use", "region", "bytes_used")
