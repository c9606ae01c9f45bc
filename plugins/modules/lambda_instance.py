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
  - Idempotent by O(name). It never leaves two instances with the same name, also when a launch answer is lost or
    another controller launches the same name at the same time; the guide C(docs/launch-protocol.md) explains how.
  - Launches from one controller are paced to the API's limit of one launch per 12 seconds, also across forks.
extends_documentation_fragment: [lambdalabs.cloud.lambda_cloud, lambdalabs.cloud.lambda_cloud.resource_module, lambdalabs.cloud.lambda_cloud.launch_options]
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
      - Renaming to a name that another existing instance has is refused.
      - A name to launch or rename to must not start or end with white space, nor hold invisible characters
        (zero-width, bidirectional marks, spaces other than the plain one). A new name that looks like the name of
        an existing instance, differing only by letters of other scripts that look the same, gets a warning.
    type: str
  state:
    description:
      - V(present) launches the instance when it is missing; V(absent) terminates it; V(restarted) restarts it.
      - Instances that are C(terminating), C(terminated) or C(preempted) count as missing.
    type: str
    choices: [present, absent, restarted]
    default: present
  on_mismatch:
    description:
      - What to do when an existing instance differs from the request in what cannot change in place (instance type,
        region, SSH key, file systems, tags, hostname).
      - V(fail) fails and lists the differences; V(warn) leaves the instance as it is with a warning.
    type: str
    choices: [fail, warn]
    default: fail
  wait:
    description:
      - Wait for the instance to become C(active) (V(present), V(restarted)) or to be terminated (V(absent)).
      - After a launch, once the instance is active, the module looks at the name once more. When a parallel run's
        launch, answered late, made an instance of the name with a lower id, it terminates its own, adopts that one
        and reports V(replaced) in RV(launch).
    type: bool
    default: true
  wait_timeout:
    description:
      - Seconds to wait. 8-GPU instances can take 25 minutes to boot. On timeout the module fails and names the
        instance; it never terminates the instance.
    type: int
    default: 1800
  progress_seconds:
    description:
      - While the module runs with O(wait=true), the controller prints a line this often that names the instance and
        gives its status as the API lists it, what the module waits for, and the time so far.
      - V(0) prints none.
    type: float
    default: 30
    version_added: 1.1.0
"""

EXAMPLES = r"""
- name: An H100 node, at most a downgrade to a cheaper H100, waiting up to an hour for capacity
  lambdalabs.cloud.lambda_instance:
    name: trainer-1
    instance_type: [gpu_8x_h100_sxm5, gpu_1x_h100_pcie]
    region: [us-west-2, us-east-1]
    min_gpus: 1
    max_price_cents_per_hour: 2500
    capacity_timeout: 3600
    ssh_key_name: deploy
    firewall_ruleset_names: [jupyter]
    tags:
      team: research
  register: trainer

- name: Show where it landed
  ansible.builtin.debug:
    msg: "{{ trainer.instance.ip }} ({{ trainer.placement.instance_type }} in {{ trainer.placement.region }})"

- name: Rename an instance
  lambdalabs.cloud.lambda_instance:
    id: 0920582c7ff041399e34823a0be62549
    name: trainer-2

- name: Restart it
  lambdalabs.cloud.lambda_instance:
    name: trainer-2
    state: restarted

- name: Terminate it without waiting
  lambdalabs.cloud.lambda_instance:
    name: trainer-2
    state: absent
    wait: false
"""

RETURN = r"""
instance:
  description:
    - The instance after the change, as the API returns it but with C(tags) as a dictionary and without the Jupyter
      credentials; in check mode, what it would look like.
  returned: when the instance exists or would exist
  type: dict
  sample:
    id: 0920582c7ff041399e34823a0be62549
    name: trainer-1
    status: active
    ip: 127.18.0.2
    private_ip: 127.10.0.2
    hostname: trainer-1
    region: {"name": "us-west-2", "description": "Arizona, USA"}
    instance_type:
      name: gpu_1x_a100_sxm4
      description: 1x A100 (40 GB SXM4)
      gpu_description: A100 (40 GB SXM4)
      price_cents_per_hour: 129
      specs:
        vcpus: 30
        memory_gib: 220
        storage_gib: 512
        gpus: 1
    ssh_key_names: [deploy]
    file_system_names: []
    firewall_rulesets: [{"id": "c4d291f47f9d436fa39f58493ce3b50d"}]
    tags: {"team": "research"}
placement:
  description: The instance type and region of the instance; for a launch, the pair that was chosen.
  returned: when the instance exists or would exist
  type: dict
  sample: {"instance_type": "gpu_1x_a100_sxm4", "region": "us-west-2"}
attempts:
  description: The (type, region) pairs a launch tried, each with its last outcome and how often it was tried.
  returned: when a launch was attempted
  type: list
  elements: dict
  sample: [{"instance_type": "gpu_1x_a10", "region": "us-east-1", "result": "insufficient-capacity", "tries": 1}]
launch:
  description:
    - How the instance came to exist. C(how) is V(launched), V(recovered) (the launch answer was lost and the
      instance was found by name), V(adopted) (another run launched it) or V(replaced) (a parallel run launched the
      same name first; this run's duplicate, C(terminated), was terminated).
  returned: when a launch was attempted
  type: dict
  sample: {"how": "launched", "terminated": null}
msg:
  description: What was done, or in check mode what would be done.
  returned: always
  type: str
  sample: Launched instance trainer-1 (gpu_1x_a100_sxm4 in us-west-2).
"""

import functools

from ansible_collections.lambdalabs.cloud.plugins.module_utils._api import (
    EXISTING_STATUSES,
    get_instance,
    instance_type_name,
    list_existing,
    list_existing_named,
    named,
    region_name,
    rename_instance,
    represent_instance,
    restart_instances,
    terminate_instances,
)
from ansible_collections.lambdalabs.cloud.plugins.module_utils._launch import LaunchFailed, after_racers
from ansible_collections.lambdalabs.cloud.plugins.module_utils._launch_request import (
    LAUNCH_OPTIONS,
    check_instance_options,
    differences,
    launcher_for,
    plan_launch,
)
from ansible_collections.lambdalabs.cloud.plugins.module_utils._module import LambdaCloudModule, ModuleFailure
from ansible_collections.lambdalabs.cloud.plugins.module_utils._validation import (
    InvalidParameter,
    check_new_name,
    look_alikes,
)
from ansible_collections.lambdalabs.cloud.plugins.module_utils._wait import InstanceLost, WaitTimeout, wait_for_instance


class InstanceModule(LambdaCloudModule):
    argument_spec = {
        "id": {"type": "str"},
        "name": {"type": "str"},
        "state": {"type": "str", "default": "present", "choices": ["present", "absent", "restarted"]},
        **LAUNCH_OPTIONS,
        "on_mismatch": {"type": "str", "default": "fail", "choices": ["fail", "warn"]},
        "wait": {"type": "bool", "default": True},
        "wait_timeout": {"type": "int", "default": 1800},
        "progress_seconds": {"type": "float", "default": 30},  # used by the action plugin, on the controller
    }
    module_kwargs = {"required_one_of": [["id", "name"]]}
    resource_key = "instance"
    managed_fields = ("name", "status", "instance_type", "region", "hostname", "ssh_key_names", "file_system_names")
    managed_fields += ("tags", "firewall_rulesets")
    existing = ()  # the account's existing instances, when looked up by name
    launched = None  # (launcher, outcome) of this run's launch

    def represent(self, resource):
        return represent_instance(resource)

    def diff_view(self, shown):
        view = super().diff_view(shown)
        if view:
            view.update(instance_type=instance_type_name(view), region=region_name(view))
        return view

    @staticmethod
    def label(instance):
        return f"{instance.get('name')} ({instance['id']})"

    def find(self):
        """The existing instance, or None: by id when given (one GET), else by its unique name (one list)."""
        if self.params["id"] is not None:
            instance = get_instance(self.client, self.params["id"])
            return instance if instance and instance.get("status") in EXISTING_STATUSES else None
        self.existing = list_existing(self.client)
        found = named(self.existing, self.params["name"])
        if found and self.params["state"] == "present":
            found = after_racers(self.client, self.params["name"], found)
        if len(found) > 1:
            ids = ", ".join(item["id"] for item in found)
            raise InvalidParameter(
                "name", f"{len(found)} instances are named '{self.params['name']}' ({ids}); give id."
            )
        return found[0] if found else None

    # ------------------------------------------------------------------ states
    def present(self, instance):
        p = self.params
        if instance is None and p["id"] is not None:
            raise InvalidParameter("id", f"no existing instance has id {p['id']}; to launch, give name without id.")
        if instance is None:
            self.launch()
        else:
            self.compare(instance)
            if p["id"] and p["name"] is not None and instance.get("name") != p["name"]:
                self.rename(instance, p["name"])
            else:
                self.unchanged(f"Instance {self.label(instance)} exists.", instance)
        status = (self.after or {}).get("status")
        if p["wait"] and not self.check_mode and (status == "booting" or (instance is None and status != "active")):
            self.after = self.wait(self.after, "active")
        if self.launched and p["wait"]:
            self.recheck(*self.launched)

    def recheck(self, launcher, outcome):
        """Once the launched instance is active, look at the name again: a racer answered late may have made one."""
        rechecked = launcher.recheck(outcome)
        if rechecked is not outcome:
            self.report(rechecked)
            self.after = self.wait(self.after, "active")

    def compare(self, instance):
        found = differences(self.params, instance)
        if not found:
            return
        text = f"Instance {self.label(instance)} differs from the request in what cannot change in place: "
        text += "; ".join(found)
        if self.params["on_mismatch"] == "warn":
            self.module.warn(f"{text}. It was left as it is.")
            return
        raise ModuleFailure(
            f"{text}. Nothing was changed. Terminate it and run again to replace it, or set on_mismatch=warn.",
            differences=found,
        )

    def rename(self, instance, name):
        check_new_name("name", name)
        others = [i["id"] for i in list_existing_named(self.client, name) if i["id"] != instance["id"]]
        if others:
            raise InvalidParameter(
                "name", f"instance {', '.join(others)} is named '{name}' already; choose a name no instance has."
            )
        after = dict(instance, name=name) if self.check_mode else rename_instance(self.client, instance["id"], name)
        self.changed("renamed", f"instance {instance['id']} from {instance.get('name')!r} to {name!r}", after)

    def launch(self):
        p = self.params
        plan = plan_launch(self.client, p)
        alike = look_alikes(p["name"], [str(item.get("name")) for item in self.existing])
        if alike:
            others = ", ".join(repr(name) for name in alike)
            self.module.warn(f"Name {p['name']!r} looks like {others}, of an existing instance; launching another.")
        if self.check_mode:
            placement = plan.predicted()
            shown = {"name": p["name"], "status": "booting", "tags": plan.body.get("tags", [])}
            shown["firewall_rulesets"] = plan.body_for(placement["region"]).get("firewall_rulesets", [])
            shown.update(instance_type={"name": placement["instance_type"]}, region={"name": placement["region"]})
            where = f"{placement['instance_type']} in {placement['region']}"
            self.changed("launched", f"instance {p['name']} ({where})", shown, placement=placement)
            return
        launcher = launcher_for(self.client, p, self.module.log)
        try:
            outcome = launcher.launch(plan.body_for, plan.choose, plan.types)
        except LaunchFailed as error:
            extra = {"error": error.error.to_dict()} if error.error else {}
            raise ModuleFailure(str(error), attempts=error.attempts, **extra) from None
        self.report(outcome)
        self.launched = (launcher, outcome)

    def report(self, outcome):
        instance = get_instance(self.client, outcome.instance_id) or {"id": outcome.instance_id, "status": "booting"}
        placement = {"instance_type": instance_type_name(instance) or outcome.instance_type}
        placement["region"] = region_name(instance) or outcome.region
        verb, what = outcome.describe(self.params["name"], placement)
        launch = {"how": outcome.how, "terminated": outcome.terminated}
        extra = {"placement": placement, "attempts": outcome.attempts, "launch": launch}
        if outcome.created:
            self.changed(verb, what, instance, **extra)
        else:
            self.unchanged(f"Adopted {what}.", instance, **extra)

    def absent(self, instance):
        if instance is None:
            self.unchanged("The instance does not exist.")
            return
        after = None if self.check_mode else terminate_instances(self.client, [instance["id"]])
        self.changed("terminated", f"instance {self.label(instance)}", (after or [instance])[0])
        self.removed = True
        if self.params["wait"] and not self.check_mode:
            self.after = self.wait(self.after, "gone") or dict(self.after, status="terminated")

    def restarted(self, instance):
        if instance is None:
            param = "id" if self.params["id"] else "name"
            raise InvalidParameter(param, f"no existing instance {self.params[param]!r} to restart.")
        if not self.check_mode:
            restart_instances(self.client, [instance["id"]])
            instance = get_instance(self.client, instance["id"]) or instance
        self.changed("restarted", f"instance {self.label(instance)}", instance)
        if self.params["wait"] and not self.check_mode:
            self.after = self.wait(instance, "active")

    def wait(self, instance, target):
        """Wait for ``target``; on a timeout or a lost instance, fail and leave the instance as it is."""
        read = functools.partial(get_instance, self.client, instance["id"])
        try:
            return wait_for_instance(read, instance["id"], target, self.params["wait_timeout"], last=instance)[0]
        except WaitTimeout as error:
            msg, last = f"Timed out: {error}. The instance was left in place; run again or raise wait_timeout.", error
        except InstanceLost as error:
            msg = f"Instance {self.label(instance)} became '{error.status}' while waiting for it to become active; "
            msg += "Lambda Cloud ended it."
            last = error
        raise ModuleFailure(msg, instance=self.represent(last.instance))

    def run(self):
        check_instance_options(self.params)
        self.before = self.find()
        getattr(self, self.params["state"])(self.before)
        if self.after is not None:
            placement = {"instance_type": instance_type_name(self.after), "region": region_name(self.after)}
            self._extra.setdefault("placement", placement)


def main():
    InstanceModule.main()


if __name__ == "__main__":
    main()
