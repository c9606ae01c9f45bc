# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""An instance as Ansible host variables: the ``lambda_*`` variables of the inventory plugin and the cluster role.

Both use :func:`instance_hostvars`, so a host has the same variables, of the same types, whether it came from
the dynamic inventory or from the cluster role's ``add_host``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from ansible_collections.lambdalabs.cloud.plugins.module_utils._api import JUPYTER_FIELDS, tags_to_dict

DEFAULT_PREFIX = "lambda_"
DEFAULT_USER = "ubuntu"
# Trust a node's host key the first time, then hold it to that key: Lambda hands out fresh nodes (new host keys) on
# addresses that earlier nodes had, so checking cannot be simply on (a prompt) or off (no protection at all).
DEFAULT_SSH_COMMON_ARGS = "-o StrictHostKeyChecking=accept-new"
CONNECT_FIELDS = ("ip", "private_ip", "hostname")
# Words that name a product line rather than the GPU model: "RTX A6000" is the A6000.
_VENDOR_WORDS = {"nvidia", "tesla", "rtx", "quadro", "geforce"}
_MEMORY = re.compile(r"(\d+(?:\.\d+)?)\s*(GB|GiB|TB)\b", re.IGNORECASE)

# The variables every host gets, without the prefix, in this order.
HOSTVAR_NAMES = (
    "id",
    "name",
    "status",
    "region",
    "region_description",
    "instance_type",
    "instance_type_description",
    "gpu_description",
    "gpu_model",
    "gpu_memory_gib",
    "price_cents_per_hour",
    "gpus",
    "vcpus",
    "memory_gib",
    "storage_gib",
    "hostname",
    "ip",
    "private_ip",
    "ssh_key_names",
    "file_system_names",
    "file_system_mounts",
    "firewall_ruleset_ids",
    "tags",
)


def gpu_model(gpu_description: Any) -> str | None:
    """The GPU model of a description: 'H100 (80 GB SXM5)' -> 'H100', 'RTX A6000 (48 GB)' -> 'A6000'."""
    if not isinstance(gpu_description, str):
        return None
    head = gpu_description.split("(", 1)[0].split()
    words = [word for word in head if word.lower() not in _VENDOR_WORDS]
    return " ".join(words) or None


def gpu_memory_gib(gpu_description: Any) -> int | None:
    """The memory of one GPU in GiB as the description states it: 'A100 (80 GB SXM4)' -> 80."""
    if not isinstance(gpu_description, str):
        return None
    match = _MEMORY.search(gpu_description)
    if not match:
        return None
    amount = float(match.group(1)) * (1024 if match.group(2).upper() == "TB" else 1)
    return int(amount)


def _mapping(value: Any, key: str = "name") -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {key: value}


def instance_hostvars(
    instance: Mapping[str, Any],
    prefix: str = DEFAULT_PREFIX,
    include_jupyter: bool = False,
    connect_with: str = "ip",
    user: str = DEFAULT_USER,
    ssh_common_args: str = DEFAULT_SSH_COMMON_ARGS,
) -> dict[str, Any]:
    """The host variables of one instance: ``<prefix>*``, ``ansible_user``, ``ansible_ssh_common_args`` (unless
    empty) and (when known) ``ansible_host``."""
    itype = _mapping(instance.get("instance_type"))
    specs = itype.get("specs") if isinstance(itype.get("specs"), Mapping) else {}
    region = _mapping(instance.get("region"))
    description = itype.get("gpu_description")
    values = {
        "id": instance.get("id"),
        "name": instance.get("name"),
        "status": instance.get("status"),
        "region": region.get("name"),
        "region_description": region.get("description"),
        "instance_type": itype.get("name"),
        "instance_type_description": itype.get("description"),
        "gpu_description": description,
        "gpu_model": gpu_model(description),
        "gpu_memory_gib": gpu_memory_gib(description),
        "price_cents_per_hour": itype.get("price_cents_per_hour"),
        "gpus": specs.get("gpus"),
        "vcpus": specs.get("vcpus"),
        "memory_gib": specs.get("memory_gib"),
        "storage_gib": specs.get("storage_gib"),
        "hostname": instance.get("hostname"),
        "ip": instance.get("ip"),
        "private_ip": instance.get("private_ip"),
        "ssh_key_names": list(instance.get("ssh_key_names") or []),
        "file_system_names": list(instance.get("file_system_names") or []),
        "file_system_mounts": list(instance.get("file_system_mounts") or []),
        "firewall_ruleset_ids": [
            r.get("id") for r in instance.get("firewall_rulesets") or [] if isinstance(r, Mapping) and r.get("id")
        ],
        "tags": tags_to_dict(instance.get("tags")),
    }
    if include_jupyter:
        values.update((key, instance[key]) for key in JUPYTER_FIELDS if key in instance)
    host_vars = {prefix + key: value for key, value in values.items()}
    host_vars["ansible_user"] = user
    if ssh_common_args:
        host_vars["ansible_ssh_common_args"] = ssh_common_args
    address = instance.get(connect_with)
    if address:
        host_vars["ansible_host"] = address
    return host_vars


def instance_addresses(instances: Iterable[Mapping[str, Any]]) -> list[str]:
    """Every address that ssh may have recorded a host key for (public and private IPs), each once: what to remove
    from known_hosts when the instances end, as Lambda gives their addresses to other nodes."""
    found = (instance.get(key) for instance in instances for key in ("ip", "private_ip"))
    return list(dict.fromkeys(address for address in found if isinstance(address, str) and address))
