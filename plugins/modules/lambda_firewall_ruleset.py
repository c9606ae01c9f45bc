#!/usr/bin/python
# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: lambda_firewall_ruleset
short_description: Create, change and delete Lambda Cloud firewall rulesets
version_added: 1.0.0
description:
  - Makes sure a firewall ruleset with a given name exists in a region with exactly the given inbound rules, or does
    not exist.
  - Rules compare as a set. Their order does not matter, C(port) is the same as a C(port_range) of that port twice,
    and an address without a mask is a C(/32), as the API stores it. A change of rules is one C(PATCH).
  - Associate a ruleset with instances when launching them, with
    O(lambdalabs.cloud.lambda_instance#module:firewall_ruleset_names).
extends_documentation_fragment: [lambdalabs.cloud.lambda_cloud, lambdalabs.cloud.lambda_cloud.resource_module, lambdalabs.cloud.lambda_cloud.firewall_rules]
options:
  name:
    description:
      - The ruleset's name, at most 64 characters. When more than one ruleset has the name (in O(region), when
        given), the module fails and lists their ids.
    type: str
    required: true
  region:
    description:
      - The region of the ruleset, for example V(us-east-1). Required to create one. Instances can only use rulesets
        of their own region, so the same name may stand for a ruleset in each region; O(region) chooses among them.
    type: str
  rules:
    description:
      - The inbound rules. Traffic that no rule allows is dropped. Required with O(state=present).
      - An empty list allows no inbound traffic at all to the instances that use the ruleset, SSH included.
  state:
    description:
      - Whether the ruleset should exist.
      - A ruleset that instances use cannot be deleted; the module fails with the API's error code and names them.
    type: str
    choices: [present, absent]
    default: present
"""

EXAMPLES = r"""
- name: JupyterLab and TensorBoard from the office, SSH from anywhere
  lambdalabs.cloud.lambda_firewall_ruleset:
    name: notebooks
    region: us-east-1
    rules:
      - {protocol: tcp, port: 22, source_network: 0.0.0.0/0, description: SSH}
      - {protocol: tcp, port: 8888, source_network: 203.0.113.0/24, description: JupyterLab}
      - {protocol: tcp, port: 6006, source_network: 203.0.113.0/24, description: TensorBoard}

- name: Multi-node training inside the cluster's network
  lambdalabs.cloud.lambda_firewall_ruleset:
    name: training
    region: us-east-1
    rules:
      - {protocol: tcp, port: 22, source_network: 0.0.0.0/0, description: SSH}
      - {protocol: all, source_network: 10.0.0.0/8, description: NCCL and torchrun between the nodes}

- name: Remove a ruleset no instance uses any more
  lambdalabs.cloud.lambda_firewall_ruleset:
    name: notebooks
    state: absent
"""

RETURN = r"""
firewall_ruleset:
  description: The ruleset after the change; in check mode, what it would look like.
  returned: when the ruleset exists or would exist
  type: dict
  sample:
    id: c4d291f47f9d436fa39f58493ce3b50d
    name: notebooks
    region: {"name": "us-east-1", "description": "Virginia, USA"}
    rules: [{"protocol": "tcp", "port_range": [22, 22], "source_network": "0.0.0.0/0", "description": "SSH"}]
    created: "2026-01-01T12:00:00.000000Z"
    instance_ids: []
msg:
  description: What was done, or in check mode what would be done.
  returned: always
  type: str
  sample: Changed the rules of firewall ruleset notebooks (3 rules).
"""

from ansible_collections.lambdalabs.cloud.plugins.module_utils._api import (
    create_firewall_ruleset,
    delete_firewall_ruleset,
    list_firewall_rulesets,
    region_name,
    update_firewall_ruleset,
)
from ansible_collections.lambdalabs.cloud.plugins.module_utils._firewall import (
    RULES_OPTION,
    normalize_rules,
    same_rules,
    sorted_rules,
)
from ansible_collections.lambdalabs.cloud.plugins.module_utils._module import (
    SharedResourceModule,
    regional_resource_spec,
)
from ansible_collections.lambdalabs.cloud.plugins.module_utils._selection import find_one_by_name
from ansible_collections.lambdalabs.cloud.plugins.module_utils._validation import (
    InvalidParameter,
    check_name,
    check_new_name,
    check_region,
)


class FirewallRulesetModule(SharedResourceModule):
    argument_spec = regional_resource_spec(rules=RULES_OPTION)
    module_kwargs = {"required_if": [["state", "present", ["rules"]]]}
    resource_key = "firewall_ruleset"
    managed_fields = ("name", "region", "rules")
    kind = "firewall ruleset"
    used_by = "is used by instance(s)"
    in_use_code = "firewall-rulesets/firewall-ruleset-in-use"
    rules = None  # the normalised rules option

    def diff_view(self, shown):
        view = super().diff_view(shown)
        if view:
            view["rules"] = sorted_rules(view.get("rules") or [])
        return view

    def present(self, existing):
        name, region, rules = self.params["name"], self.params["region"], self.rules
        if existing is None:
            check_new_name("name", name)
            if not region:
                raise InvalidParameter("region", f"is required to create firewall ruleset {name!r}.")
            after = {"name": name, "region": {"name": region}, "rules": rules, "instance_ids": []}
            if not self.check_mode:
                after = create_firewall_ruleset(self.client, name, region, rules)
            self.changed("created", f"firewall ruleset {name} in {region} ({len(rules)} rules)", after)
        elif same_rules(existing.get("rules") or [], rules):
            self.unchanged(f"Firewall ruleset {name} has these rules.", existing)
        else:
            after = dict(existing, rules=rules)
            if not self.check_mode:
                after = update_firewall_ruleset(self.client, existing["id"], rules)
            self.changed("changed", f"the rules of firewall ruleset {name} ({len(rules)} rules)", after)

    def users(self, existing):
        """The instances that use the ruleset now, or, when it cannot be read again, as it was listed."""
        if not self.check_mode:
            now = [r for r in list_firewall_rulesets(self.client) if r.get("id") == existing["id"]]
            existing = (now or [existing])[0]
        return existing.get("instance_ids") or []

    def in_use(self, existing):
        return bool(existing.get("instance_ids"))

    def delete_resource(self, existing):
        delete_firewall_ruleset(self.client, existing["id"])

    def find(self):
        p = self.params
        check_name("name", p["name"])
        check_region("region", p["region"])
        self.rules = normalize_rules("rules", p["rules"]) if p["rules"] is not None else None
        rulesets = list_firewall_rulesets(self.client)
        if p["region"]:
            # One name may stand for a ruleset in each region: the region chooses.
            rulesets = [r for r in rulesets if region_name(r) == p["region"]]
        return find_one_by_name(rulesets, p["name"], "firewall ruleset", "give region, or rename one of them")


def main():
    FirewallRulesetModule.main()


if __name__ == "__main__":
    main()
