# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The account's firewall: the global rules (also served as the ``global`` ruleset) and the firewall rulesets."""

from __future__ import annotations

from typing import Any

from sim_account_base import GONE_STATUSES, AccountBase, iso_time, new_id
from sim_catalogue import REGION_OBJECTS, REGIONS
from sim_requests import parse_rules
from sim_validation import ApiError, check_keys, expect_object, get_str, invalid, not_found, require_str

GLOBAL_RULESET_ID = "global"
GLOBAL_RULESET_NAME = "Global Firewall Rules"


class FirewallOperations(AccountBase):
    """The firewall operations of :class:`sim_account.Account`."""

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
