# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The simulated account: everything one API key sees, and the API operations on it.

Not thread-safe by itself; the server calls it while holding one lock. The operations of each resource family
are in their own module, as a mixin of :class:`sim_account_base.AccountBase` (which declares the data):

- sim_instances.py: instances, their lifecycle, instance types and images;
- sim_ssh_keys.py: SSH keys;
- sim_file_systems.py: file systems;
- sim_firewalls.py: the global firewall rules and the firewall rulesets;
- sim_account_base.py: the audit trail, which the others add to.

The control API's seeding is in sim_seeding.py, the state file in sim_state_file.py.
"""

from __future__ import annotations

import copy

from sim_account_base import Timing
from sim_addresses import AddressPool
from sim_catalogue import DEFAULT_CAPACITY, default_firewall_rules
from sim_file_systems import FileSystemOperations
from sim_firewalls import FirewallOperations
from sim_hooks import InstanceHooks
from sim_instances import InstanceOperations
from sim_ssh_keys import SshKeyOperations


class Account(InstanceOperations, SshKeyOperations, FileSystemOperations, FirewallOperations):
    """Everything one API key sees, plus the capacity of the simulated cloud."""

    def __init__(
        self, timing: Timing, hooks: InstanceHooks | None = None, addresses: AddressPool | None = None
    ) -> None:
        self.timing = timing
        self.hooks = hooks or InstanceHooks()
        self.addresses = addresses or AddressPool()
        self.dirty = False
        self._list_body = None
        self.reset()

    def reset(self) -> None:
        """An empty account with the default catalogue capacity and firewall rules."""
        self.hooks.reset()
        self.addresses.release_all()
        self.instances = {}
        self.pending = {}
        self.requested_hostnames = {}
        self.launch_addresses = {}
        self.ssh_keys = {}
        self.file_systems = {}
        self.firewall_rules = default_firewall_rules()
        self.rulesets = {}
        self.capacity = copy.deepcopy(DEFAULT_CAPACITY)
        self.events = []
        self.instances_changed()
