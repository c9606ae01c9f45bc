#!/usr/bin/python
# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: lambda_instance_info
short_description: List Lambda Cloud GPU instances
version_added: 0.1.0
description:
  - Lists the instances of the account, or reads one instance by its id.
  - Makes one API request.
extends_documentation_fragment: [lambdalabs.cloud.lambda_cloud, lambdalabs.cloud.lambda_cloud.info_module]
options:
  id:
    description:
      - Only the instance with this id. The module reads just this instance.
      - An unknown id gives an empty list.
    type: str
  name:
    description:
      - Only instances with this name. Instance names need not be unique.
    type: str
  region:
    description:
      - Only instances in this region.
    type: str
  instance_type:
    description:
      - Only instances of this instance type.
    type: str
  status:
    description:
      - Only instances in one of these states.
    type: list
    elements: str
    choices: [booting, active, unhealthy, terminating, terminated, preempted]
  include_jupyter:
    description:
      - Also return each instance's C(jupyter_token) and C(jupyter_url).
      - They are credentials for the instance's JupyterLab, so they are left out by default.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Active H100 nodes in us-south-1
  lambdalabs.cloud.lambda_instance_info:
    region: us-south-1
    instance_type: gpu_8x_h100_sxm5
    status: [active]
  register: nodes

- name: Their public addresses
  ansible.builtin.debug:
    msg: "{{ nodes.instances | map(attribute='ip') }}"

- name: One instance by id
  lambdalabs.cloud.lambda_instance_info:
    id: 0920582c7ff041399e34823a0be62549
"""

RETURN = r"""
instances:
  description: The instances that match every filter, as the API returns them but with C(tags) as a dictionary.
  returned: always
  type: list
  elements: dict
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
      description: One of C(booting), C(active), C(unhealthy), C(terminating), C(terminated), C(preempted).
      type: str
      sample: active
    ip:
      description: The public IPv4 address, once the instance has one.
      type: str
      sample: 127.18.0.2
    private_ip:
      description: The private IPv4 address, once the instance has one.
      type: str
      sample: 127.10.0.2
    hostname:
      description: The instance's hostname.
      type: str
      sample: trainer-1
    region:
      description: The instance's region, with C(name) and C(description).
      type: dict
      sample: {"name": "us-west-1", "description": "California, USA"}
    instance_type:
      description: The instance type, with C(name), C(description), C(gpu_description), C(price_cents_per_hour), C(specs).
      type: dict
      sample:
        name: gpu_1x_a10
        description: 1x A10 (24 GB PCIe)
        gpu_description: A10 (24 GB PCIe)
        price_cents_per_hour: 75
        specs: {"vcpus": 30, "memory_gib": 200, "storage_gib": 1400, "gpus": 1}
    ssh_key_names:
      description: The SSH keys that may log in.
      type: list
      elements: str
      sample: [deploy]
    file_system_names:
      description: The file systems mounted on the instance.
      type: list
      elements: str
      sample: [datasets]
    file_system_mounts:
      description: The mounted file systems with their mount points, when any.
      type: list
      elements: dict
      sample: [{"file_system_id": "398578a2336b49079e74043f0bd2cfe8", "mount_point": "/lambda/nfs/datasets"}]
    tags:
      description: The instance's tags, as a dictionary of keys to values.
      type: dict
      sample: {"cluster": "train"}
    firewall_rulesets:
      description: The firewall rulesets of the instance.
      type: list
      elements: dict
      sample: [{"id": "c4d291f47f9d436fa39f58493ce3b50d"}]
    actions:
      description: Which operations are available on the instance now.
      type: dict
      sample: {"restart": {"available": true}, "terminate": {"available": true}}
    jupyter_token:
      description: The JupyterLab token of the instance. It is a credential.
      returned: when O(include_jupyter=true)
      type: str
      sample: 03b7d30d9d3e4d8fa41657bc0d478c1b
    jupyter_url:
      description: The JupyterLab URL of the instance, with its token.
      returned: when O(include_jupyter=true)
      type: str
      sample: https://jupyter-249e1ccff1894822af39ac822637f881.lambdaspaces.com/?token=03b7d30d9d3e4d8fa41657bc0d478c1b
"""

from ansible_collections.lambdalabs.cloud.plugins.module_utils._api import (
    INSTANCE_STATUSES,
    get_instance,
    instance_type_name,
    list_instances,
    region_name,
    represent_instance,
)
from ansible_collections.lambdalabs.cloud.plugins.module_utils._module import run_filter_info_module
from ansible_collections.lambdalabs.cloud.plugins.module_utils._selection import Filter, field_equals
from ansible_collections.lambdalabs.cloud.plugins.module_utils._validation import (
    check_id,
    check_instance_type,
    check_name,
    check_region,
)


def _fetch(client, params):
    if params["id"]:
        instance = get_instance(client, params["id"])
        return [instance] if instance else []
    return list_instances(client)


def main():
    run_filter_info_module(
        "instances",
        _fetch,
        {
            "id": Filter(check_id),
            "name": Filter(check_name),
            "region": Filter(check_region, field_equals(region_name)),
            "instance_type": Filter(check_instance_type, field_equals(instance_type_name)),
            "status": Filter(spec={"type": "list", "elements": "str", "choices": list(INSTANCE_STATUSES)}),
        },
        options={"include_jupyter": {"type": "bool", "default": False}},
        represent=lambda instance, params: represent_instance(instance, params["include_jupyter"]),
    )


if __name__ == "__main__":
    main()
