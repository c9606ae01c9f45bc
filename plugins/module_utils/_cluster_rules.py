# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a cluster keeps the same across its nodes and its runs: one expiry, one instance type; and the role's
settings that no argument spec can check.

A node that replaces another, or that a scale-up adds, inherits the cluster's expiry, so that reap ends the whole
cluster at once and not piece by piece. Capacity failover picks the instance type for the whole cluster: a cluster
of one A100 and two A10 would train at the pace of its slowest node, or not at all.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from ansible_collections.lambdalabs.cloud.plugins.module_utils._api import (
    EXPIRY_TAG,
    instance_type_name,
    natural_key,
    tag_of,
)
from ansible_collections.lambdalabs.cloud.plugins.module_utils._autostop import autostop_settings
from ansible_collections.lambdalabs.cloud.plugins.module_utils._validation import InvalidParameter, check_number

MAX_TTL_HOURS = 24 * 366
# A login name as useradd takes it.
LOGIN = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
EXPIRES_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def expires_at(ttl_hours: Any, now: float | None = None) -> str | None:
    """The expires-at tag for a node launched now: UTC, ``ttl_hours`` from now; None without a TTL."""
    if ttl_hours is None or ttl_hours == "":
        return None
    if isinstance(ttl_hours, str):
        try:
            ttl_hours = float(ttl_hours)
        except ValueError:
            raise InvalidParameter(
                "lambda_cluster_ttl_hours", f"must be a number of hours, got {ttl_hours!r}."
            ) from None
    check_number("lambda_cluster_ttl_hours", ttl_hours, above=0, maximum=MAX_TTL_HOURS)
    when = (time.time() if now is None else now) + float(ttl_hours) * 3600
    return datetime.fromtimestamp(when, timezone.utc).strftime(EXPIRES_FORMAT)


def cluster_expiry(
    members: list[Mapping[str, Any]], ttl_hours: Any, now: float | None = None
) -> tuple[str | None, str | None]:
    """The expires-at of the nodes this run launches, and a note when ``ttl_hours`` does not set it.

    The first provision sets the expiry from ``ttl_hours``; the nodes launched later inherit the members' (the
    earliest, should they differ). Lambda sets tags only at launch, so a running cluster's expiry cannot be moved:
    to extend it, provision the cluster anew."""
    fresh = expires_at(ttl_hours, now)  # checked even when the members' expiry wins
    if not members:
        return fresh, None
    found = sorted({tag for tag in (tag_of(m, EXPIRY_TAG) for m in members) if tag})
    if found:
        note = None
        if fresh is not None:
            note = (
                f"New nodes take the cluster's expiry, {found[0]}, not lambda_cluster_ttl_hours: Lambda sets tags only "
                "at launch, so the running nodes keep theirs, and the cluster ends at once."
            )
        return found[0], note
    if fresh is None:
        return None, None
    return None, (
        "The cluster's nodes have no expiry, so new nodes get none either (lambda_cluster_ttl_hours applies when the "
        "cluster is first provisioned; Lambda sets tags only at launch)."
    )


def choices(value: Any) -> list[str]:
    """A preference list as the role's variables give it: a list, or one comma-separated string."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return [str(item) for item in value or []]


def cluster_type(members: list[Mapping[str, Any]], launches: Any = None) -> str | None:
    """The cluster's instance type: its first member's (in name order), else the first this run launched."""
    for member in sorted(members or [], key=lambda m: natural_key(m.get("name"))):
        found = instance_type_name(member)
        if found:
            return found
    for launch in launches or []:
        placement = launch.get("placement") if isinstance(launch, Mapping) else None
        if isinstance(placement, Mapping) and placement.get("instance_type"):
            return str(placement["instance_type"])
    return None


def node_types(node: Mapping[str, Any], members: Any, launches: Any = None, allow_mixed: bool = False) -> Any:
    """The instance types a node may be launched as: the cluster's own, when the node's choices include it, unless
    mixed types are allowed. A node whose choices leave the cluster's type out keeps them (a mix on purpose)."""
    given = node.get("instance_type")
    chosen = None if allow_mixed else cluster_type(list(members or []), launches)
    return [chosen] if chosen is not None and chosen in choices(given) else given


def check_settings(
    ansible_user: Any = "ubuntu",
    launch_interval: Any = 0,
    wait_timeout: Any = 0,
    autostop_minutes: Any = None,
    autostop_action: Any = "terminate",
    autostop_threshold: Any = 10,
) -> None:
    """The role's own settings, before anything is launched: the nodes' login name, times that must not be
    negative (the argument spec checks only their types), and the autostop."""
    autostop_settings(autostop_minutes, autostop_action, autostop_threshold)
    if not isinstance(ansible_user, str) or not LOGIN.fullmatch(ansible_user):
        raise InvalidParameter(
            "lambda_cluster_ansible_user",
            f"lambda_cluster_ansible_user must be a login name (lowercase letters, digits, '_' and '-', 1-32 "
            f"characters; ubuntu on Lambda's images), got {ansible_user!r}.",
        )
    check_number("lambda_cluster_launch_interval", launch_interval, minimum=0, maximum=3600)
    check_number("lambda_cluster_wait_timeout", wait_timeout, minimum=0, maximum=7 * 86400)
