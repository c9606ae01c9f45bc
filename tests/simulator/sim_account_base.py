# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The account's data, and what the operations of every resource family share: ids, timestamps, the audit trail.

Each resource family's operations (sim_instances.py, sim_ssh_keys.py, sim_file_systems.py, sim_firewalls.py) are
a mixin of :class:`AccountBase`; :class:`sim_account.Account` puts them together and owns the data.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sim_addresses import AddressPool
from sim_hooks import InstanceHooks
from sim_requests import decode_page_token, encode_page_token, parse_time

AUDIT_PAGE_SIZE = 50
AUDIT_CATALOG_VERSION = "2025-09-06"
ACCOUNT_ID = "5d1c0f4c7e2a4b0b9a3e6f1d2c8b7a90"
USER = {"id": "0c6e3a1f9b8d4e2f8a7b6c5d4e3f2a1b", "email": "simulator@example.com", "status": "active"}
API_KEY_LRN = "lrn:cloud:api_key:9f8e7d6c5b4a39281706f5e4d3c2b1a0"

# Instances in these states no longer hold their file systems and firewall rulesets.
GONE_STATUSES = ("terminated",)
NO_TYPE_SUGGESTION = "List the instance types with GET /api/v1/instance-types."


def new_id() -> str:
    """A resource id: 32 lowercase hex characters."""
    return os.urandom(16).hex()


def iso_time(timestamp: float) -> str:
    """An ISO 8601 UTC timestamp with microseconds and a ``Z`` suffix."""
    return datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class Timing:
    """How long lifecycle phases last, in seconds."""

    boot_seconds: float = 5.0
    terminate_seconds: float = 2.0
    linger_seconds: float = 3.0


class AccountBase:
    """Everything one API key sees, plus the capacity of the simulated cloud; see the module documentation."""

    timing: Timing
    hooks: InstanceHooks
    addresses: AddressPool
    instances: dict[str, dict[str, Any]]  # ready-to-serve API objects
    pending: dict[str, list[tuple[float, str]]]  # instance id -> due lifecycle steps: (when, step)
    requested_hostnames: dict[str, str]  # instance id -> the hostname its launch asked for
    launch_addresses: dict[str, list[str]]  # instance id -> [ip, private_ip], until it becomes active
    ssh_keys: dict[str, dict[str, Any]]
    file_systems: dict[str, dict[str, Any]]
    firewall_rules: list[dict[str, Any]]  # the global ruleset's rules
    rulesets: dict[str, dict[str, Any]]
    capacity: dict[str, list[str]]  # instance type -> the regions with capacity
    events: list[dict[str, Any]]  # the audit trail, oldest first
    dirty: bool  # changed since the state file was last written
    _list_body: bytes | None  # the GET /instances answer, until an instance changes

    def instances_changed(self) -> None:
        """Note a change of any instance: the list answer is built again, the state file written again."""
        self._list_body = None
        self.dirty = True

    def _event(self, resource: str, action: str, resource_id: str, details: dict[str, Any], now: float) -> None:
        """Add a change to the audit trail."""
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

    def record_past_event(self, resource: str, action: str, item: dict[str, Any], at: float) -> None:
        """Add a change at a past time (seeding), in its place in the trail, which stays oldest first."""
        details = {"name": item.get("name")} if item.get("name") else {}
        self._event(resource, action, item["id"], details, at)
        self.events.sort(key=lambda event: event["_at"])

    def audit_events(self, query: dict[str, str]) -> dict[str, Any]:
        """``GET /audit-events``: one page of the trail, filtered by time and resource type."""
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
