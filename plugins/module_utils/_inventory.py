# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The inventory plugin's pure logic: which instances become hosts, under which names, in which groups.

Nothing here talks to the API or to Ansible's inventory; the plugin feeds instances in and takes
names and group memberships out, so all of it is unit-tested without either.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ansible.module_utils.parsing.convert_bool import boolean

from ansible_collections.lambdalabs.cloud.plugins.module_utils._api import (
    INSTANCE_STATUSES,
    instance_type_name,
    region_name,
    tags_to_dict,
)
from ansible_collections.lambdalabs.cloud.plugins.module_utils._validation import (
    InvalidParameter,
    check_number,
    check_text,
    check_variable_prefix,
    control_characters,
    tag_value,
)

HOSTNAME_FIELDS = ("name", "hostname", "id", "ip", "private_ip")
# Names that Ansible gives a meaning of its own: they must never become host names as they are.
RESERVED_HOST_NAMES = frozenset({"all", "ungrouped", "localhost", "127.0.0.1", "::1"})
# Characters that turn a host name into a host pattern (lists, unions, negations, globs, ranges, regexes).
_PATTERN_CHARACTERS = re.compile(r"[\s,:!&*?\[\]]|^[~@]")
_GROUP_UNSAFE = re.compile(r"[^A-Za-z0-9_]")
LIST_OPTIONS = ("statuses", "regions", "instance_types", "names", "include_filters", "exclude_filters", "hostnames")
SETTINGS = (*LIST_OPTIONS, "tags", "connect_with", "hostvars_prefix", "request_timeout", "include_jupyter")
SETTINGS += ("use_extra_vars", "default_groups", "strict", "ssh_common_args")
BOOLEAN_OPTIONS = ("validate_certs", "include_jupyter", "default_groups", "strict", "cache", "use_extra_vars")


def check_raw_config(config: Mapping[str, Any], options: Iterable[str], plugin: str) -> None:
    """Options that do not exist, and values Ansible would convert silently: 5 as a prefix, 'perhaps' as a boolean."""
    unknown = sorted(set(config) - set(options) - {"plugin", "api_token"})
    if unknown:
        detail = f"there is no such option (the options are listed by ansible-doc -t inventory {plugin})."
        raise InvalidParameter(unknown[0], detail)
    for option in BOOLEAN_OPTIONS:
        if option in config:
            try:
                boolean(config[option], strict=True)
            except TypeError:
                raise InvalidParameter(option, f"expected a boolean (true or false), got {config[option]!r}.") from None
    if "hostvars_prefix" in config and not isinstance(config["hostvars_prefix"], str):
        raise InvalidParameter("hostvars_prefix", f"expected a string, got {config['hostvars_prefix']!r}.")


def inventory_settings(options: Mapping[str, Any], is_template: Callable[[str], bool]) -> dict[str, Any]:
    """The checked filter, naming and grouping settings of the plugin's options."""
    settings = dict(options)
    for option in LIST_OPTIONS:
        value = options.get(option) or []
        if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
            raise InvalidParameter(option, f"expected a list of non-empty strings, got {value!r}.")
        settings[option] = value
    unknown = sorted(set(settings["statuses"]) - set(INSTANCE_STATUSES))
    if unknown:
        raise InvalidParameter(
            "statuses", f"unknown status {', '.join(unknown)}; known: {', '.join(INSTANCE_STATUSES)}."
        )
    settings["hostnames"] = settings["hostnames"] or ["name", "id"]
    for entry in settings["hostnames"]:
        if entry not in HOSTNAME_FIELDS and not is_template(entry):
            raise InvalidParameter("hostnames", f"'{entry}' is none of {', '.join(HOSTNAME_FIELDS)} nor a template.")
    if options.get("connect_with") not in ("ip", "private_ip", "hostname"):
        raise InvalidParameter(
            "connect_with", f"'{options.get('connect_with')}' is not one of ip, private_ip, hostname."
        )
    tags = options.get("tags") or {}
    if not isinstance(tags, Mapping) or any(isinstance(v, (Mapping, list)) for v in tags.values()):
        raise InvalidParameter("tags", "expected a dictionary of tag keys to strings, numbers or null.")
    # Tag values are strings in the API; YAML true means 'true', as for lambda_instance.
    settings["tags"] = {str(k): None if v is None else tag_value(v) for k, v in tags.items()}
    check_variable_prefix("hostvars_prefix", options.get("hostvars_prefix"))
    check_text("ssh_common_args", options.get("ssh_common_args"), max_length=4096, allow_empty=True)
    check_number("request_timeout", options.get("request_timeout"), above=0, maximum=3600)
    for option in ("statuses", "regions", "instance_types"):
        settings[option] = frozenset(settings[option])
    settings["prefix"] = options.get("hostvars_prefix")
    return settings


def selected(instance: Mapping[str, Any], settings: Mapping[str, Any]) -> bool:
    """The plain (non-Jinja2) filters: statuses, regions, instance types, name globs and tags."""
    if settings["statuses"] and instance.get("status") not in settings["statuses"]:
        return False
    if settings["regions"] and region_name(instance) not in settings["regions"]:
        return False
    if settings["instance_types"] and instance_type_name(instance) not in settings["instance_types"]:
        return False
    if settings["names"]:
        name = instance.get("name") or ""
        if not any(fnmatch.fnmatchcase(name, pattern) for pattern in settings["names"]):
            return False
    if settings["tags"]:
        tags = tags_to_dict(instance.get("tags"))
        for key, value in settings["tags"].items():
            if key not in tags or (value is not None and tags[key] != value):
                return False
    return True


def safe_host_name(name: str, instance_id: str) -> tuple[str, str | None]:
    """A host name that Ansible takes literally, and why it was changed (None when it was not).

    Reserved names (all, ungrouped, localhost) get the short instance id appended; characters that would make
    the name a host pattern (spaces, commas, colons, '!', '&', '*', '?', brackets, a leading '~' or '@') and
    control characters become '_'.
    """
    cleaned = "".join("_" if control_characters(char) else char for char in name)
    cleaned = _PATTERN_CHARACTERS.sub("_", cleaned)
    if cleaned.lower() in RESERVED_HOST_NAMES:
        return f"{cleaned}_{instance_id[:8]}", f"'{name}' is a name Ansible reserves"
    if cleaned != name:
        return cleaned, f"{name!r} holds characters that Ansible reads as a host pattern"
    return name, None


def unique_host_names(hosts: list[tuple[str, Any]], ids: list[str]) -> tuple[list[str], list[str]]:
    """Give every instance its own host name: names shared by several get the short instance id appended.

    ``hosts`` are (name, anything) pairs and ``ids`` their instance ids, in the same order. Returns the final
    names, in order, and one warning per shared name. No host is ever merged or dropped.
    """
    owners: dict[str, list[int]] = {}
    for index, (name, _data) in enumerate(hosts):
        owners.setdefault(name, []).append(index)
    names = [name for name, _data in hosts]
    taken = {name for name, indexes in owners.items() if len(indexes) == 1}
    warnings = []
    for name, indexes in owners.items():
        if len(indexes) < 2:
            continue
        renamed = []
        for index in indexes:
            # The short id, else the whole id, else a counter: another instance may be named like any of them.
            candidates = [f"{name}_{ids[index][:8]}", f"{name}_{ids[index]}"]
            new_name = next((c for c in candidates if c not in taken), None)
            counter = 2
            while new_name is None or new_name in taken:
                new_name, counter = f"{name}_{ids[index]}_{counter}", counter + 1
            taken.add(new_name)
            names[index] = new_name
            renamed.append(new_name)
        warnings.append(f"{len(indexes)} instances would be named '{name}'; they are added as {', '.join(renamed)}.")
    return names, warnings


def group_name(kind: str, value: Any) -> str | None:
    """The default group of a region or an instance type, made safe for Ansible; None when the value is unknown."""
    if value is None or value == "":
        return None
    return _GROUP_UNSAFE.sub("_", f"lambda_{kind}_{value}")


def could_be_template(value: Any) -> bool:
    """Whether a string holds Jinja2 markers, anywhere in a nested value."""
    if isinstance(value, str):
        return any(marker in value for marker in ("{{", "{%", "{#"))
    if isinstance(value, Mapping):
        return any(could_be_template(k) or could_be_template(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(could_be_template(item) for item in value)
    return False
