#!/usr/bin/python
# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: lambda_firewall_ruleset_info
short_description: List Lambda Cloud firewall rulesets
version_added: 1.0.0
description:
  - Lists the firewall rulesets of the account, with their rules and the instances that use them.
  - Makes one API request.
extends_documentation_fragment: [lambdalabs.cloud.lambda_cloud, lambdalabs.cloud.lambda_cloud.info_module]
options:
  id:
    description:
      - Only the ruleset with this identifier, for example V(c4d291f47f9d436fa39f58493ce3b50d).
    type: str
  name:
    description:
      - Only rulesets with this name.
    type: str
  region:
    description:
      - Only rulesets in this region.
    type: str
"""

EXAMPLES = r"""
- name: List the firewall rulesets of us-east-1
  lambdalabs.cloud.lambda_firewall_ruleset_info:
    region: us-east-1
  register: rulesets

- name: Show which instances use the ruleset named notebooks
  ansible.builtin.debug:
    msg: "{{ rulesets.firewall_rulesets | selectattr('name', 'eq', 'notebooks') | map(attribute='instance_ids') | list }}"
"""

RETURN = r"""
firewall_rulesets:
  description: The firewall rulesets that match every filter.
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: The ruleset's identifier.
      type: str
      sample: c4d291f47f9d436fa39f58493ce3b50d
    name:
      description: The ruleset's name; one name may stand for a ruleset in each region.
      type: str
      sample: notebooks
    region:
      description: The region, with C(name) and C(description).
      type: dict
      sample: {"name": "us-east-1", "description": "Virginia, USA"}
    rules:
      description: The inbound rules, as the API stores them (C(port_range), a C(/32) on single addresses).
      type: list
      elements: dict
      sample: [{"protocol": "tcp", "port_range": [22, 22], "source_network": "0.0.0.0/0", "description": "SSH"}]
    created:
      description: When it was created (ISO 8601).
      type: str
      sample: "2026-01-01T12:00:00.000000Z"
    instance_ids:
      description: The instances that use the ruleset; a ruleset in use cannot be deleted.
      type: list
      elements: str
      sample: ["0920582c7ff041399e34823a0be62549"]
"""

from ansible_collections.lambdalabs.cloud.plugins.module_utils._api import list_firewall_rulesets, region_name
from ansible_collections.lambdalabs.cloud.plugins.module_utils._module import run_filter_info_module
from ansible_collections.lambdalabs.cloud.plugins.module_utils._selection import Filter, field_equals
from ansible_collections.lambdalabs.cloud.plugins.module_utils._validation import check_id, check_name, check_region


def main():
    run_filter_info_module(
        "firewall_rulesets",
        lambda client, params: list_firewall_rulesets(client),
        {
            "name": Filter(check_name),
            "region": Filter(check_region, field_equals(region_name)),
            "id": Filter(check_id),
        },
    )


if __name__ == "__main__":
    main()
