# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A node's network: the interface that holds an address."""

from __future__ import annotations

from ansible_collections.lambdalabs.cloud.plugins.module_utils._network import interface_for


def test_the_most_specific_network_that_holds_the_address_names_the_interface():
    output = "1: lo    inet 127.0.0.1/8 scope host lo\n2: eno1    inet 10.0.0.2/16 brd 10.0.255.255 scope global eno1\n"
    assert interface_for("10.0.0.2", output) == "eno1"
    assert interface_for("127.10.3.4", output) == "lo"
    assert interface_for("192.0.2.1", output) is None and interface_for("nope", output) is None
    wider = output + "3: br0    inet 10.0.0.9/8 scope global br0\n4: junk inet\n"
    assert interface_for("10.0.0.2", wider) == "eno1" and interface_for("10.9.0.1", wider) == "br0"
