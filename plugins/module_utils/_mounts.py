# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A GPU node's file systems: where they should be mounted, the node's mount table, and what is not mounted."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any


def mount_plan(names: Any, mounts: Any, root: str = "/lambda/nfs") -> dict[str, Any]:
    """Where the file systems of an instance should be mounted.

    Every mount point the instance reports must be mounted. File systems without a reported mount point (more
    names than mounts) are mounted at ``<root>/<name>``; which names those are cannot be told from the ids, so at
    least that many of the ``<root>/<name>`` paths (of names whose path is not reported) must be mounted.
    """
    names = list(dict.fromkeys(names or []))
    mounts = list(mounts or [])
    reported = list(
        dict.fromkeys(m.get("mount_point") for m in mounts if isinstance(m, Mapping) and m.get("mount_point"))
    )
    defaults = [point for point in dict.fromkeys(f"{root}/{name}" for name in names) if point not in reported]
    needed = max(len(names) - len(mounts), 0)
    return {
        "reported": reported,
        "defaults": defaults,
        "default_needed": needed,
        "paths": reported + (defaults if needed else []),
    }


def mount_problem(plan: Mapping[str, Any], mounted: Any) -> str | None:
    """What is not mounted, in one sentence; None when everything is. ``mounted`` lists the paths found mounted."""
    found = set(mounted or [])
    missing = [point for point in plan["reported"] if point not in found]
    present_defaults = [point for point in plan["defaults"] if point in found]
    parts = []
    if missing:
        parts.append(f"the instance reports file systems at {', '.join(missing)}, but nothing is mounted there.")
    if len(present_defaults) < plan["default_needed"]:
        have = f"only {', '.join(present_defaults)} is" if present_defaults else "none is"
        parts.append(
            f"{plan['default_needed']} of its file systems have no reported mount point, so {plan['default_needed']} "
            f"of {', '.join(plan['defaults'])} should be mounted, but {have}."
        )
    return " ".join(parts) or None


def parse_mountinfo(text: str) -> set[str]:
    """Every mount point in the text of /proc/self/mountinfo (octal escapes such as ``\\040`` decoded)."""
    points = set()
    for line in str(text or "").splitlines():
        fields = line.split()
        if len(fields) > 4:
            points.add(re.sub(r"\\([0-7]{3})", lambda match: chr(int(match.group(1), 8)), fields[4]))
    return points


def mount_facts(
    names: Any, mounts: Any, root: str, mountinfo: str | None, ismount: Callable[[str], bool] | None = None
) -> dict[str, Any]:
    """The ``mounts`` of gpu_node_info's result: the plan, the paths of it that are mounted, and the problem.

    Without a mount table (``mountinfo`` None), ``ismount`` tells whether a path is mounted."""
    plan = mount_plan(names, mounts, root.rstrip("/"))
    points = parse_mountinfo(mountinfo) if mountinfo is not None else None
    mounted = [
        path for path in plan["paths"] if (path in points if points is not None else bool(ismount and ismount(path)))
    ]
    return dict(plan, mounted=mounted, problem=mount_problem(plan, mounted))
