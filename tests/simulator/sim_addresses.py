# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Instance addresses: all in 127.0.0.0/8, unique per instance and across simulators running at once.

An instance gets a public-looking ``127.18.B.H`` and the private-looking ``127.10.B.H`` with the
same B and H. A simulator claims blocks (values of B) by binding a UDP socket to ``127.18.B.0``
on :data:`CLAIM_PORT`; a second simulator's bind fails, so it claims another block. The claim
lasts as long as the socket, so it ends with the process, however the process ends. Where those
addresses cannot be bound (loopback being only 127.0.0.1, outside Linux), blocks are taken
unclaimed. With ``check_port`` (the node fabric), an address whose port 22 is taken is skipped.

As on Lambda Cloud, a freed address is handed out again: each block gives its lowest free address first, so the
next instance often gets the address of one just terminated (with a new host key: every node makes its own).
"""

from __future__ import annotations

import errno
import random
import socket

PUBLIC_PREFIX = "127.18"
PRIVATE_PREFIX = "127.10"
CLAIM_PORT = 65022
BLOCKS = 256
HOSTS = range(1, 255)


def private_for(public_ip: str) -> str | None:
    """The private address paired with a public one of this pool."""
    if public_ip.startswith(PUBLIC_PREFIX + "."):
        return PRIVATE_PREFIX + public_ip[len(PUBLIC_PREFIX) :]
    return None


class AddressPool:
    """Hands out (public, private) address pairs; see the module documentation."""

    def __init__(self, check_port: int | None = None) -> None:
        self.check_port = check_port
        self.blocks: dict[int, socket.socket | None] = {}
        self.used: set[str] = set()
        self._random = random.Random()

    def allocate(self) -> tuple[str, str]:
        for block in self.blocks:
            found = self._free_host(block)
            if found:
                return found
        candidates = [block for block in range(BLOCKS - 1) if block not in self.blocks]
        self._random.shuffle(candidates)
        for block in candidates:
            if self._claim(block):
                found = self._free_host(block)
                if found:
                    return found
        raise RuntimeError("no free loopback address left for an instance")

    def mark_used(self, public_ip: str) -> None:
        """An address given out earlier (a loaded state file): never hand it out again while in use."""
        self.used.add(public_ip)

    def release(self, public_ip: str | None) -> None:
        if public_ip:
            self.used.discard(public_ip)

    def release_all(self) -> None:
        self.used.clear()

    def close(self) -> None:
        for claim in self.blocks.values():
            if claim is not None:
                claim.close()
        self.blocks.clear()

    # ------------------------------------------------------------------ internals

    def _claim(self, block: int) -> bool:
        claim = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            claim.bind((f"{PUBLIC_PREFIX}.{block}.0", CLAIM_PORT))
        except OSError as error:
            claim.close()
            if error.errno != errno.EADDRNOTAVAIL:
                return False  # another simulator holds this block
            self.blocks[block] = None
            return True
        self.blocks[block] = claim
        return True

    def _free_host(self, block: int) -> tuple[str, str] | None:
        for host in HOSTS:
            public_ip = f"{PUBLIC_PREFIX}.{block}.{host}"
            private_ip = f"{PRIVATE_PREFIX}.{block}.{host}"
            if public_ip in self.used or not self._port_free(public_ip) or not self._port_free(private_ip):
                continue
            self.used.add(public_ip)
            return public_ip, private_ip
        return None

    def _port_free(self, address: str) -> bool:
        if self.check_port is None:
            return True
        probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((address, self.check_port))
        except OSError:
            return False
        finally:
            probe.close()
        return True
