# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the cluster role says: its summary table, its warnings and its one-line failures.

Every sentence the role shows is written here, from ``lambda_cluster_result`` (``_cluster.cluster_result``), so
that the role only prints them. Check mode is worded one way: "Check mode:" first, then what would have happened.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from ansible_collections.lambdalabs.cloud.plugins.module_utils._api import cents, dollars
from ansible_collections.lambdalabs.cloud.plugins.module_utils._cluster import cluster_group
from ansible_collections.lambdalabs.cloud.plugins.module_utils._cost import parse_utc, spent_text


def group_note(name: str) -> str:
    """Which inventory group the nodes of cluster ``name`` are in, and why its spelling may differ from the name."""
    group = cluster_group(name)
    note = f"The nodes of cluster {name} are in the inventory group {group}"
    if group != f"lambda_cluster_{name}":
        note += " (characters other than letters, digits and _ become _ in group names)"
    return note + "."


def _listed(names: list[str]) -> str:
    return ", ".join(str(name) for name in names)


def _cost_until(expires_at: Any, cents_per_hour: Any, now: float | None) -> str:
    """``; until then it costs at most $X more``, from the expiry and the price; empty when either is unknown."""
    when = parse_utc(expires_at)
    if when is None or not cents(cents_per_hour):
        return ""
    hours = max(0.0, when.timestamp() - (time.time() if now is None else now)) / 3600
    return f"; until then it costs at most ${dollars(cents(cents_per_hour) * hours)} more"


def cluster_summary(result: Mapping[str, Any], check_mode: bool = False, now: float | None = None) -> list[str]:
    """The lines the role shows: the cluster, a table of its nodes, and what happened."""
    nodes = result.get("nodes") or []
    hourly = dollars(result.get("price_cents_per_hour"))
    if check_mode:
        lines = [f"Check mode: cluster {result['name']} would have {len(nodes)} node(s); the running ones cost "]
        lines[0] += f"${hourly} per hour."
    else:
        lines = [f"Cluster {result['name']}: {len(nodes)} node(s), ${hourly} per hour, inventory group "]
        lines[0] += f"{result['group']}."
    if nodes:
        width = max([4] + [len(str(n["name"])) for n in nodes])
        row = "{:<{w}}  {:<32}  {:<24}  {:<12}  {:<15}  {:>8}"
        lines.append(row.format("NAME", "ID", "TYPE", "REGION", "IP", "$/HOUR", w=width))
        for n in nodes:
            cost = "-" if n["price_cents_per_hour"] is None else dollars(n["price_cents_per_hour"])
            cells = (n["name"], n["id"] or "(to launch)", n["instance_type"] or "-", n["region"] or "-")
            lines.append(row.format(*cells, n["ip"] or "-", cost, w=width))
    verb = "Would have launched" if check_mode else "Launched"
    if result.get("launched"):
        lines.append(f"{verb}: {', '.join(result['launched'])}.")
    if result.get("recovered"):
        lines.append(
            f"Of these, launched though the API's answer was unclear, and found by name (not launched twice): "
            f"{', '.join(result['recovered'])}."
        )
    if result.get("terminated"):
        lines.append(
            f"{'Would have terminated' if check_mode else 'Terminated'} (beyond the wanted nodes): "
            f"{', '.join(result['terminated'])}, saving ${dollars(result.get('saved_cents_per_hour'))} per hour."
        )
    for move in result.get("failover") or []:
        lines.append(f"Capacity failover for {move['name']}: {move['change']}.")
    if result.get("extra"):
        lines.append(
            f"Beyond lambda_cluster_nodes, left running outside the cluster's group and this summary: "
            f"{', '.join(result['extra'])}, ${dollars(result.get('extra_cents_per_hour'))} per hour; "
            "lambda_cluster_remove_extra=true terminates them."
        )
    if result.get("expires_at"):
        until = _cost_until(result.get("expires_at"), result.get("price_cents_per_hour"), now)
        lines.append(f"The cluster expires at {result['expires_at']}: lambdalabs.cloud.reap terminates it then{until}.")
    if result.get("expiry_note"):
        lines.append(result["expiry_note"])
    failure = result.get("failed_launch")
    if failure:
        lines.append(f"Launch failed for {failure['name']}: {failure['msg']}")
        if result.get("not_launched"):
            lines.append(
                f"Not launched, as the role stops at the first failed launch: {', '.join(result['not_launched'])}."
            )
    if result.get("unhealthy"):
        lines.append(f"Warning: unhealthy, not waited for: {', '.join(result['unhealthy'])}.")
    return lines


def removal_summary(result: Mapping[str, Any], check_mode: bool = False) -> str:
    """The sentence the role shows after it removed a cluster (``lambda_cluster_result`` of state absent)."""
    removed = list(result.get("terminated") or [])
    if not removed:
        return f"Cluster {result.get('name')} has no nodes; nothing to terminate."
    verb = "Would have terminated" if check_mode else "Terminated"
    hourly = cents(result.get("saved_cents_per_hour"))
    line = (
        f"{verb} {len(removed)} node(s) of cluster {result.get('name')} ({', '.join(removed)}), which cost "
        f"${dollars(hourly)} per hour (${dollars(hourly * 24)} per day)"
    )
    spent = result.get("removed_spent")
    if isinstance(spent, Mapping):
        line += f" and {'have' if check_mode else 'had'} cost {spent_text(spent)}"
    return line + "."


def unhealthy_warning(result: Mapping[str, Any]) -> str | None:
    """The warning about nodes that are unhealthy (not waited for, and left as they are), or None."""
    unhealthy = list(result.get("unhealthy") or [])
    if not unhealthy:
        return None
    one = len(unhealthy) == 1
    return (
        f"Warning: {_listed(unhealthy)} of cluster {result.get('name')} {'is' if one else 'are'} unhealthy: not "
        f"waited for, and left as {'it is' if one else 'they are'}. Restart such a node (lambdalabs.cloud."
        "lambda_instance, state=restarted), or terminate it and run the role again to replace it."
    )


def launch_failure(result: Mapping[str, Any], check_mode: bool = False) -> str | None:
    """The role's one-line failure when a launch failed: what failed, what was not launched, what is left running
    (so that nobody believes nothing bills), and what to do. None when every launch succeeded."""
    failure = result.get("failed_launch")
    if not failure:
        return None
    line = f"Launching node {failure['name']} of cluster {result.get('name')} failed: {failure['msg']}"
    if result.get("not_launched"):
        line += f" No further node was launched ({_listed(result['not_launched'])})."
    if check_mode:
        line += " Check mode: nothing was launched."
    elif result.get("launched"):
        line += f" Launched before the failure, and left running: {_listed(result['launched'])}."
    else:
        line += " Nothing was launched."
    return line + " Fix the cause and run the role again: it launches only the missing nodes."
