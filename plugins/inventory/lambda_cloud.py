# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: lambda_cloud
short_description: Lambda Cloud GPU instances as an Ansible inventory
version_added: 0.1.0
description:
  - Reads the instances of a Lambda Cloud account and adds them as hosts, grouped by region and instance type.
  - One refresh makes one API request (C(GET /instances)), whatever the number of instances; a cache hit makes none.
  - The inventory file name must end in C(lambda_cloud.yml) or C(lambda_cloud.yaml).
author:
  - Lambda Cloud collection maintainers (@lambdalabs)
requirements:
  - requests
extends_documentation_fragment:
  - constructed
  - inventory_cache
options:
  plugin:
    description: Marks the file as a configuration of this plugin.
    required: true
    type: str
    choices: [lambdalabs.cloud.lambda_cloud]
  api_key:
    description:
      - The Lambda Cloud API key.
      - May be a template, for example a variable given with C(-e) or a lookup, and may be vault-encrypted.
        Variables given with C(-e), including a vault-encrypted vars file, can be used in this template.
      - The key is never written to the inventory cache.
    type: str
    aliases: [api_token]
    env:
      - name: LAMBDA_API_KEY
  api_url:
    description:
      - The base URL of the Lambda Cloud API, including the C(/api/v1) path.
      - Defaults to C(https://cloud.lambda.ai/api/v1).
    type: str
    env:
      - name: LAMBDA_API_URL
  validate_certs:
    description: Whether to verify the TLS certificate of O(api_url).
    type: bool
    default: true
  request_timeout:
    description: Seconds to wait for an answer to the HTTP request.
    type: float
    default: 30
  statuses:
    description:
      - Only instances in one of these states. An empty list means every state.
    type: list
    elements: str
    default: [active]
  regions:
    description: Only instances in one of these regions, for example V(us-east-1).
    type: list
    elements: str
    default: []
  instance_types:
    description: Only instances of one of these instance types, for example V(gpu_8x_h100_sxm5).
    type: list
    elements: str
    default: []
  names:
    description:
      - Only instances whose name matches one of these shell-style glob patterns, for example V(train-*).
    type: list
    elements: str
    default: []
  tags:
    description:
      - Only instances that carry every one of these tags with the given value.
      - A V(null) value requires the tag key with any value.
    type: dict
    default: {}
  include_filters:
    description:
      - Jinja2 conditions over the host variables (O(hostvars_prefix) included), without C({{ }}).
      - When given, a host is kept only when at least one condition is true.
      - A condition that cannot be evaluated counts as false, or fails when O(strict=true).
    type: list
    elements: str
    default: []
  exclude_filters:
    description:
      - Jinja2 conditions over the host variables, without C({{ }}).
      - A host for which any condition is true is left out. They apply after O(include_filters).
    type: list
    elements: str
    default: []
  hostnames:
    description:
      - How to name the hosts, as a list of preferences; the first one that gives a non-empty value is used.
      - Each entry is one of V(name), V(hostname), V(id), V(ip), V(private_ip), or a Jinja2 template over the
        host variables, for example V({{ lambda_name }}-{{ lambda_region }}).
      - When no entry gives a value, the instance id is used.
      - When two instances would get the same name, both get their short id appended (V(name_0920582c)) and a
        warning is shown. No host is ever merged or dropped.
    type: list
    elements: str
    default: [name, id]
  connect_with:
    description:
      - Which address goes into C(ansible_host). An instance without that address gets no C(ansible_host).
    type: str
    choices: [ip, private_ip, hostname]
    default: ip
  hostvars_prefix:
    description: The prefix of the host variables taken from the instance.
    type: str
    default: lambda_
  include_jupyter:
    description:
      - Whether to add C(jupyter_token) and C(jupyter_url) to the host variables and to the cache.
      - They are credentials, and inventories end up in logs and caches, so they are left out by default.
    type: bool
    default: false
  default_groups:
    description:
      - Whether to put every host in C(lambda), C(lambda_region_<region>) and C(lambda_type_<instance type>).
      - Group names are made safe for Ansible, for example C(lambda_region_us_east_1).
    type: bool
    default: true
notes:
  - "Host variables, with O(hostvars_prefix): C(id), C(name), C(status), C(region), C(region_description),
    C(instance_type), C(instance_type_description), C(gpu_description), C(price_cents_per_hour), C(gpus),
    C(vcpus), C(memory_gib), C(storage_gib), C(hostname), C(ip), C(private_ip), C(ssh_key_names),
    C(file_system_names), C(file_system_mounts), C(firewall_ruleset_ids), C(tags) (a dict), and
    C(jupyter_token) and C(jupyter_url) with O(include_jupyter=true)."
  - Every host gets C(ansible_user=ubuntu), the user of the Lambda images; O(compose) can override it.
  - O(keyed_groups) may be keyed by a number, for example the key C(lambda_gpus) with the prefix C(gpus) gives C(gpus_8).
  - The cache holds the instance list as the API returned it, without the jupyter fields unless
    O(include_jupyter=true). Filters, host names and groups are applied after the cache, so changing them needs
    no refresh. C(ansible-inventory --flush-cache) forces one.
"""

EXAMPLES = r"""
# lambda_cloud.yml: every active instance; the key comes from LAMBDA_API_KEY.
plugin: lambdalabs.cloud.lambda_cloud

# prod.lambda_cloud.yml: H100 training nodes, named by hostname, reached on the private network.
plugin: lambdalabs.cloud.lambda_cloud
api_key: "{{ vault_lambda_api_key }}"
statuses: [active, booting]
regions: [us-east-1, us-west-2]
names: ["train-*"]
tags:
  team: research
exclude_filters:
  - lambda_tags.get('drain') == 'true'
hostnames: [hostname, name, id]
connect_with: private_ip
keyed_groups:
  - key: lambda_gpus
    prefix: gpus
  - key: lambda_tags.team | default('none')
    prefix: team
groups:
  multi_gpu: lambda_gpus > 1
compose:
  ansible_user: "'root' if lambda_tags.get('image') == 'custom' else 'ubuntu'"
cache: true
cache_plugin: ansible.builtin.jsonfile
cache_connection: ~/.cache/lambda_cloud_inventory
cache_timeout: 600
"""

import fnmatch
from typing import Any, NoReturn

from ansible.errors import AnsibleError, AnsibleParserError, AnsibleUndefinedVariable
from ansible.plugins.inventory import BaseInventoryPlugin, Cacheable, Constructable

from ansible_collections.lambdalabs.cloud.plugins.module_utils._client import LambdaCloudError
from ansible_collections.lambdalabs.cloud.plugins.module_utils._module import client_from_options
from ansible_collections.lambdalabs.cloud.plugins.module_utils._resources import (
    INSTANCE_STATUSES,
    JUPYTER_FIELDS,
    instance_type_name,
    list_instances,
    region_name,
    tag_value,
    tags_to_dict,
    without_secrets,
)

if hasattr(BaseInventoryPlugin, "trusted_by_default"):
    # ansible-core 2.19 and later never template data that an inventory plugin did not mark as trusted.
    wrap_var = None
else:  # pragma: no cover - older ansible-core: values from the API must be marked unsafe
    from ansible.utils.unsafe_proxy import wrap_var

HOSTNAME_FIELDS = ("name", "hostname", "id", "ip", "private_ip")
DEFAULT_USER = "ubuntu"
CACHE_FORMAT = 1


class InventoryModule(BaseInventoryPlugin, Constructable, Cacheable):
    NAME = "lambdalabs.cloud.lambda_cloud"

    def verify_file(self, path: str) -> bool:
        return super().verify_file(path) and path.endswith(("lambda_cloud.yml", "lambda_cloud.yaml"))

    # ------------------------------------------------------------------ options
    def _fail(self, option: str, message: str) -> NoReturn:
        raise AnsibleParserError(f"Invalid value for the lambda_cloud inventory option '{option}': {message}")

    def _list_of_strings(self, option: str) -> list[str]:
        value = self.get_option(option) or []
        if not all(isinstance(item, str) and item for item in value):
            self._fail(option, f"expected a list of non-empty strings, got {value!r}.")
        return value

    def _settings(self) -> dict[str, Any]:
        """The validated filter, naming and grouping options."""
        statuses = self._list_of_strings("statuses")
        unknown = sorted(set(statuses) - set(INSTANCE_STATUSES))
        if unknown:
            self._fail("statuses", f"unknown status {', '.join(unknown)}; known: {', '.join(INSTANCE_STATUSES)}.")
        hostnames = self._list_of_strings("hostnames") or ["name", "id"]
        for entry in hostnames:
            if entry not in HOSTNAME_FIELDS and not self.templar.is_template(entry):
                self._fail(
                    "hostnames",
                    f"'{entry}' is neither one of {', '.join(HOSTNAME_FIELDS)} nor a Jinja2 template.",
                )
        connect_with = self.get_option("connect_with")
        if connect_with not in ("ip", "private_ip", "hostname"):
            self._fail("connect_with", f"'{connect_with}' is not one of ip, private_ip, hostname.")
        tags = self.get_option("tags") or {}
        for key, value in tags.items():
            if isinstance(value, (dict, list)):
                self._fail("tags", f"the value of tag '{key}' must be a string, a number or null.")
        prefix = self.get_option("hostvars_prefix")
        if prefix is None or not isinstance(prefix, str):
            self._fail("hostvars_prefix", "expected a string.")
        return {
            "statuses": frozenset(statuses),
            "regions": frozenset(self._list_of_strings("regions")),
            "instance_types": frozenset(self._list_of_strings("instance_types")),
            "names": self._list_of_strings("names"),
            # Tag values are strings in the API; YAML true means 'true', as for lambda_instance.
            "tags": {str(k): None if v is None else tag_value(v) for k, v in tags.items()},
            "include_filters": self._list_of_strings("include_filters"),
            "exclude_filters": self._list_of_strings("exclude_filters"),
            "hostnames": hostnames,
            "connect_with": connect_with,
            "prefix": prefix,
            "include_jupyter": self.get_option("include_jupyter"),
            "use_extra_vars": self.get_option("use_extra_vars"),
            "default_groups": self.get_option("default_groups"),
            "strict": self.get_option("strict"),
            "compose": self.get_option("compose"),
            "groups": self.get_option("groups"),
            "keyed_groups": self.get_option("keyed_groups"),
        }

    def _api_key(self) -> str | None:
        """The API key, rendered when it is a template; never part of any message."""
        key = self.get_option("api_key")
        if key is None:
            return None
        if self.templar.is_template(key):
            self.templar.available_variables = self._vars or {}
            try:
                key = self.templar.template(key)
            except Exception as error:  # pylint: disable=broad-exception-caught
                # Only an undefined variable is described: other messages could quote the rendered value.
                reason = str(error) if isinstance(error, AnsibleUndefinedVariable) else type(error).__name__
                raise AnsibleParserError(
                    f"The lambda_cloud inventory option 'api_key' is a template that could not be rendered "
                    f"({' '.join(reason.split())[:200]}). Define its variables, for example with -e, or -e @vars.yml "
                    "and --vault-password-file for a vault-encrypted file."
                ) from None
        return str(key).strip() or None

    # ------------------------------------------------------------------ source data
    def _fetch(self) -> list[dict[str, Any]]:
        """The instance list: exactly one API request."""
        options = {
            "api_key": self._api_key(),
            "api_url": self.get_option("api_url"),
            "validate_certs": self.get_option("validate_certs"),
            "request_timeout": self.get_option("request_timeout"),
        }
        try:
            client = client_from_options(options)
            try:
                instances = list_instances(client)
            finally:
                client.close()
        except LambdaCloudError as error:
            raise AnsibleParserError(f"lambda_cloud inventory: {error}") from None
        if not isinstance(instances, list):
            raise AnsibleParserError("lambda_cloud inventory: the API answered GET /instances without a list.")
        return instances

    def _instances(self, path: str, cache: bool) -> list[dict[str, Any]]:
        """The instance list from the cache when allowed and present, else from the API."""
        include_jupyter = self.get_option("include_jupyter")
        cache_key = self.get_cache_key(path)
        use_cache = self.get_option("cache")
        read_cache = use_cache and cache
        update_cache = use_cache and not cache
        if read_cache:
            try:
                entry = self._cache[cache_key]
            except KeyError:
                entry = None
            if (
                isinstance(entry, dict)
                and entry.get("format") == CACHE_FORMAT
                and (entry.get("jupyter") or not include_jupyter)
            ):
                return entry["instances"]
            update_cache = True
        instances = self._fetch()
        if not include_jupyter:
            instances = [without_secrets(item) for item in instances]
        if update_cache:
            self._cache[cache_key] = {"format": CACHE_FORMAT, "jupyter": include_jupyter, "instances": instances}
        return instances

    # ------------------------------------------------------------------ hosts
    @staticmethod
    def _selected(instance: dict[str, Any], settings: dict[str, Any]) -> bool:
        """The plain (non-Jinja2) filters."""
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

    @staticmethod
    def _host_vars(instance: dict[str, Any], settings: dict[str, Any]) -> dict[str, Any]:
        """The host variables of one instance, built with plain dict operations."""
        itype = instance.get("instance_type")
        itype = itype if isinstance(itype, dict) else {"name": itype}
        specs = itype.get("specs") or {}
        region = instance.get("region")
        region = region if isinstance(region, dict) else {"name": region}
        values = {
            "id": instance.get("id"),
            "name": instance.get("name"),
            "status": instance.get("status"),
            "region": region.get("name"),
            "region_description": region.get("description"),
            "instance_type": itype.get("name"),
            "instance_type_description": itype.get("description"),
            "gpu_description": itype.get("gpu_description"),
            "price_cents_per_hour": itype.get("price_cents_per_hour"),
            "gpus": specs.get("gpus"),
            "vcpus": specs.get("vcpus"),
            "memory_gib": specs.get("memory_gib"),
            "storage_gib": specs.get("storage_gib"),
            "hostname": instance.get("hostname"),
            "ip": instance.get("ip"),
            "private_ip": instance.get("private_ip"),
            "ssh_key_names": instance.get("ssh_key_names") or [],
            "file_system_names": instance.get("file_system_names") or [],
            "file_system_mounts": instance.get("file_system_mounts") or [],
            "firewall_ruleset_ids": [r.get("id") for r in instance.get("firewall_rulesets") or []],
            "tags": tags_to_dict(instance.get("tags")),
        }
        if settings["include_jupyter"]:
            values.update((key, instance[key]) for key in JUPYTER_FIELDS if key in instance)
        prefix = settings["prefix"]
        host_vars = {prefix + key: value for key, value in values.items()}
        host_vars["ansible_user"] = DEFAULT_USER
        address = instance.get(settings["connect_with"])
        if address:
            host_vars["ansible_host"] = address
        return host_vars

    def _condition(self, option: str, expression: str, host_vars: dict[str, Any], settings: dict[str, Any]) -> bool:
        """One include/exclude condition; false when it fails and strict is off."""
        try:
            return bool(self._compose(expression, host_vars))
        except Exception as error:  # pylint: disable=broad-exception-caught
            if settings["strict"]:
                instance_id = host_vars[settings["prefix"] + "id"]
                raise AnsibleParserError(
                    f"lambda_cloud inventory: could not evaluate {option} entry {expression!r} "
                    f"for instance {instance_id}: {error}"
                ) from None
            return False

    def _kept(self, host_vars: dict[str, Any], settings: dict[str, Any]) -> bool:
        """The include_filters (any must hold) and exclude_filters (none may hold)."""
        include = settings["include_filters"]
        if include and not any(self._condition("include_filters", c, host_vars, settings) for c in include):
            return False
        exclude = settings["exclude_filters"]
        return not any(self._condition("exclude_filters", c, host_vars, settings) for c in exclude)

    def _hostname(self, host_vars: dict[str, Any], settings: dict[str, Any]) -> str:
        """The first non-empty hostnames preference, else the instance id."""
        prefix = settings["prefix"]
        for entry in settings["hostnames"]:
            if entry in HOSTNAME_FIELDS:
                value = host_vars[prefix + entry]
            else:
                if settings["use_extra_vars"]:
                    self.templar.available_variables = {**(self._vars or {}), **host_vars}
                else:
                    self.templar.available_variables = host_vars
                try:
                    value = self.templar.template(entry)
                except Exception as error:  # pylint: disable=broad-exception-caught
                    if settings["strict"]:
                        raise AnsibleParserError(
                            f"lambda_cloud inventory: could not render hostnames entry {entry!r} for instance "
                            f"{host_vars[prefix + 'id']}: {error}"
                        ) from None
                    continue
            if value is not None and str(value).strip():
                return str(value).strip()
        return str(host_vars[prefix + "id"])

    def _unique_names(self, hosts: list[tuple[str, dict[str, Any]]], prefix: str) -> list[tuple[str, dict[str, Any]]]:
        """Give every instance its own inventory hostname; warn about each name that was shared."""
        owners: dict[str, list[int]] = {}
        for index, (name, _host_vars) in enumerate(hosts):
            owners.setdefault(name, []).append(index)
        shared = {name: indexes for name, indexes in owners.items() if len(indexes) > 1}
        if not shared:
            return hosts
        taken = {name for name, indexes in owners.items() if len(indexes) == 1}
        result = list(hosts)
        for name, indexes in shared.items():
            renamed = []
            for index in indexes:
                host_vars = hosts[index][1]
                instance_id = str(host_vars[prefix + "id"])
                new_name = f"{name}_{instance_id[:8]}"
                if new_name in taken:
                    new_name = f"{name}_{instance_id}"
                taken.add(new_name)
                result[index] = (new_name, host_vars)
                renamed.append(new_name)
            self.display.warning(
                f"lambda_cloud inventory: {len(indexes)} instances would be named '{name}'; "
                f"they are added as {', '.join(renamed)}."
            )
        return result

    def _populate(self, instances: list[dict[str, Any]], settings: dict[str, Any]) -> None:
        prefix = settings["prefix"]
        jinja_filters = settings["include_filters"] or settings["exclude_filters"]
        hosts = []
        for instance in instances:
            if not isinstance(instance, dict) or not self._selected(instance, settings):
                continue
            host_vars = self._host_vars(instance, settings)
            if jinja_filters and not self._kept(host_vars, settings):
                continue
            hosts.append((self._hostname(host_vars, settings), host_vars))
        hosts = self._unique_names(hosts, prefix)

        inventory = self.inventory
        strict = settings["strict"]
        compose, groups, keyed_groups = settings["compose"], settings["groups"], settings["keyed_groups"]
        safe_names: dict[str, str] = {}

        def group_of(kind: str, value: Any) -> str:
            raw = f"lambda_{kind}_{value}"
            if raw not in safe_names:
                safe_names[raw] = inventory.add_group(self._sanitize_group_name(raw))
            return safe_names[raw]

        if settings["default_groups"]:
            inventory.add_group("lambda")
        for name, host_vars in hosts:
            if settings["default_groups"]:
                inventory.add_host(name, group="lambda")
                inventory.add_host(name, group=group_of("region", host_vars[prefix + "region"]))
                inventory.add_host(name, group=group_of("type", host_vars[prefix + "instance_type"]))
            else:
                inventory.add_host(name)
            for key, value in host_vars.items():
                inventory.set_variable(name, key, value if wrap_var is None else wrap_var(value))
            if compose:
                self._set_composite_vars(compose, host_vars, name, strict=strict)
            if groups:
                self._add_host_to_composed_groups(groups, host_vars, name, strict=strict)
            if keyed_groups:
                self._add_host_to_keyed_groups(keyed_groups, host_vars, name, strict=strict)

    # ------------------------------------------------------------------ constructed
    def _add_host_to_keyed_groups(self, keys, variables, host, strict=False, fetch_hostvars=True):
        self._keying = True
        try:
            super()._add_host_to_keyed_groups(keys, variables, host, strict=strict, fetch_hostvars=fetch_hostvars)
        finally:
            self._keying = False

    def _compose(self, template, variables, *args, **kwargs):
        result = super()._compose(template, variables, *args, **kwargs)
        # A keyed group may be keyed by a number, such as the GPU count: gpus_8.
        if getattr(self, "_keying", False) and isinstance(result, (int, float)) and not isinstance(result, bool):
            return str(result)
        return result

    # ------------------------------------------------------------------ entry point
    def parse(self, inventory: Any, loader: Any, path: str, cache: bool = True) -> None:
        super().parse(inventory, loader, path, cache)
        self._read_config_data(path)
        settings = self._settings()
        instances = self._instances(path, cache)
        try:
            self._populate(instances, settings)
        except AnsibleParserError:
            raise
        except AnsibleError as error:
            raise AnsibleParserError(f"lambda_cloud inventory: {error}") from None
