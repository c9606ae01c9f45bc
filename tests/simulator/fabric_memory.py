# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A node's memory limit: a memory control group of its own, under the simulator's, where the machine lets the
simulator make one (cgroup v1's memory controller, or cgroup v2 with the memory controller enabled for children).

Every process of the node is in it (its init joins it before it starts), and what the node writes to its memory file
systems is charged to it too: a node that goes past the limit has its largest process ended by the kernel's OOM
killer, in the node, and the machine and the other nodes go on.
"""

from __future__ import annotations

import os
import re

CGROUP_ROOT = "/sys/fs/cgroup"
PREFIX = "lambda-node-"
# lambda-node-<the supervisor's pid>-<instance id>: a group whose supervisor is gone (killed) is stale.
GROUP_NAME = re.compile(rf"^{PREFIX}(?P<pid>\d+)-")


def own_memory_group() -> tuple[str, str] | None:
    """The directory of this process's memory control group and the name of its limit file, or None."""
    with open("/proc/self/cgroup", encoding="ascii") as groups:
        entries = [line.rstrip("\n").split(":", 2) for line in groups if line.count(":") >= 2]
    for _hierarchy, controllers, path in entries:
        if "memory" in controllers.split(","):
            return os.path.join(CGROUP_ROOT, "memory", path.lstrip("/")), "memory.limit_in_bytes"
    for hierarchy, controllers, path in entries:
        if hierarchy == "0" and not controllers:
            return os.path.join(CGROUP_ROOT, path.lstrip("/")), "memory.max"
    return None


def group_name(instance_id: str) -> str:
    """The name of a node's group, which says which supervisor made it."""
    return f"{PREFIX}{os.getpid()}-{os.path.basename(instance_id)}"


def remove_stale_groups() -> list[str]:
    """Remove the empty node groups whose supervisor is gone (a simulator killed with SIGKILL leaves them); the
    groups removed."""
    found = own_memory_group()
    if found is None or not os.path.isdir(found[0]):
        return []
    removed = []
    for name in os.listdir(found[0]):
        match = GROUP_NAME.match(name)
        if match is None or _alive(int(match["pid"])):
            continue
        try:
            os.rmdir(os.path.join(found[0], name))
            removed.append(name)
        except OSError:
            pass  # still has processes
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class MemoryLimit:
    """The control group ``name`` with a memory limit of ``mib`` MiB; ``reason`` says why there is none."""

    def __init__(self, name: str, mib: int) -> None:
        self.directory: str | None = None
        self.reason: str | None = None
        found = own_memory_group()
        if found is None:
            self.reason = "this machine has no memory control group for the simulator"
            return
        parent, limit_file = found
        directory = os.path.join(parent, name)
        try:
            os.mkdir(directory)
            with open(os.path.join(directory, limit_file), "w", encoding="ascii") as limit:
                limit.write(str(mib << 20))
        except OSError as error:
            self.reason = f"cannot make the memory control group {directory}: {error.strerror or error}"
            self.remove_directory(directory)
            return
        self.directory = directory

    def join(self) -> None:
        """Put the calling process (a node's first process, before it starts the node) in the group."""
        if self.directory is None:
            return
        fd = os.open(os.path.join(self.directory, "cgroup.procs"), os.O_WRONLY)
        try:
            os.write(fd, str(os.getpid()).encode())
        finally:
            os.close(fd)

    def remove(self) -> None:
        """Remove the group, once every process of the node has ended."""
        if self.directory is not None:
            self.remove_directory(self.directory)
            self.directory = None

    @staticmethod
    def remove_directory(directory: str) -> None:
        try:
            os.rmdir(directory)
        except OSError:
            pass  # never made, or already gone
