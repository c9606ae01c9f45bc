#!/usr/bin/python
# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: lambda_instance
short_description: Launch, rename, restart and terminate Lambda Cloud GPU instances
version_added: 0.1.0
description:
  - Makes sure a Lambda Cloud instance exists (launching it where there is capacity), is restarted, or is terminated.
  - The module is idempotent by O(name) - it never launches a second instance with the same name, even when a
    launch request fails in a way that may have created one.
  - Launches from one controller are paced to the API's limit of one launch per 12 seconds, also across forks.
author:
  - Lambda Cloud collection maintainers (@lambdalabs)
extends_documentation_fragment:
  - lambdalabs.cloud.lambda_cloud
  - lambdalabs.cloud.lambda_cloud.resource_module
options:
  id:
    description:
      - The instance's id. Identifies the instance exactly; with O(name) given too, the instance is renamed to it.
      - One of O(id) and O(name) is required.
    type: str
  name:
    description:
      - The instance's name, at most 64 characters. Without O(id), it identifies the instance.
      - When more than one existing instance has this name, the module fails and lists their ids.
    type: str
  state:
    description:
      - V(present) launches the instance when it is missing.
      - V(absent) terminates it.
      - V(restarted) restarts an existing instance.
      - Instances that are C(terminating), C(terminated) or C(preempted) count as missing.
    type: str
    choices: [present, absent, restarted]
    default: present
  instance_type:
    description:
      - The instance type, or a list of them in order of preference, for example V(gpu_1x_a100_sxm4).
      - Required to launch.
      - The first (type, region) pair, in the order of O(instance_type) then O(region), that has capacity is
        launched. When the launch still meets insufficient capacity, the next pair is tried.
    type: list
    elements: str
  region:
    description:
      - The region, or a list of them in order of preference, for example V(us-west-1).
      - When not set, every region with capacity for the type is eligible.
      - With file systems attached, only the region of the file systems is eligible.
    type: list
    elements: str
  ssh_key_name:
    description:
      - The name of the SSH key to install on the instance. Required to launch.
      - The API takes exactly one key; a list with more than one is refused.
    type: list
    elements: str
    aliases: [ssh_key_names]
  file_system_names:
    description:
      - Names of persistent file systems to mount, at their default mount point.
    type: list
    elements: str
  file_system_mounts:
    description:
      - File systems to mount at a chosen path.
    type: list
    elements: dict
    suboptions:
      name:
        description:
          - The file system's name. One of O(file_system_mounts[].name) and O(file_system_mounts[].file_system_id) is required.
        type: str
      file_system_id:
        description:
          - The file system's id.
        type: str
      mount_point:
        description:
          - Where to mount it; under V(/home), V(/lambda/nfs) or V(/data).
        type: str
        required: true
  image:
    description:
      - The machine image to launch, by O(image.id) or by O(image.family). The default is the latest Lambda Stack.
    type: dict
    suboptions:
      id:
        description:
          - The image id, see M(lambdalabs.cloud.lambda_image_info).
        type: str
      family:
        description:
          - The image family, for example V(lambda-stack-22-04).
        type: str
  user_data:
    description:
      - A cloud-init user-data document, at most 1 MB.
    type: str
  tags:
    description:
      - Tags for the instance, as a dictionary. Keys start with a lowercase letter and hold lowercase letters,
        digits, V(-) and V(:).
    type: dict
  hostname:
    description:
      - The hostname to give the instance, for example V(headnode-1).
    type: str
  firewall_ruleset_ids:
    description:
      - Ids of firewall rulesets, in the instance's region, to associate with the instance.
    type: list
    elements: str
  wait:
    description:
      - Wait for the instance to become C(active) (V(present), V(restarted)) or to be terminated (V(absent)).
    type: bool
    default: true
  wait_timeout:
    description:
      - Seconds to wait. 8-GPU instances can take 25 minutes to boot.
      - On timeout the module fails and names the instance; it never terminates the instance.
    type: int
    default: 1800
  launch_interval:
    description:
      - Least number of seconds between two launches from this controller (the API allows one per 12 seconds).
      - A launch answered with HTTP 429 is retried after C(Retry-After) seconds, or after this many, until
        O(wait_timeout) has passed.
    type: float
    default: 12
notes:
  - Attributes that cannot change in place (type, region, SSH key, file systems, tags, hostname) are compared with
    the existing instance; a difference gives a warning, never a new launch.
"""

EXAMPLES = r"""
- name: An A100 node in whichever of three regions has capacity
  lambdalabs.cloud.lambda_instance:
    name: trainer-1
    instance_type: [gpu_1x_a100_sxm4, gpu_1x_a100]
    region: [us-west-2, us-east-1, us-west-1]
    ssh_key_name: deploy
    tags:
      team: research
  register: trainer

- name: Show where it landed
  ansible.builtin.debug:
    msg: "{{ trainer.instance.ip }} ({{ trainer.placement.instance_type }} in {{ trainer.placement.region }})"

- name: Launch without waiting, then wait elsewhere
  lambdalabs.cloud.lambda_instance:
    name: big-node
    instance_type: gpu_8x_h100_sxm5
    region: us-south-1
    ssh_key_name: deploy
    file_system_names: [datasets]
    wait: false

- name: Rename an instance
  lambdalabs.cloud.lambda_instance:
    id: 0920582c7ff041399e34823a0be62549
    name: trainer-2

- name: Restart it
  lambdalabs.cloud.lambda_instance:
    name: trainer-2
    state: restarted

- name: Terminate it
  lambdalabs.cloud.lambda_instance:
    name: trainer-2
    state: absent
"""

RETURN = r"""
instance:
  description: The instance after the change, as the API returns it; in check mode, what it would look like.
  returned: when the instance exists or would exist
  type: dict
  contains:
    id:
      description: The instance's identifier.
      type: str
      sample: 0920582c7ff041399e34823a0be62549
    name:
      description: The instance's name.
      type: str
      sample: trainer-1
    status:
      description: The instance's status.
      type: str
      sample: active
    ip:
      description: The public IPv4 address, once it has one.
      type: str
      sample: 198.51.100.2
    private_ip:
      description: The private IPv4 address, once it has one.
      type: str
      sample: 10.0.2.100
    hostname:
      description: The instance's hostname.
      type: str
      sample: trainer-1
    region:
      description: The region, with C(name) and C(description).
      type: dict
      sample: {"name": "us-west-2", "description": "Arizona, USA"}
    instance_type:
      description: The instance type, with its specs and price.
      type: dict
      sample:
        name: gpu_1x_a100_sxm4
        description: 1x A100 (40 GB SXM4)
        gpu_description: A100 (40 GB SXM4)
        price_cents_per_hour: 129
        specs: {"vcpus": 30, "memory_gib": 200, "storage_gib": 512, "gpus": 1}
    ssh_key_names:
      description: The SSH keys of the instance.
      type: list
      elements: str
      sample: [deploy]
    file_system_names:
      description: The mounted file systems.
      type: list
      elements: str
      sample: []
    tags:
      description: The tags, as key/value pairs.
      type: list
      elements: dict
      sample: [{"key": "team", "value": "research"}]
placement:
  description: The instance type and region of the instance; for a launch, the pair that was chosen.
  returned: when the instance exists or would exist
  type: dict
  sample: {"instance_type": "gpu_1x_a100_sxm4", "region": "us-west-2"}
attempts:
  description: The (type, region) pairs a launch tried, with the outcome of each.
  returned: when a launch was attempted
  type: list
  elements: dict
  sample: [{"instance_type": "gpu_1x_a10", "region": "us-east-1", "result": "insufficient-capacity"}]
msg:
  description: What was done, or in check mode what would be done.
  returned: always
  type: str
  sample: Launched instance trainer-1 (gpu_1x_a100_sxm4 in us-west-2).
"""

import time

from ansible_collections.lambdalabs.cloud.plugins.module_utils._client import RETRY_SAFE, LambdaCloudError
from ansible_collections.lambdalabs.cloud.plugins.module_utils._module import LambdaCloudModule
from ansible_collections.lambdalabs.cloud.plugins.module_utils._resources import (
    INSUFFICIENT_CAPACITY,
    InstanceLost,
    InvalidParameter,
    LaunchPacer,
    WaitTimeout,
    check_choice,
    check_hostname,
    check_instance_name,
    check_regions,
    check_tags,
    check_user_data,
    describe_capacity,
    dict_to_tags,
    find_one_by_name,
    get_instance,
    instance_type_name,
    is_existing,
    launch_candidates,
    list_file_systems,
    list_images,
    list_instance_types,
    list_instances,
    list_ssh_keys,
    region_name,
    tag_value,
    tags_to_dict,
    wait_for_instance,
    without_secrets,
)


class InstanceModule(LambdaCloudModule):
    argument_spec = {
        "id": {"type": "str"},
        "name": {"type": "str"},
        "state": {"type": "str", "default": "present", "choices": ["present", "absent", "restarted"]},
        "instance_type": {"type": "list", "elements": "str"},
        "region": {"type": "list", "elements": "str"},
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
        "wait": {"type": "bool", "default": True},
        "wait_timeout": {"type": "int", "default": 1800},
        "launch_interval": {"type": "float", "default": 12},
    }
    module_kwargs = {"required_one_of": [["id", "name"]]}

    def __init__(self):
        super().__init__()
        self.before = None

    # ------------------------------------------------------------------ finding
    def find(self):
        """The existing instance, or None: by id when given (one GET), else by its unique name."""
        if self.params["id"] is not None:
            instance = get_instance(self.client, self.params["id"])
            return instance if instance and is_existing(instance) else None
        return self.find_by_name()

    def find_by_name(self):
        existing = [i for i in list_instances(self.client) if is_existing(i)]
        return find_one_by_name(existing, self.params["name"], "instance", "give id to choose one")

    # ------------------------------------------------------------------ checks
    def check_input(self):
        """Everything that can be checked without the API, before any request."""
        p = self.params
        for param in ("id", "name"):
            if p[param] is not None and not p[param].strip():
                raise InvalidParameter(param, "must not be empty.")
        check_instance_name("name", p["name"])
        check_hostname("hostname", p["hostname"])
        check_tags("tags", p["tags"])
        check_user_data("user_data", p["user_data"])
        check_regions("region", p["region"])
        if p["ssh_key_name"] is not None and len(p["ssh_key_name"]) != 1:
            raise InvalidParameter(
                "ssh_key_name",
                f"the API takes exactly one SSH key, got {len(p['ssh_key_name'])}: {', '.join(p['ssh_key_name'])}.",
            )
        if p["wait_timeout"] < 0:
            raise InvalidParameter("wait_timeout", "must not be negative.")

    def check_launch(self):
        """Read what a launch needs and refuse requests the API would refuse; return the request's parts."""
        p = self.params
        for param in ("instance_type", "ssh_key_name"):
            if not p[param]:
                raise InvalidParameter(param, "is required to launch an instance.")
        types = list_instance_types(self.client)
        check_choice("instance_type", p["instance_type"], (t["name"] for t in types), "instance type")
        check_choice("ssh_key_name", p["ssh_key_name"], (k["name"] for k in list_ssh_keys(self.client)), "SSH key")
        regions = p["region"]
        mounts = []
        if p["file_system_names"] or p["file_system_mounts"]:
            regions, mounts = self.check_file_systems(regions)
        if p["image"]:
            self.check_image(regions)
        return types, regions, mounts

    def check_file_systems(self, regions):
        p = self.params
        file_systems = list_file_systems(self.client)
        by_name = {fs["name"]: fs for fs in file_systems}
        by_id = {fs["id"]: fs for fs in file_systems}
        check_choice("file_system_names", p["file_system_names"], by_name, "file system")
        used = [by_name[name] for name in p["file_system_names"] or []]
        mounts = []
        for mount in p["file_system_mounts"] or []:
            if mount["name"]:
                check_choice("file_system_mounts", mount["name"], by_name, "file system")
                fs = by_name[mount["name"]]
            else:
                check_choice("file_system_mounts", mount["file_system_id"], by_id, "file system id")
                fs = by_id[mount["file_system_id"]]
            used.append(fs)
            mounts.append({"file_system_id": fs["id"], "mount_point": mount["mount_point"]})
        fs_regions = sorted({region_name(fs) for fs in used})
        if len(fs_regions) > 1:
            raise InvalidParameter("file_system_names", f"the file systems are in different regions: {fs_regions}.")
        if regions and fs_regions[0] not in regions:
            names = ", ".join(sorted({fs["name"] for fs in used}))
            raise InvalidParameter(
                "region",
                f"file system {names} is in {fs_regions[0]}, which is not among the requested regions "
                f"({', '.join(regions)}); an instance can only mount file systems of its own region.",
            )
        return fs_regions, mounts

    def check_image(self, regions):
        image = self.params["image"]
        images = [i for i in list_images(self.client) if not regions or region_name(i) in regions]
        if image["id"]:
            check_choice("image", image["id"], (i["id"] for i in images), "image id")
        else:
            check_choice("image", image["family"], (i["family"] for i in images), "image family")

    # ------------------------------------------------------------------ comparing
    def differences(self, instance):
        """Requested attributes that differ from the instance and cannot change in place."""
        p = self.params
        found = []

        def differ(param, actual, wanted):
            found.append(f"{param} is {actual!r} (requested {wanted!r})")

        if p["instance_type"] and instance_type_name(instance) not in p["instance_type"]:
            differ("instance_type", instance_type_name(instance), p["instance_type"])
        if p["region"] and region_name(instance) not in p["region"]:
            differ("region", region_name(instance), p["region"])
        if p["ssh_key_name"] and sorted(instance.get("ssh_key_names") or []) != sorted(p["ssh_key_name"]):
            differ("ssh_key_name", instance.get("ssh_key_names"), p["ssh_key_name"])
        if p["file_system_names"] and sorted(instance.get("file_system_names") or []) != sorted(p["file_system_names"]):
            differ("file_system_names", instance.get("file_system_names"), p["file_system_names"])
        actual_tags = tags_to_dict(instance.get("tags"))
        wanted_tags = {str(k): tag_value(v) for k, v in (p["tags"] or {}).items()}
        if wanted_tags and any(actual_tags.get(k) != v for k, v in wanted_tags.items()):
            differ("tags", actual_tags, wanted_tags)
        if p["hostname"] and instance.get("hostname") and instance["hostname"] != p["hostname"]:
            differ("hostname", instance["hostname"], p["hostname"])
        return found

    # ------------------------------------------------------------------ states
    def present(self, instance):
        if instance is None:
            if self.params["id"] is not None:
                # Never launch on an id: the instance it named is gone, and a name may match another one.
                raise InvalidParameter(
                    "id", f"no existing instance has id {self.params['id']}; to launch a new one, give name without id."
                )
            return self.launch()
        result = {"changed": False, "instance": instance}
        if self.params["id"] and self.params["name"] is not None and instance.get("name") != self.params["name"]:
            result = self.rename(instance)
        differences = self.differences(instance)
        if differences:
            self.module.warn(
                f"Instance {instance.get('name')} ({instance['id']}) differs from the request in ways that cannot "
                f"change in place: {'; '.join(differences)}. It was left as it is; terminate it and run again to "
                "replace it."
            )
        if self.params["wait"] and not self.check_mode and result["instance"].get("status") == "booting":
            result["instance"] = self.wait(result["instance"], "active", changed=result["changed"])
        result.setdefault("msg", f"Instance {instance.get('name')} ({instance['id']}) exists.")
        return result

    def rename(self, instance):
        name = self.params["name"]
        msg = f"Renamed instance {instance['id']} from {instance.get('name')!r} to {name!r}."
        if self.check_mode:
            return {"changed": True, "instance": dict(instance, name=name), "msg": "Would have r" + msg[1:]}
        updated = self.client.post(f"/instances/{instance['id']}", {"name": name}, retry=RETRY_SAFE)
        return {"changed": True, "instance": updated, "msg": msg}

    def launch(self):
        p = self.params
        types, regions, mounts = self.check_launch()
        pairs, available = launch_candidates(types, p["instance_type"], regions)
        if not available:
            tried = ", ".join(f"{t} in {r}" for t, r in pairs) or "no pair"
            self.module.fail_json(
                msg=f"No capacity for {p['name']}: tried {tried}. Capacity right now: "
                f"{describe_capacity(types, p['instance_type'])}.",
                attempts=[{"instance_type": t, "region": r, "result": "no-capacity"} for t, r in pairs],
            )
        body = self.launch_body(mounts)
        if self.check_mode:
            type_name, region = available[0]
            return {
                "changed": True,
                "instance": {
                    "name": p["name"],
                    "status": "booting",
                    "instance_type": {"name": type_name},
                    "region": {"name": region},
                    "tags": body.get("tags", []),
                },
                "placement": {"instance_type": type_name, "region": region},
                "msg": f"Would have launched instance {p['name']} ({type_name} in {region}).",
            }
        attempts = []
        for type_name, region in available:
            try:
                instance_id = self.launch_one(dict(body, instance_type_name=type_name, region_name=region))
            except LambdaCloudError as error:
                if error.code == INSUFFICIENT_CAPACITY:
                    attempts.append({"instance_type": type_name, "region": region, "result": "insufficient-capacity"})
                    continue
                attempts.append({"instance_type": type_name, "region": region, "result": str(error)})
                self.fail_error(error, attempts=attempts)
            attempts.append({"instance_type": type_name, "region": region, "result": "launched"})
            instance = get_instance(self.client, instance_id) or {"id": instance_id, "status": "booting"}
            if p["wait"]:
                instance = self.wait(instance, "active", changed=True, attempts=attempts)
            return {
                "changed": True,
                "instance": instance,
                "placement": {"instance_type": type_name, "region": region},
                "attempts": attempts,
                "msg": f"Launched instance {p['name']} ({type_name} in {region}).",
            }
        tried = ", ".join(f"{a['instance_type']} in {a['region']}" for a in attempts)
        self.module.fail_json(
            msg=f"No capacity for {p['name']}: every launch met insufficient capacity ({tried}). Capacity right now: "
            f"{describe_capacity(list_instance_types(self.client), p['instance_type'])}.",
            attempts=attempts,
        )
        return {}

    def launch_body(self, mounts):
        p = self.params
        body = {"ssh_key_names": p["ssh_key_name"], "name": p["name"]}
        if p["file_system_names"]:
            body["file_system_names"] = p["file_system_names"]
        if mounts:
            body["file_system_mounts"] = mounts
        if p["image"]:
            body["image"] = {"id": p["image"]["id"]} if p["image"]["id"] else {"family": p["image"]["family"]}
        if p["user_data"] is not None:
            body["user_data"] = p["user_data"]
        if p["tags"]:
            body["tags"] = dict_to_tags(p["tags"])
        if p["hostname"]:
            body["hostname"] = p["hostname"]
        if p["firewall_ruleset_ids"]:
            body["firewall_rulesets"] = [{"id": ruleset} for ruleset in p["firewall_ruleset_ids"]]
        return body

    def launch_one(self, body):
        """Launch in this controller's turn, unless an instance of this name exists by then: adopt it.

        Looking again inside the turn catches a launch by a parallel run (another fork with the same
        name) and a launch whose answer was lost, however late it shows up in the list. Rate-limit
        answers (429) are waited out, turn after turn, until wait_timeout has passed.
        """
        pacer = LaunchPacer(self.client.api_url, self.params["launch_interval"])
        deadline = time.monotonic() + self.params["wait_timeout"]
        unanswered = 0
        while True:
            with pacer.turn():
                adopted = self.find_by_name()
                if adopted:
                    self.module.warn(
                        f"Adopted instance {adopted['id']} named {self.params['name']!r}, launched by an earlier "
                        "request whose answer was lost or by a parallel run, instead of launching another."
                    )
                    return adopted["id"]
                try:
                    data = self.client.post(
                        "/instance-operations/launch", body, default_retry_after=self.params["launch_interval"]
                    )
                    return data["instance_ids"][0]
                except LambdaCloudError as error:
                    # Launching is not idempotent: try again only after looking again, in the next turn.
                    if error.status == 429 and time.monotonic() < deadline:
                        continue
                    unanswered += 1
                    if not error.may_have_processed or unanswered >= 3:
                        raise

    def absent(self, instance):
        if instance is None:
            return {"changed": False, "msg": "The instance does not exist."}
        label = f"{instance.get('name')} ({instance['id']})"
        if self.check_mode:
            return {"changed": True, "instance": instance, "msg": f"Would have terminated instance {label}."}
        data = self.client.post("/instance-operations/terminate", {"instance_ids": [instance["id"]]}, retry=RETRY_SAFE)
        terminated = (data or {}).get("terminated_instances") or [dict(instance, status="terminating")]
        instance = terminated[0]
        if self.params["wait"]:
            instance = self.wait(instance, "gone", changed=True) or dict(instance, status="terminated")
        return {"changed": True, "instance": instance, "msg": f"Terminated instance {label}."}

    def restarted(self, instance):
        if instance is None:
            what = self.params["id"] or self.params["name"]
            raise InvalidParameter("id" if self.params["id"] else "name", f"no existing instance {what!r} to restart.")
        label = f"{instance.get('name')} ({instance['id']})"
        if self.check_mode:
            return {"changed": True, "instance": instance, "msg": f"Would have restarted instance {label}."}
        self.client.post("/instance-operations/restart", {"instance_ids": [instance["id"]]})
        instance = get_instance(self.client, instance["id"]) or instance
        if self.params["wait"]:
            instance = self.wait(instance, "active", changed=True)
        return {"changed": True, "instance": instance, "msg": f"Restarted instance {label}."}

    def wait(self, instance, target, changed, **result):
        """Wait for ``target``; on a timeout or a lost instance, fail and leave the instance as it is."""
        try:
            final, _polls = wait_for_instance(
                self.client, instance["id"], target, self.params["wait_timeout"], last=instance
            )
            return final
        except (WaitTimeout, InstanceLost) as error:
            if isinstance(error, WaitTimeout):
                msg = (
                    f"Timed out: {error}. The instance was left in place; run again to keep waiting, or raise "
                    "wait_timeout."
                )
            else:
                msg = (
                    f"Instance {instance.get('name')} ({instance['id']}) became '{error.status}' while waiting "
                    "for it to become active; Lambda Cloud ended it."
                )
            self.module.fail_json(msg=msg, instance=without_secrets(error.instance), changed=changed, **result)
        return instance

    def run(self):
        self.check_input()
        instance = self.find()
        self.before = without_secrets(instance)
        state = self.params["state"]
        if state == "present":
            result = self.present(instance)
        elif state == "absent":
            result = self.absent(instance)
        else:
            result = self.restarted(instance)
        after = without_secrets(result.get("instance"))
        if after:
            result["instance"] = after
        if state == "absent" and result["changed"]:
            after = None
        result["diff"] = {"before": self.before or {}, "after": after or {}}
        if after:
            result.setdefault("placement", {"instance_type": instance_type_name(after), "region": region_name(after)})
        return result


def main():
    InstanceModule.main()


if __name__ == "__main__":
    main()
