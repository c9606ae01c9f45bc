# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the reap playbooks terminate, and what they say: instances whose ``expires-at`` tag has passed (reap), and
nodes whose GPUs stayed idle (reap_idle)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from ansible_collections.lambdalabs.cloud.plugins.module_utils._api import (
    EXPIRY_TAG,
    cents,
    dollars,
    instance_type_name,
    is_existing,
    price_cents_per_hour,
    region_name,
    tags_to_dict,
)
from ansible_collections.lambdalabs.cloud.plugins.module_utils._cost import parse_utc, spent_text, uptime
from ansible_collections.lambdalabs.cloud.plugins.module_utils._validation import (
    TAG_KEY_PATTERN,
    InvalidParameter,
    check_number,
    switch,
)


def reap_plan(instances: list[Mapping[str, Any]], tag: str = EXPIRY_TAG, now: float | None = None) -> dict[str, Any]:
    """The running instances whose ``tag`` has passed (expired), and those whose tag is no time (unreadable)."""
    current = datetime.fromtimestamp(time.time() if now is None else now, timezone.utc)
    expired, unreadable = [], []
    for instance in sorted(instances, key=lambda i: (str(i.get("name") or ""), str(i.get("id")))):
        if not is_existing(instance):
            continue
        tags = tags_to_dict(instance.get("tags"))
        if tag not in tags:
            continue
        when = parse_utc(tags[tag])
        entry = {
            "name": instance.get("name"),
            "id": instance.get("id"),
            "instance_type": instance_type_name(instance) or "-",
            "region": region_name(instance) or "-",
            "price_cents_per_hour": price_cents_per_hour(instance),
            "tag": tags[tag],
            "expires_at": when.strftime("%Y-%m-%dT%H:%M:%SZ") if when else None,
        }
        if when is None:
            unreadable.append(entry)
        elif when <= current:
            expired.append(entry)
    return {
        "now": current.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "tag": tag,
        "expired": expired,
        "unreadable": unreadable,
        "saved_cents_per_hour": sum(entry["price_cents_per_hour"] for entry in expired),
    }


def reap_report(plan: Mapping[str, Any], confirm: bool = False, check_mode: bool = False) -> list[str]:
    """The lines the reap playbook shows before it terminates anything."""
    expired, tag = plan["expired"], plan["tag"]
    counted = f"{len(expired)} expired instance(s), saving ${dollars(plan['saved_cents_per_hour'])} per hour"
    if not expired:
        lines = [f"Nothing to reap: no running instance has a {tag} tag before {plan['now']}."]
    elif confirm and check_mode:
        lines = [f"Check mode: would have terminated {counted}; nothing is terminated in check mode."]
    elif confirm:
        lines = [f"Terminating {counted}:"]
    else:
        lines = [f"Dry run: would have terminated {counted}. Run with -e reap_confirm=true to terminate them."]
    for node in expired:
        lines.append(
            f"{node['name']} ({node['id']}): {node['instance_type']} in {node['region']}, {tag}={node['tag']}, "
            f"${dollars(node['price_cents_per_hour'])} per hour"
        )
    for node in plan["unreadable"]:
        lines.append(
            f"Left alone: {node['name']} ({node['id']}) has {tag}={node['tag']}, which is not a valid UTC time such "
            "as 2025-06-01T18:00:00Z."
        )
    return lines


def idle_nodes(samples: Mapping[str, Any], threshold: float) -> dict[str, list[str]]:
    """Which nodes stayed below ``threshold`` percent on every GPU in every sample.

    ``samples`` maps a node to its samples (a list of per-GPU percentages for each), or to None when the node could
    not be sampled. Returns ``idle``, ``busy`` and ``unreachable`` node names, sorted.
    """
    result: dict[str, list[str]] = {"idle": [], "busy": [], "unreachable": []}
    for node, node_samples in sorted(samples.items()):
        if not node_samples or any(not sample for sample in node_samples):
            result["unreachable"].append(node)
        elif all(value < threshold for sample in node_samples for value in sample):
            result["idle"].append(node)
        else:
            result["busy"].append(node)
    return result


def reap_idle_plan(
    nodes: Mapping[str, Mapping[str, Any]], threshold: float, opt_out_tag: str = "reap-idle"
) -> dict[str, Any]:
    """Which nodes the reap_idle playbook terminates: those whose GPUs stayed below ``threshold`` in every sample.

    ``nodes`` maps each node to ``{"id", "name", "price_cents_per_hour", "tags", "samples"}``, ``samples`` being
    None when the node could not be sampled. A node tagged ``<opt_out_tag>: never`` is never terminated.
    """
    verdict = idle_nodes({name: node.get("samples") for name, node in nodes.items()}, threshold)
    opted_out = [name for name in verdict["idle"] if tags_to_dict(nodes[name].get("tags")).get(opt_out_tag) == "never"]
    idle = [
        {
            "name": name,
            "id": nodes[name].get("id"),
            "price_cents_per_hour": cents(nodes[name].get("price_cents_per_hour")),
            "peak": max((value for sample in nodes[name]["samples"] for value in sample), default=0),
        }
        for name in verdict["idle"]
        if name not in opted_out
    ]
    return {
        "threshold": threshold,
        "idle": idle,
        "busy": verdict["busy"],
        "unreachable": verdict["unreachable"],
        "opted_out": opted_out,
        "saved_cents_per_hour": sum(node["price_cents_per_hour"] for node in idle),
    }


def reap_idle_report(plan: Mapping[str, Any], confirm: bool = False, check_mode: bool = False) -> list[str]:
    """The lines the reap_idle playbook shows before it terminates anything."""
    idle, saved = plan["idle"], f"${dollars(plan['saved_cents_per_hour'])}"
    below = f"below {plan['threshold']:g}% GPU utilization in every sample"
    if not idle:
        lines = [f"Nothing to reap: no sampled node stayed {below}."]
    elif confirm and not check_mode:
        lines = [f"Terminating {len(idle)} idle node(s), saving {saved} per hour:"]
    else:
        what = "Check mode" if confirm else "Dry run"
        lines = [f"{what}: would have terminated {len(idle)} idle node(s), saving {saved} per hour."]
        if not confirm:
            lines[0] += " Run with -e reap_confirm=true to terminate them."
    for node in idle:
        lines.append(
            f"{node['name']} ({node['id']}): {below} (peak {node['peak']}%), "
            f"${dollars(node['price_cents_per_hour'])} per hour"
        )
    if plan["opted_out"]:
        lines.append(f"Idle but tagged reap-idle: never, left alone: {', '.join(plan['opted_out'])}.")
    if plan["unreachable"]:
        lines.append(f"Could not be sampled, left alone: {', '.join(plan['unreachable'])}.")
    return lines


def sample_interval(minutes: Any, samples: Any) -> float:
    """Seconds between two of ``samples`` utilization samples spread over ``minutes`` (the first at the start, the
    last at the end), to the millisecond."""
    return round(float(minutes) * 60 / max(int(samples) - 1, 1), 3)


def terminated_summary(
    terminated: Any, check_mode: bool = False, kind: str = "instance", now: float | None = None
) -> str:
    """What a reap playbook terminated: what that saves per hour and per day, and what those instances had cost so
    far (each ``item``'s ``price_cents_per_hour`` since the ``launched-at`` tag of the result's ``instance``), from
    the registered results of its terminate loop; only the results that changed count."""
    results = [result for result in (terminated or {}).get("results") or [] if result.get("changed")]
    now = time.time() if now is None else now
    saved, cost, unknown = 0, 0.0, 0
    for result in results:
        price = cents((result.get("item") or {}).get("price_cents_per_hour"))
        instance = result.get("instance")
        seconds = uptime(instance, now) if isinstance(instance, Mapping) else None
        saved += price
        if seconds is None or not price:
            unknown += 1
        else:
            cost += price * seconds / 3600
    figures = {"cost_cents": round(cost), "cost_unknown": unknown}
    verb = "Would have terminated" if check_mode else "Terminated"
    if not results:
        return f"{verb} 0 {kind}(s)."
    return (
        f"{verb} {len(results)} {kind}(s), saving ${dollars(saved)} per hour (${dollars(saved * 24)} per day); "
        f"{'they have' if check_mode else 'they had'} cost {spent_text(figures)}."
    )


def reap_options(confirm: Any = False, wait: Any = False, tag: Any = EXPIRY_TAG, threshold: Any = 10) -> dict[str, Any]:
    """The reap playbooks' variables, checked as a module's parameters are: ``confirm`` and ``wait`` strict switches
    (``maybe`` is refused, never read as a dry run), ``tag`` a tag key, ``threshold`` a percentage from 0 to 100.
    ``error`` is one line naming the variable, or None."""
    try:
        options = {
            "confirm": switch("reap_confirm", confirm),
            "wait": switch("reap_wait", wait),
            "tag": tag,
            "threshold": threshold,
        }
        if not isinstance(tag, str) or not TAG_KEY_PATTERN.fullmatch(tag):
            raise InvalidParameter("reap_tag", f"must be a tag key ({TAG_KEY_PATTERN.pattern}), got {tag!r}.")
        if isinstance(threshold, str):
            try:
                threshold = float(threshold.strip())
            except ValueError:
                raise InvalidParameter("reap_idle_threshold", f"must be a percentage, got {threshold!r}.") from None
        check_number("reap_idle_threshold", threshold, minimum=0, maximum=100)
        options["threshold"] = float(threshold)
    except InvalidParameter as error:
        return {"error": f"Invalid value for {error} Nothing was terminated."}
    return {"error": None, **options}
