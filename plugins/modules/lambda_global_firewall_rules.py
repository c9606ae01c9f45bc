#!/usr/bin/python
# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: lambda_global_firewall_rules
short_description: Set the account-wide inbound firewall rules of Lambda Cloud
version_added: 1.0.0
description:
  - Makes sure the global firewall ruleset (C(/firewall-rulesets/global)), which applies to instances without a
    ruleset of their own, holds exactly the given inbound rules.
  - Rules compare as a set, as in M(lambdalabs.cloud.lambda_firewall_ruleset); a change is one C(PATCH), and a run
    with the rules already in place sends none.
  - A rule list that lets no TCP traffic in on port 22 from anywhere gets a warning, since it cuts every instance
    that relies on it off SSH.
extends_documentation_fragment: [lambdalabs.cloud.lambda_cloud, lambdalabs.cloud.lambda_cloud.resource_module, lambdalabs.cloud.lambda_cloud.firewall_rules]
options:
  rules:
    required: true
"""

EXAMPLES = r"""
- name: SSH from anywhere, ping from the office
  lambdalabs.cloud.lambda_global_firewall_rules:
    rules:
      - {protocol: tcp, port: 22, source_network: 0.0.0.0/0, description: SSH}
      - {protocol: icmp, source_network: 203.0.113.0/24, description: Ping from the office}
"""

RETURN = r"""
firewall_rules:
  description: The global rules after the change, as the API stores them; in check mode, as they would be.
  returned: always
  type: list
  elements: dict
  sample: [{"protocol": "tcp", "port_range": [22, 22], "source_network": "0.0.0.0/0", "description": "SSH"}]
msg:
  description: What was done, or in check mode what would be done.
  returned: always
  type: str
  sample: Set the global firewall rules (2 rules).
"""

from ansible_collections.lambdalabs.cloud.plugins.module_utils._api import (
    get_global_firewall_rules,
    update_global_firewall_rules,
)
from ansible_collections.lambdalabs.cloud.plugins.module_utils._firewall import (
    RULES_OPTION,
    allows_ssh,
    normalize_rules,
    same_rules,
    sorted_rules,
)
from ansible_collections.lambdalabs.cloud.plugins.module_utils._module import LambdaCloudModule


class GlobalFirewallRulesModule(LambdaCloudModule):
    argument_spec = {"rules": RULES_OPTION | {"required": True}}
    resource_key = "firewall_rules"

    def diff_view(self, shown):
        return {"rules": sorted_rules(shown or [])}

    def run(self):
        rules = normalize_rules("rules", self.params["rules"])
        if not allows_ssh(rules):
            self.module.warn(
                "These global firewall rules let no TCP traffic in on port 22: instances without a ruleset of their "
                "own can no longer be reached over SSH."
            )
        self.before = get_global_firewall_rules(self.client)
        if same_rules(self.before, rules):
            self.unchanged("The global firewall rules are in place.", self.before)
            return
        after = rules if self.check_mode else update_global_firewall_rules(self.client, rules)
        self.changed("set", f"the global firewall rules ({len(rules)} rules)", after)


def main():
    GlobalFirewallRulesModule.main()


if __name__ == "__main__":
    main()
