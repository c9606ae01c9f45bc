# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Firewall rules: their option spec, their checks, the form the API stores them in, and comparing them as sets."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any

from ansible_collections.lambdalabs.cloud.plugins.module_utils._validation import (
    InvalidParameter,
    check_number,
    check_text,
)

PROTOCOLS = ("tcp", "udp", "icmp", "all")
MAX_DESCRIPTION = 128
SSH_PORT = 22

RULE_OPTIONS: dict[str, Any] = {
    "protocol": {"type": "str", "required": True, "choices": list(PROTOCOLS)},
    "port": {"type": "int"},
    "port_range": {"type": "list", "elements": "int"},
    "source_network": {"type": "str", "required": True},
    "description": {"type": "str", "default": ""},
}
RULES_OPTION: dict[str, Any] = {
    "type": "list",
    "elements": "dict",
    "options": RULE_OPTIONS,
    "mutually_exclusive": [["port", "port_range"]],
}


def _ports(param: str, rule: Mapping[str, Any]) -> list[int] | None:
    protocol = rule["protocol"]
    port, port_range = rule.get("port"), rule.get("port_range")
    if protocol == "icmp":
        if port is not None or port_range:
            raise InvalidParameter(param, "icmp rules have no ports; leave port and port_range out.")
        return None
    if port is not None:
        port_range = [port, port]
    if not port_range:
        if protocol == "all":
            return [1, 65535]
        raise InvalidParameter(param, f"{protocol} rules need port (22) or port_range ([8000, 8100]).")
    if len(port_range) != 2:
        raise InvalidParameter(param, f"port_range is [min, max], got {list(port_range)}.")
    for value in port_range:
        check_number(param, value, minimum=1, maximum=65535)
    if port_range[0] > port_range[1]:
        raise InvalidParameter(param, f"port_range {list(port_range)} has its minimum above its maximum.")
    return [int(port_range[0]), int(port_range[1])]


def normalize_network(param: str, value: Any) -> str:
    """An IPv4 network in CIDR notation as the API stores it: an address alone is a /32."""
    check_text(param, value)
    text = value.strip() if "/" in value else f"{value.strip()}/32"
    try:
        return str(ipaddress.IPv4Network(text, strict=True))
    except ValueError:
        raise InvalidParameter(
            param,
            f"{value!r} is not an IPv4 network in CIDR notation, such as 203.0.113.4/32, 203.0.113.0/24 or "
            "0.0.0.0/0 (host bits must be zero).",
        ) from None


def normalize_rules(param: str, rules: Iterable[Mapping[str, Any]] | None) -> list[dict[str, Any]]:
    """Rules as the API stores them: port as port_range, /32 on bare addresses, icmp without ports."""
    result = []
    if isinstance(rules, (str, Mapping)):
        raise InvalidParameter(param, f"must be a list of rules, got {type(rules).__name__} {str(rules)[:60]!r}.")
    for index, rule in enumerate(rules or []):
        where = f"{param}[{index}]"
        if not isinstance(rule, Mapping):
            raise InvalidParameter(
                where, f"must be a rule (protocol, port or port_range, source_network), got {str(rule)[:60]!r}."
            )
        if rule.get("protocol") not in PROTOCOLS:
            raise InvalidParameter(f"{where}.protocol", f"must be one of {', '.join(PROTOCOLS)}.")
        check_text(f"{where}.description", rule.get("description") or "", max_length=MAX_DESCRIPTION, allow_empty=True)
        shaped: dict[str, Any] = {"protocol": rule["protocol"]}
        ports = _ports(f"{where}.port_range", rule)
        if ports is not None:
            shaped["port_range"] = ports
        shaped["source_network"] = normalize_network(f"{where}.source_network", rule.get("source_network"))
        shaped["description"] = rule.get("description") or ""
        result.append(shaped)
    return result


def rule_key(rule: Mapping[str, Any]) -> tuple[Any, ...]:
    ports = rule.get("port_range")
    return (
        rule.get("protocol"),
        tuple(ports) if ports else None,
        rule.get("source_network"),
        rule.get("description") or "",
    )


def same_rules(current: Iterable[Mapping[str, Any]], wanted: Iterable[Mapping[str, Any]]) -> bool:
    """Whether two rule lists allow the same traffic with the same descriptions, whatever their order."""
    return {rule_key(rule) for rule in current} == {rule_key(rule) for rule in wanted}


def sorted_rules(rules: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Rules in a stable order, so that a diff shows what changed and not how the API ordered them."""
    return [dict(rule) for rule in sorted(rules, key=lambda rule: repr(rule_key(rule)))]


def allows_ssh(rules: Iterable[Mapping[str, Any]]) -> bool:
    """Whether any rule lets TCP port 22 in, from anywhere at all."""
    for rule in rules:
        ports = rule.get("port_range") or [1, 65535]
        if rule.get("protocol") in ("tcp", "all") and ports[0] <= SSH_PORT <= ports[1]:
            return True
    return False
