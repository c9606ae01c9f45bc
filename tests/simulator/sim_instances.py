# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The account's instances: list, get, rename, launch, restart, terminate, their lifecycle, and the catalogue.

Instances are kept as ready-to-serve API objects. Their lifecycle is lazy: an operation schedules timestamped
steps (``active``, ``terminated``, ``gone``), and :meth:`InstanceOperations.advance` applies the due ones at the
start of each request, touching only instances in transition.
"""

from __future__ import annotations

import json
from typing import Any

from fabric_protocol import BootState
from sim_account_base import NO_TYPE_SUGGESTION, AccountBase, new_id
from sim_addresses import private_for
from sim_catalogue import (
    DEFAULT_IMAGE_FAMILY,
    IMAGE_FAMILIES,
    IMAGES,
    IMAGES_BY_ID,
    INSTANCE_TYPES,
    REGION_OBJECTS,
    TYPE_ARCHITECTURE,
    find_image,
)
from sim_file_systems import CHECK_FILE_SYSTEM_ID
from sim_firewalls import GLOBAL_RULESET_ID
from sim_requests import LaunchRequest
from sim_validation import ApiError, check_keys, expect_object, get_str, get_str_list, invalid, not_found

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
ENDING_STATUSES = ("terminating", "terminated", "preempted")

NO_INSTANCE_SUGGESTION = "List your instances with GET /api/v1/instances and check the ID."


def actions_for(status: str) -> dict[str, Any]:
    if status == "booting":
        return ACTIONS_BOOTING
    if status in ENDING_STATUSES:
        return ACTIONS_TERMINATING
    return ACTIONS_RUNNING


def ordered_instance(instance: dict[str, Any]) -> dict[str, Any]:
    """The instance with its keys in the order the API answers them; unknown keys last."""
    result = {key: instance[key] for key in INSTANCE_KEY_ORDER if key in instance}
    for key, value in instance.items():
        if key not in result:
            result[key] = value
    return result


def in_region(
    resource: dict[str, Any] | None, region: str, missing: tuple[str, str], elsewhere: tuple[str, str]
) -> dict[str, Any]:
    """``resource`` when it exists in ``region``. Else a 404 with ``missing`` (message, suggestion), or a 400 with
    ``elsewhere`` (the start of the message, which the resource's region and ``region`` end; suggestion)."""
    if resource is None:
        raise not_found(*missing)
    where = resource["region"]["name"]
    if where != region:
        raise invalid(f"{elsewhere[0]} {where}, not in {region}.", elsewhere[1])
    return resource


class InstanceOperations(AccountBase):
    """The instance operations of :class:`sim_account.Account`."""

    # ------------------------------------------------------------------ lifecycle

    def advance(self, now: float) -> None:
        """Apply every lifecycle step that is due by ``now``."""
        if not self.pending:
            return
        for instance_id in list(self.pending):
            steps = self.pending[instance_id]
            while steps and steps[0][0] <= now:
                step = steps[0][1]
                boot = self.hooks.boot_state(instance_id) if step == "active" else BootState.READY
                if boot == BootState.WAITING or (step == "terminated" and not self.hooks.stopped(instance_id)):
                    break  # the node is not there yet (or not gone yet): the step waits for it
                steps.pop(0)
                self._apply_step(instance_id, "unhealthy" if boot == BootState.FAILED else step)
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
            self.assign_network(instance, self.requested_hostnames.get(instance_id), addresses)
            self.instances[instance_id] = ordered_instance(instance)
        elif step == "terminated":
            instance["status"] = "terminated"
            instance["actions"] = ACTIONS_TERMINATING
        self.instances_changed()

    def assign_network(
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

    # ------------------------------------------------------------------ list, get, rename

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
            self.instances_changed()
            self._event("instance", "updated", instance_id, {"name": name}, now)
        return instance

    def control_instance(self, instance_id: str, body: Any) -> dict[str, Any]:
        """``POST /_simulator/instances/<id>``: what only Lambda's side changes on an instance, for tests: its
        ``status`` (``active`` or ``unhealthy``, as a host that fails, while booting too, turns it) and its ``tags``
        (as set at launch). A status given here ends the instance's own way there (a booting one stays as set)."""
        obj = expect_object(body)
        check_keys(obj, ("status", "tags"))
        instance = self.get_instance(instance_id)
        status, tags = obj.get("status"), obj.get("tags")
        if status is not None and (
            status not in ("active", "unhealthy") or instance.get("status") not in ("booting", "active", "unhealthy")
        ):
            raise invalid(
                f"Only a booting or running instance can be set active or unhealthy, not {status!r} from "
                f"{instance.get('status')!r}."
            )
        if tags is not None and not (
            isinstance(tags, list)
            and all(isinstance(t, dict) and set(t) == {"key", "value"} for t in tags)
            and all(isinstance(value, str) for t in tags for value in t.values())
        ):
            raise invalid('Field \'tags\' must be a list of {"key": ..., "value": ...} objects of strings.')
        if status is not None:
            self.pending.pop(instance_id, None)
            self._apply_step(instance_id, status)
            instance = self.instances[instance_id]
        if tags is not None:
            instance["tags"] = tags
        self.instances[instance_id] = instance = ordered_instance(instance)
        self.instances_changed()
        return instance

    # ------------------------------------------------------------------ restart, terminate

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
            if status in ENDING_STATUSES:
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
        self.instances_changed()
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
        self.instances_changed()
        return terminated

    @staticmethod
    def _instance_details(instance: dict[str, Any]) -> dict[str, Any]:
        return {
            "instance_type": instance.get("instance_type", {}).get("name"),
            "region": instance.get("region", {}).get("name"),
        }

    # ------------------------------------------------------------------ launch

    def launch(self, body: Any, now: float) -> list[str]:
        """Validate a launch request as the API does, then start booting the instance(s)."""
        request = LaunchRequest.parse(body)
        instance_type = INSTANCE_TYPES.get(request.instance_type_name)
        if instance_type is None:
            raise not_found(f"Instance type {request.instance_type_name!r} does not exist.", NO_TYPE_SUGGESTION)
        public_key = self._launch_key(request.ssh_key_names[0])
        mounts = self._resolve_mounts(request)
        self._check_image(request.image, request.region_name, TYPE_ARCHITECTURE[request.instance_type_name])
        self._check_rulesets(request.firewall_rulesets, request.region_name)
        if request.region_name not in self.capacity.get(request.instance_type_name, ()):
            raise ApiError(
                400,
                "instance-operations/launch/insufficient-capacity",
                f"Not enough capacity to fulfill launch request: no {request.instance_type_name} "
                f"capacity in {request.region_name}.",
                "Try another region or instance type; GET /api/v1/instance-types lists the regions with capacity.",
            )
        refusal = self.hooks.launch_refusal(request.quantity)
        if refusal:
            raise ApiError(
                400,
                "instance-operations/launch/node-memory",
                refusal,
                "Terminate instances of the simulator, or lower --node-memory-mib if nodes use less.",
            )
        ids = [self._boot_new(request, public_key, mounts, now) for _index in range(request.quantity)]
        self.instances_changed()
        return ids

    def _launch_key(self, key_name: str) -> str:
        """The public key of the SSH key a launch names."""
        public_key = next((key["public_key"] for key in self.ssh_keys.values() if key["name"] == key_name), None)
        if public_key is None:
            raise not_found(
                f"SSH key {key_name!r} does not exist.",
                "Add the key with POST /api/v1/ssh-keys, or list your keys with GET /api/v1/ssh-keys.",
            )
        return public_key

    def _boot_new(self, request: LaunchRequest, public_key: str, mounts: list[tuple[str, str]], now: float) -> str:
        """Add one instance of a valid launch, booting, and tell the hooks; its id."""
        instance = self._new_instance(request, mounts)
        instance_id = instance["id"]
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
                "instance_type": instance["instance_type"],
            },
        )
        self.pending[instance_id] = [(now + self.timing.boot_seconds, "active")]
        self._event("instance", "launched", instance_id, self._instance_details(instance), now)
        return instance_id

    def _new_instance(self, request: LaunchRequest, mounts: list[tuple[str, str]]) -> dict[str, Any]:
        instance: dict[str, Any] = {"id": new_id()}
        if request.name is not None:
            instance["name"] = request.name
        instance["status"] = "booting"
        instance["ssh_key_names"] = [request.ssh_key_names[0]]
        instance["file_system_names"] = list(dict.fromkeys(self.file_systems[mount[0]]["name"] for mount in mounts))
        if mounts:
            instance["file_system_mounts"] = [
                {"mount_point": point, "file_system_id": fs_id} for fs_id, point in mounts
            ]
        instance["region"] = REGION_OBJECTS[request.region_name]
        instance["instance_type"] = INSTANCE_TYPES[request.instance_type_name]
        instance["actions"] = ACTIONS_BOOTING
        instance["tags"] = request.tags
        instance["firewall_rulesets"] = [{"id": ruleset_id} for ruleset_id in request.firewall_rulesets]
        return instance

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
                    CHECK_FILE_SYSTEM_ID,
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
            found = in_region(
                IMAGES_BY_ID.get(image["id"]),
                region,
                (f"Image with ID {image['id']!r} does not exist.", "List the images with GET /api/v1/images."),
                (
                    f"Image {image['id']} is available in",
                    "Use an image of the launch region, or give the image by family.",
                ),
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
            in_region(
                self.rulesets.get(ruleset_id),
                region,
                (
                    f"Firewall ruleset {ruleset_id!r} does not exist.",
                    "List your firewall rulesets with GET /api/v1/firewall-rulesets.",
                ),
                (
                    f"Firewall ruleset {ruleset_id} is in",
                    "The firewall rulesets must exist in the same region as the instance.",
                ),
            )

    # ------------------------------------------------------------------ the catalogue

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

    @staticmethod
    def list_images() -> list[dict[str, Any]]:
        return IMAGES
