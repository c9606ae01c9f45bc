# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The state file (``--state FILE``): the whole account, lifecycle timestamps included, as JSON.

It is read at start and written again, atomically (a temporary file renamed over it), after each change.
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any

from sim_account import Account

FORMAT = 1


def to_file_data(account: Account) -> dict[str, Any]:
    """Everything needed to continue later, lifecycle timestamps included."""
    return {
        "format": FORMAT,
        "instances": list(account.instances.values()),
        "pending": {key: [list(step) for step in steps] for key, steps in account.pending.items()},
        "requested_hostnames": account.requested_hostnames,
        "launch_addresses": account.launch_addresses,
        "ssh_keys": list(account.ssh_keys.values()),
        "file_systems": list(account.file_systems.values()),
        "firewall_rules": account.firewall_rules,
        "firewall_rulesets": list(account.rulesets.values()),
        "capacity": account.capacity,
        "events": account.events,
    }


def load_file_data(account: Account, data: dict[str, Any]) -> None:
    """Replace the account with what :func:`to_file_data` gave."""
    account.reset()
    account.instances = {instance["id"]: instance for instance in data.get("instances", [])}
    account.pending = {
        key: [(float(at), str(step)) for at, step in steps] for key, steps in data.get("pending", {}).items()
    }
    account.requested_hostnames = dict(data.get("requested_hostnames", {}))
    account.launch_addresses = {key: list(value) for key, value in data.get("launch_addresses", {}).items()}
    for address in [instance.get("ip") for instance in account.instances.values()] + [
        pair[0] for pair in account.launch_addresses.values()
    ]:
        if address:
            account.addresses.mark_used(address)
    account.ssh_keys = {key["id"]: key for key in data.get("ssh_keys", [])}
    account.file_systems = {fs["id"]: fs for fs in data.get("file_systems", [])}
    account.firewall_rules = data.get("firewall_rules", account.firewall_rules)
    account.rulesets = {ruleset["id"]: ruleset for ruleset in data.get("firewall_rulesets", [])}
    account.capacity.update(data.get("capacity", {}))
    account.events = data.get("events", [])
    account.instances_changed()
    account.dirty = False


def load(account: Account, path: str) -> None:
    """Load the account from ``path`` if the file exists."""
    if os.path.exists(path):
        with open(path, encoding="utf-8") as handle:
            load_file_data(account, json.load(handle))


def save(account: Account, path: str) -> None:
    """Write the account to ``path`` atomically (a temporary file renamed over it)."""
    data = json.dumps(to_file_data(account)).encode("utf-8")
    directory = os.path.dirname(os.path.abspath(path))
    descriptor, temporary = tempfile.mkstemp(prefix=".simulator-state-", dir=directory)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
    account.dirty = False
