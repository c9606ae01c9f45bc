# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Whether the node fabric (``--nodes``) can run here, and if not, why, in one line.

Standard library only and free of the simulator's other modules, so that the test client
imports it as ``tests.simulator.fabric_check`` and the simulator as ``fabric_check``.
"""

from __future__ import annotations

import errno
import os
import shutil
import socket
import subprocess
import sys

SSHD = "/usr/sbin/sshd"
SUDO = "/usr/bin/sudo"
INSTALL_HINT = "run tests/install-system-deps.sh as root (make system-deps)"
# An address of the public node range that no simulator hands out (the last of its last block).
PROBE_ADDRESS = "127.18.255.254"

# Inside a throwaway mount namespace: a tmpfs, and an overlay with a host directory as its lower layer.
# (mount -n: libmount would otherwise create its utab directory in the machine's /run.)
_PROBE_SCRIPT = (
    "set -e; mount -n -t tmpfs probe /mnt; mkdir /mnt/upper /mnt/work /mnt/merged; "
    "mount -n -t overlay probe -o lowerdir=/etc,upperdir=/mnt/upper,workdir=/mnt/work /mnt/merged; "
    "hostname probe"
)


def fabric_unavailable() -> str | None:
    """None when ``--nodes`` can work here, else the reason in one line."""
    if not sys.platform.startswith("linux"):
        return f"the node fabric needs Linux (namespaces and overlay mounts); this is {sys.platform}"
    if os.geteuid() != 0:
        return "the node fabric needs root (it mounts file systems and creates namespaces); run as root"
    for path, package in ((SSHD, "openssh-server"), (SUDO, "sudo")):
        if not os.access(path, os.X_OK):
            return f"the node fabric needs {path} (Debian package {package}); {INSTALL_HINT}"
    for tool in ("unshare", "ssh-keygen"):
        if shutil.which(tool) is None:
            return f"the node fabric needs the {tool} command, which is not on PATH"
    return _probe_namespaces() or _probe_port()


def _probe_namespaces() -> str | None:
    command = ["unshare", "--mount", "--uts", "--ipc", "--pid", "--fork", "--kill-child", "--propagation", "private"]
    try:
        result = subprocess.run(
            [*command, "sh", "-c", _PROBE_SCRIPT], capture_output=True, text=True, timeout=20, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"the node fabric cannot create namespaces here: {error}"
    if result.returncode != 0:
        detail = " ".join((result.stderr or result.stdout).split()) or f"exit status {result.returncode}"
        return f"the node fabric cannot create namespaces and overlay mounts here: {detail}"
    return None


def _probe_port() -> str | None:
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((PROBE_ADDRESS, 22))
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            return (
                "port 22 is taken on every loopback address (a host sshd listening on all addresses?); "
                "the nodes need it on their own addresses"
            )
        return f"cannot bind {PROBE_ADDRESS}:22 for the nodes: {error.strerror}"
    finally:
        probe.close()
    return None


if __name__ == "__main__":
    reason = fabric_unavailable()
    print(reason or "the node fabric can run here")
    sys.exit(2 if reason else 0)


def machine_memory_mib() -> tuple[int, int]:
    """The machine's memory and how much of it is available (``MemTotal``, ``MemAvailable``), in MiB."""
    values = {}
    with open("/proc/meminfo", encoding="ascii") as meminfo:
        for line in meminfo:
            name, _sep, rest = line.partition(":")
            if name in ("MemTotal", "MemAvailable"):
                values[name] = int(rest.split()[0]) // 1024
    return values["MemTotal"], values.get("MemAvailable", values["MemTotal"])
