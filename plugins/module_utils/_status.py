# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What is running, grouped by cluster, and what it has cost so far.

The API does not say when an instance was launched. The collection tags every launch with ``launched-at``; an
instance without the tag gets its launch time from the audit trail's launch event, and "unknown" only when neither
has it. Cost so far is the instance type's price times the time since the launch, to the cent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ansible_collections.lambdalabs.cloud.plugins.module_utils._api import (
    CLUSTER_TAG,
    EXPIRY_TAG,
    dollars,
    is_existing,
    natural_key,
    tag_of,
)
from ansible_collections.lambdalabs.cloud.plugins.module_utils._cluster import check_cluster_name, node_row
from ansible_collections.lambdalabs.cloud.plugins.module_utils._cost import (
    launch_time,
    parse_utc,
    spent,
    spent_text,
    utc_text,
)
from ansible_collections.lambdalabs.cloud.plugins.module_utils._wait import duration

UNKNOWN = "unknown"
# How far back the audit trail is read for the launch of an instance without a launched-at tag.
AUDIT_LOOKBACK_SECONDS = 90 * 86400
TOTALS = ("price_cents_per_hour", "cost_cents", "cost_unknown")
COLUMNS = ("CLUSTER", "NODE", "STATUS", "TYPE", "REGION", "IP", "UPTIME", "$/H", "COST")


def check_cluster(param: str, name: Any) -> str | None:
    """A cluster's name as the cluster role takes it, or None for every cluster."""
    if name is not None:
        check_cluster_name(name, param)
    return name


def untagged_ids(instances: list[Mapping[str, Any]], now: float, cluster: str | None = None) -> list[str]:
    """The running instances whose launch time no ``launched-at`` tag gives: the audit trail is read for them."""
    shown = [i for i in instances if is_existing(i) and cluster in (None, tag_of(i, CLUSTER_TAG))]
    return [str(instance.get("id")) for instance in shown if launch_time(instance, None, now)[0] is None]


def node_status(instance: Mapping[str, Any], audit_times: Mapping[str, float], now: float) -> dict[str, Any]:
    """One running instance as the status shows it: the cluster's row of it, with its uptime and cost so far."""
    launched, source = launch_time(instance, audit_times, now)
    row = node_row(instance)
    uptime = None if launched is None else max(0.0, now - launched)
    return {
        "name": str(row["name"] or ""),
        "id": str(row["id"]),
        "status": row["status"],
        "instance_type": row["instance_type"],
        "region": row["region"],
        "ip": None if row["ip"] is None else str(row["ip"]),
        "launched_at": None if launched is None else utc_text(launched),
        "launched_at_from": source,
        "uptime_seconds": None if uptime is None else round(uptime),
        "price_cents_per_hour": row["price_cents_per_hour"],
        "cost_cents": None if uptime is None else row["price_cents_per_hour"] * uptime / 3600,
        "expires_at": tag_of(instance, EXPIRY_TAG),
    }


def earliest_expiry(values: Any) -> str | None:
    """The earliest of the nodes' expires-at tags, compared as times; a tag that is no time only when none is."""
    given = sorted({str(value) for value in values if value})
    readable = [value for value in given if parse_utc(value) is not None]
    if readable:
        return min(readable, key=parse_utc)  # type: ignore[arg-type,return-value]
    return given[0] if given else None


def _order(node: Mapping[str, Any]) -> tuple[Any, ...]:
    return natural_key(node["name"]), node["id"]


def account_status(
    instances: list[Mapping[str, Any]],
    audit_times: Mapping[str, float],
    now: float,
    cluster: str | None = None,
) -> dict[str, Any]:
    """The running instances by cluster (their ``cluster`` tag), those of no cluster, and the totals; only the
    cluster ``cluster`` when it is given."""
    clusters: dict[str, list[Mapping[str, Any]]] = {}
    unclustered: list[Mapping[str, Any]] = []
    for instance in instances:
        if is_existing(instance):
            name = tag_of(instance, CLUSTER_TAG)
            (clusters.setdefault(name, []) if name else unclustered).append(instance)

    def shown(group: list[Mapping[str, Any]]) -> dict[str, Any]:
        """The group's nodes in natural order, and its count, price per hour and cost so far (without the nodes
        whose launch time is unknown, which ``cost_unknown`` counts)."""
        figures = spent(group, now, audit_times)
        nodes = sorted((node_status(instance, audit_times, now) for instance in group), key=_order)
        return {"nodes": nodes, "count": len(nodes)} | {key: figures[key] for key in TOTALS}

    known = sorted(clusters, key=natural_key)
    result_clusters = []
    for name in known:
        if cluster is None or name == cluster:
            entry = shown(clusters[name])
            expiry = earliest_expiry(node["expires_at"] for node in entry["nodes"])
            result_clusters.append({"name": name, "expires_at": expiry, **entry})
    strays = shown([] if cluster is not None else unclustered)
    every = [i for name in known if cluster is None or name == cluster for i in clusters[name]]
    every += [] if cluster is not None else unclustered
    figures = spent(every, now, audit_times)
    return {
        "cluster": cluster,
        "clusters": result_clusters,
        "unclustered": strays,
        "total": {"count": len(every)} | {key: figures[key] for key in TOTALS},
        "known_clusters": known,
    }


def _money(totals: Mapping[str, Any]) -> str:
    """``$2.58 per hour, $5.38 so far``, saying how many nodes the cost leaves out."""
    return f"${dollars(totals['price_cents_per_hour'])} per hour, {spent_text(totals)}"


def _expiry(expires_at: str | None, now: float) -> str:
    when = parse_utc(expires_at)
    if expires_at is None:
        return "no expiry"
    if when is None:
        return f"expires-at {expires_at!r} is not a time"
    left = when.timestamp() - now
    return f"expires {expires_at} (in {duration(left)})" if left > 0 else f"expired {expires_at}"


def status_table(status: Mapping[str, Any], now: float) -> list[str]:
    """The status as lines: one per node under a header, then a line per cluster, the instances of no cluster and
    the account."""
    rows = [COLUMNS]
    entries = [(entry["name"], entry["nodes"]) for entry in status["clusters"]]
    entries.append(("-", status["unclustered"]["nodes"]))
    for cluster, nodes in entries:
        for node in nodes:
            known = node["uptime_seconds"] is not None
            rows.append(
                (
                    cluster,
                    node["name"] or "-",
                    str(node["status"]),
                    str(node["instance_type"]),
                    str(node["region"]),
                    node["ip"] or "-",
                    duration(node["uptime_seconds"]) if known else UNKNOWN,
                    dollars(node["price_cents_per_hour"]),
                    dollars(node["cost_cents"]) if known else UNKNOWN,
                )
            )
    lines = []
    if len(rows) > 1:
        widths = [max(len(row[index]) for row in rows) for index in range(len(COLUMNS))]
        lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    for entry in status["clusters"]:
        lines.append(
            f"Cluster {entry['name']}: {entry['count']} node(s), {_money(entry)}, {_expiry(entry['expires_at'], now)}."
        )
    if status["cluster"] is None:
        strays = status["unclustered"]
        if strays["count"]:
            lines.append(f"In no cluster: {strays['count']} instance(s), {_money(strays)}.")
        lines.append(f"Account: {status['total']['count']} running instance(s), {_money(status['total'])}.")
    elif not status["clusters"]:
        known = ", ".join(status["known_clusters"]) or "none"
        lines.append(f"No cluster named {status['cluster']} is running. Running clusters: {known}.")
    return lines
