# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A GPU node's network, read on the node: which interface holds an address."""

from __future__ import annotations

import ipaddress


def interface_for(address: str, ip_output: str) -> str | None:
    """The interface whose IPv4 network holds ``address``, from ``ip -o -4 addr show``; the most specific wins."""
    try:
        wanted = ipaddress.IPv4Address(address)
    except ValueError:
        return None
    best: tuple[int, str] | None = None
    for line in ip_output.splitlines():
        parts = line.split()
        if "inet" not in parts:
            continue
        try:
            network = ipaddress.IPv4Interface(parts[parts.index("inet") + 1]).network
        except (ValueError, IndexError):
            continue
        if wanted in network and (best is None or network.prefixlen > best[0]):
            best = (network.prefixlen, parts[1].rstrip(":"))
    return best[1] if best else None
