#!/usr/bin/python
# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: lambda_instance_type_info
short_description: List Lambda Cloud instance types, their prices and where they have capacity
version_added: 0.1.0
description:
  - Lists the instance types that Lambda Cloud offers, cheapest first, with their specs, price and
    the regions that have capacity for them right now.
  - Also returns them as a short table of text lines, RV(table), which the C(lambdalabs.cloud.capacity) playbook
    prints.
  - Makes one API request.
extends_documentation_fragment: [lambdalabs.cloud.lambda_cloud, lambdalabs.cloud.lambda_cloud.info_module]
options:
  name:
    description:
      - Only this instance type, for example V(gpu_1x_a100_sxm4).
      - The module fails when no instance type has this name.
    type: str
  region:
    description:
      - Only instance types with capacity in this region.
    type: str
  available:
    description:
      - Only instance types with capacity in at least one region.
    type: bool
    default: false
  min_gpus:
    description:
      - Only instance types with at least this many GPUs.
    type: int
  max_price_cents_per_hour:
    description:
      - Only instance types that cost at most this many US cents per hour.
    type: int
  gpu:
    description:
      - Only instance types whose GPU description contains this text, ignoring case, for example V(h100).
    type: str
"""

EXAMPLES = r"""
- name: Find the cheapest instance type with an H100 that has capacity somewhere
  lambdalabs.cloud.lambda_instance_type_info:
    gpu: h100
    available: true
  register: h100

- name: Show it
  ansible.builtin.debug:
    msg: "{{ h100.instance_types[0].name }} in {{ h100.instance_types[0].regions_with_capacity_available | map(attribute='name') }}"

- name: 8-GPU types under 30 USD per hour with capacity in us-south-1
  lambdalabs.cloud.lambda_instance_type_info:
    region: us-south-1
    min_gpus: 8
    max_price_cents_per_hour: 3000
  register: eight

- name: Print them as a table
  ansible.builtin.debug:
    msg: "{{ eight.table }}"
"""

RETURN = r"""
instance_types:
  description: The instance types that match every filter, cheapest first.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The instance type's name.
      type: str
      sample: gpu_1x_a100_sxm4
    description:
      description: A description of the instance type, such as its GPUs.
      type: str
      sample: 1x A100 (40 GB SXM4)
    gpu_description:
      description: The GPU of the instance type.
      type: str
      sample: A100 (40 GB SXM4)
    price_cents_per_hour:
      description: The price in US cents per hour.
      type: int
      sample: 129
    specs:
      description: The hardware of the instance type.
      type: dict
      sample: {"vcpus": 30, "memory_gib": 200, "storage_gib": 512, "gpus": 1}
    regions_with_capacity_available:
      description: The regions that have capacity for this type now, each with C(name) and C(description).
      type: list
      elements: dict
      sample: [{"name": "us-west-2", "description": "Arizona, USA"}]
table:
  description:
    - The instance types of RV(instance_types), in the same order, as lines of text in aligned columns, a header
      first.
    - The columns are the type's name, its number of GPUs, the memory of one GPU (from its C(gpu_description),
      C(-) when the description does not say), its price in US dollars per hour, and the regions that have capacity
      for it now, by name and comma-separated (C(none) when no region has).
    - With no matching instance type, only the header.
  returned: always
  type: list
  elements: str
  version_added: 1.1.0
  sample:
    - "Type              GPUs  GPU memory    $/h  Regions with capacity"
    - "gpu_8x_v100          8  16 GB        4.40  us-south-1"
    - "gpu_8x_a100          8  40 GB       10.32  us-west-2"
    - "gpu_8x_h100_sxm5     8  80 GB       23.92  us-east-1, us-south-1"
"""

from functools import partial

from ansible_collections.lambdalabs.cloud.plugins.module_utils._api import capacity_regions, cents, list_instance_types
from ansible_collections.lambdalabs.cloud.plugins.module_utils._capacity import capacity_table
from ansible_collections.lambdalabs.cloud.plugins.module_utils._module import run_filter_info_module
from ansible_collections.lambdalabs.cloud.plugins.module_utils._selection import Filter
from ansible_collections.lambdalabs.cloud.plugins.module_utils._validation import (
    check_instance_type,
    check_number,
    check_region,
    check_text,
)

AT_LEAST_ZERO = partial(check_number, minimum=0)


def main():
    run_filter_info_module(
        "instance_types",
        lambda client, params: list_instance_types(client),
        {
            "name": Filter(check_instance_type, known_as="instance type"),
            "region": Filter(check_region, lambda t, v: v in capacity_regions(t)),
            "available": Filter(
                None, lambda t, v: not v or bool(capacity_regions(t)), {"type": "bool", "default": False}
            ),
            "min_gpus": Filter(AT_LEAST_ZERO, lambda t, v: t.get("specs", {}).get("gpus", 0) >= v, {"type": "int"}),
            "max_price_cents_per_hour": Filter(
                AT_LEAST_ZERO, lambda t, v: cents(t.get("price_cents_per_hour")) <= v, {"type": "int"}
            ),
            "gpu": Filter(
                partial(check_text, max_length=64), lambda t, v: v.lower() in (t.get("gpu_description") or "").lower()
            ),
        },
        extra_results=lambda instance_types: {"table": capacity_table(instance_types)},
    )


if __name__ == "__main__":
    main()
