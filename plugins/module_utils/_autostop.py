# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Autostop on the cluster itself: the cluster role's settings for the watchdog on the head node, and what it says.

The watchdog (``roles/cluster/files/lambda_autostop.py``) runs on the head node, the first node in natural order.
It samples every node's GPUs over the cluster's own SSH and, when all of them have stayed idle for
``lambda_cluster_autostop_minutes``, terminates the cluster through the API (``terminate``, with an API key written
on the head node) or only says so (``notify``). 0 removes the watchdog and the key; unset leaves the head node as
it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ansible_collections.lambdalabs.cloud.plugins.module_utils._api import dollars
from ansible_collections.lambdalabs.cloud.plugins.module_utils._client import DEFAULT_API_URL
from ansible_collections.lambdalabs.cloud.plugins.module_utils._validation import InvalidParameter, check_number

ACTIONS = ("terminate", "notify")
MAX_MINUTES = 7 * 24 * 60
# How often the watchdog samples the nodes.
INTERVAL_SECONDS = 30
CONFIG_DIR = "/etc/lambda-autostop"
KEY_FILE = f"{CONFIG_DIR}/api-key"
SSH_KEY = f"{CONFIG_DIR}/id_ed25519"
KNOWN_HOSTS = f"{CONFIG_DIR}/known_hosts"


def _whole(param: str, value: Any, minimum: float, maximum: float) -> float:
    """A number from ``-e`` (text) or YAML, checked: a boolean, NaN, infinity or nothing (null) is refused."""
    if value is None:
        raise InvalidParameter(param, "must be a number, got null.")
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise InvalidParameter(param, f"must be a number, got {value!r}.") from None
    check_number(param, value, minimum=minimum, maximum=maximum)
    return float(value)


def autostop_settings(minutes: Any, action: Any = "terminate", threshold: Any = 10) -> dict[str, Any] | None:
    """The autostop variables, checked: None when ``minutes`` is unset (the head node is left as it is)."""
    if minutes is None or minutes == "":
        return None
    checked = _whole("lambda_cluster_autostop_minutes", minutes, 0, MAX_MINUTES)
    if action not in ACTIONS:
        raise InvalidParameter(
            "lambda_cluster_autostop_action", f"must be one of {', '.join(ACTIONS)}, got {action!r}."
        )
    limit = _whole("lambda_cluster_autostop_threshold", threshold, 0, 100)
    if limit <= 0:
        raise InvalidParameter("lambda_cluster_autostop_threshold", "must be more than 0 (percent), got 0.")
    return {"minutes": checked, "action": action, "threshold": limit}


def _refusal(settings: Mapping[str, Any], nodes: list[Mapping[str, Any]], name: Any, has_key: bool) -> str | None:
    """Why the watchdog cannot be set up on these nodes, or None."""
    if not settings["minutes"]:
        return None
    reachable = [n for n in nodes if n.get("status") == "active" and (n.get("private_ip") or n.get("ip"))]
    waiting = [str(n.get("name")) for n in nodes if n not in reachable]
    if waiting:
        return (
            f"Autostop needs every node of cluster {name} active and reachable; {', '.join(waiting)} is not. Run the "
            "role again once it is."
        )
    if settings["action"] == "terminate" and not has_key:
        return (
            "lambda_cluster_autostop_action terminate writes the API key on the head node, but the role has none: set "
            "lambda_api_key or LAMBDA_API_KEY, or use lambda_cluster_autostop_action=notify."
        )
    names = [str(node.get("name")) for node in nodes]
    twice = sorted({node for node in names if names.count(node) > 1})
    if twice:
        return (
            f"Autostop needs each node of cluster {name} to have a name of its own; {', '.join(twice)} is the name of "
            "several. Terminate the extra node(s), then run the role again."
        )
    return None


def autostop_plan(
    result: Mapping[str, Any],
    minutes: Any,
    action: Any = "terminate",
    threshold: Any = 10,
    api_url: str = "",
    user: str = "ubuntu",
    has_key: bool = True,
) -> dict[str, Any]:
    """What the role does on the head node (``lambda_cluster_result``'s nodes): ``install`` the watchdog with its
    ``config``, ``remove`` it, or neither; ``error`` is one line naming the variable, or None."""
    plan: dict[str, Any] = {"install": False, "remove": False, "error": None, "head": None, "workers": []}
    try:
        settings = autostop_settings(minutes, action, threshold)
    except InvalidParameter as error:
        return plan | {"error": str(error)}
    nodes = [node for node in result.get("nodes") or [] if node.get("id")]
    if settings is None or not nodes:
        return plan
    refusal = _refusal(settings, nodes, result.get("name"), has_key)
    if refusal:
        return plan | {"error": refusal}
    name = result.get("name")
    head, *workers = nodes
    address = {str(node["id"]): node.get("private_ip") or node.get("ip") for node in nodes}
    plan |= {"head": head["name"], "workers": [node["name"] for node in workers]}
    if not settings["minutes"]:
        return plan | {"remove": True, "summary": f"Autostop of cluster {name}: removed from {head['name']}."}
    config = {
        "cluster": name,
        "minutes": settings["minutes"],
        "action": settings["action"],
        "threshold": settings["threshold"],
        "interval": INTERVAL_SECONDS,
        "api_url": api_url or DEFAULT_API_URL,
        "key_file": KEY_FILE,
        "ssh_key": SSH_KEY,
        "known_hosts": KNOWN_HOSTS,
        "user": user,
        "nodes": [
            {"id": node["id"], "name": node["name"], "address": address[str(node["id"])], "local": node is head}
            for node in nodes
        ],
    }
    return plan | {
        "install": True,
        "config": config,
        "addresses": [address[str(node["id"])] for node in workers],
        "summary": autostop_summary(config, result.get("price_cents_per_hour")),
    }


def autostop_summary(config: Mapping[str, Any], cents_per_hour: Any) -> str:
    """The sentence the role shows once the watchdog is set."""
    minutes = config["minutes"]
    idle = f"{minutes:g} min" if minutes < 120 else f"{minutes / 60:g} h"
    what = "terminates the cluster" if config["action"] == "terminate" else "writes a notice (action notify)"
    head = next(node["name"] for node in config["nodes"] if node["local"])
    most = (float(cents_per_hour or 0)) * (minutes * 60 + config["interval"]) / 3600
    line = (
        f"Autostop of cluster {config['cluster']}: when every GPU of its {len(config['nodes'])} node(s) has stayed "
        f"below {config['threshold']:g}% for {idle}, the watchdog on {head} {what}"
    )
    if config["action"] == "terminate":
        # The idle time and one round: about, since a round also takes its sampling time.
        line += f"; an idle cluster costs about ${dollars(most)} more before it stops"
    return line + f". Its log: /var/log/lambda-autostop.log on {head}."
