# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Parsing of the request bodies and parameters that need more than the generic checks."""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sim_catalogue import REGIONS
from sim_validation import (
    check_keys,
    expect_object,
    field_name,
    get_int,
    get_list,
    get_str,
    get_str_list,
    invalid,
    require_str,
    type_name,
)

HOSTNAME_PATTERN = r"^[a-z0-9][0-9a-z-]{0,62}$"
TAG_KEY_PATTERN = r"^[a-z][a-z0-9-:]+$"
MOUNT_POINT_PATTERN = r"^(/home|/lambda/nfs|/data)[//a-zA-Z0-9-]*$"
FILESYSTEM_NAME_PATTERN = r"^[a-zA-Z]+[0-9a-zA-Z-]*$"
USER_DATA_MAX_BYTES = 1024 * 1024
PROTOCOLS = ("tcp", "udp", "icmp", "all")
RULE_REQUIRED = ("protocol", "source_network", "description")


def parse_time(text: str, name: str) -> float:
    """A unix timestamp from an ISO 8601 query parameter, or a 400."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise invalid(f"Query parameter '{name}' ({text!r}) is not an ISO 8601 timestamp.") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()


def encode_page_token(index: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"next": index}).encode("ascii")).decode("ascii")


def decode_page_token(token: str) -> int:
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode("ascii") + b"=" * (-len(token) % 4)))
        index = data["next"]
        if isinstance(index, bool) or not isinstance(index, int) or index < 0:
            raise ValueError(index)
    except (ValueError, KeyError, TypeError, UnicodeError, binascii.Error):
        raise invalid(
            "Query parameter 'page_token' is not a valid page token.",
            "Pass the page_token of the previous answer unchanged, or omit it to start from the beginning.",
        ) from None
    return index


def parse_rules(value: Any, where: str) -> list[dict[str, Any]]:
    """Firewall rules as the API stores them; ``source_network`` without a mask gets ``/32``."""
    if not isinstance(value, list):
        raise invalid(f"Field '{where}' must be an array of firewall rules, not {type_name(value)}.")
    rules = []
    for index, raw in enumerate(value):
        name = field_name(where, index)
        rule = expect_object(raw, name)
        check_keys(rule, ("protocol", "port_range", "source_network", "description"), RULE_REQUIRED, name)
        protocol = require_str(rule, "protocol", name, choices=PROTOCOLS)
        network = require_str(rule, "source_network", name)
        description = require_str(rule, "description", name, max_length=128)
        result: dict[str, Any] = {"protocol": protocol}
        if protocol == "icmp":
            if "port_range" in rule:
                raise invalid(f"Field '{name}.port_range' is not allowed for the icmp protocol.")
        else:
            result["port_range"] = parse_port_range(rule.get("port_range"), f"{name}.port_range", protocol)
        result["source_network"] = parse_network(network, f"{name}.source_network")
        result["description"] = description
        rules.append(result)
    return rules


def parse_port_range(value: Any, where: str, protocol: str) -> list[int]:
    if value is None:
        raise invalid(f"Field '{where}' is required for the {protocol} protocol.", "Give [min, max], e.g. [22, 22].")
    valid = (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(port, int) and not isinstance(port, bool) and 1 <= port <= 65535 for port in value)
    )
    if not valid or value[0] > value[1]:
        raise invalid(
            f"Field '{where}' must be [min, max] with 1 <= min <= max <= 65535.",
            "To allow a single port, list it twice, e.g. [22, 22].",
        )
    return [value[0], value[1]]


def parse_network(value: str, where: str) -> str:
    text = value if "/" in value else f"{value}/32"
    try:
        return str(ipaddress.IPv4Network(text, strict=True))
    except ValueError:
        raise invalid(
            f"Field '{where}' ({value!r}) is not an IPv4 network in CIDR notation.",
            "Use an address such as 1.2.3.4 or 1.2.3.4/32, a network such as 1.2.3.0/24, or 0.0.0.0/0 for any address.",
        ) from None


def entries(obj: dict[str, Any], key: str, fields: tuple[str, ...]) -> Iterator[tuple[dict[str, Any], str]]:
    """Each entry of the optional array field ``key``, an object with all of ``fields`` and no other, and its name."""
    for index, raw in enumerate(get_list(obj, key) or []):
        where = field_name(key, index)
        entry = expect_object(raw, where)
        check_keys(entry, fields, fields, where)
        yield entry, where


@dataclass
class LaunchRequest:
    """A syntactically valid ``InstanceLaunchRequest``."""

    region_name: str
    instance_type_name: str
    ssh_key_names: list[str]
    file_system_names: list[str]
    file_system_mounts: list[tuple[str, str]]
    hostname: str | None
    name: str | None
    image: dict[str, str] | None
    user_data: str | None
    tags: list[dict[str, str]]
    firewall_rulesets: list[str]
    quantity: int

    FIELDS = (
        "region_name",
        "instance_type_name",
        "ssh_key_names",
        "file_system_names",
        "file_system_mounts",
        "hostname",
        "name",
        "image",
        "user_data",
        "tags",
        "firewall_rulesets",
        "quantity",
    )

    @classmethod
    def parse(cls, body: Any) -> LaunchRequest:
        obj = expect_object(body)
        check_keys(obj, cls.FIELDS, ("region_name", "instance_type_name", "ssh_key_names"))
        region = require_str(obj, "region_name", choices=REGIONS)
        instance_type = require_str(obj, "instance_type_name", min_length=1)
        ssh_key_names = get_str_list(obj, "ssh_key_names") or []
        if len(ssh_key_names) != 1:
            raise invalid(
                f"Field 'ssh_key_names' must list exactly one SSH key name (got {len(ssh_key_names)}).",
                "Currently, exactly one SSH key must be specified.",
            )
        file_system_names = get_str_list(obj, "file_system_names") or []
        user_data = get_str(obj, "user_data")
        if user_data is not None and len(user_data.encode("utf-8")) > USER_DATA_MAX_BYTES:
            raise invalid(
                f"Field 'user_data' must not exceed 1 MB ({USER_DATA_MAX_BYTES} bytes).",
                "Shrink the cloud-init user data, e.g. fetch large files from the instance instead.",
            )
        return cls(
            region_name=region,
            instance_type_name=instance_type,
            ssh_key_names=ssh_key_names,
            file_system_names=file_system_names,
            file_system_mounts=cls._parse_mounts(obj),
            hostname=get_str(obj, "hostname", min_length=1, max_length=63, pattern=HOSTNAME_PATTERN),
            name=get_str(obj, "name", max_length=64),
            image=cls._parse_image(obj),
            user_data=user_data,
            tags=cls._parse_tags(obj),
            firewall_rulesets=cls._parse_rulesets(obj),
            quantity=get_int(obj, "quantity", minimum=1, maximum=10) or 1,
        )

    @staticmethod
    def _parse_mounts(obj: dict[str, Any]) -> list[tuple[str, str]]:
        mounts = []
        for entry, where in entries(obj, "file_system_mounts", ("mount_point", "file_system_id")):
            point = require_str(entry, "mount_point", where, max_length=256, pattern=MOUNT_POINT_PATTERN)
            fs_id = require_str(entry, "file_system_id", where, min_length=1)
            mounts.append((fs_id, point))
        return mounts

    @staticmethod
    def _parse_image(obj: dict[str, Any]) -> dict[str, str] | None:
        if "image" not in obj:
            return None
        image = expect_object(obj["image"], "image")
        if len(image) != 1 or not set(image) <= {"id", "family"}:
            raise invalid(
                "Field 'image' must be an object with either an 'id' or a 'family'.",
                "Give exactly one of 'id' and 'family'; omit 'image' for the latest Lambda Stack image.",
            )
        key = next(iter(image))
        value = require_str(image, key, "image", min_length=1)
        return {key: value}

    @staticmethod
    def _parse_tags(obj: dict[str, Any]) -> list[dict[str, str]]:
        tags = []
        seen: set[str] = set()
        for entry, where in entries(obj, "tags", ("key", "value")):
            key = require_str(entry, "key", where, max_length=55, pattern=TAG_KEY_PATTERN)
            value = require_str(entry, "value", where, max_length=128)
            if key in seen:
                raise invalid(f"Tag key {key!r} is given more than once in 'tags'.")
            seen.add(key)
            tags.append({"key": key, "value": value})
        return tags

    @staticmethod
    def _parse_rulesets(obj: dict[str, Any]) -> list[str]:
        ids = [
            require_str(entry, "id", where, min_length=1) for entry, where in entries(obj, "firewall_rulesets", ("id",))
        ]
        return list(dict.fromkeys(ids))
