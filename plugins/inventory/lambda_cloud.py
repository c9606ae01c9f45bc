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
extends_documentation_fragment:
  - constructed
  - inventory_cache
  - lambdalabs.cloud.lambda_cloud.inventory
options:
  plugin:
    description: Marks the file as a configuration of this plugin.
    required: true
    type: str
    choices: [lambdalabs.cloud.lambda_cloud]
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
      - A name that Ansible reserves (V(all), V(ungrouped), V(localhost)) gets the short id appended, and characters
        that would make a name a host pattern (spaces, V(,), V(:), V(!), V(&), V(*), V(?), brackets) become V(_),
        with a warning.
    type: list
    elements: str
    default: [name, id]
  connect_with:
    description:
      - Which address goes into C(ansible_host). An instance without that address gets no C(ansible_host).
    type: str
    choices: [ip, private_ip, hostname]
    default: ip
  ssh_common_args:
    description:
      - The C(ansible_ssh_common_args) of every host. The default trusts a node's host key the first time and refuses
        it when it changes afterwards; teardown and reap forget the keys of the nodes they end, as Lambda gives their
        addresses to new nodes. An empty string sets no C(ansible_ssh_common_args).
    type: str
    default: -o StrictHostKeyChecking=accept-new
  hostvars_prefix:
    description:
      - The prefix of the host variables taken from the instance. It must start a valid variable name (a letter or
        V(_), then letters, digits and V(_)).
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
      - Group names are made safe for Ansible, for example C(lambda_region_us_east_1). An instance without a region
        or type is in no region or type group.
    type: bool
    default: true
notes:
  - "Host variables, with O(hostvars_prefix): C(id), C(name), C(status), C(region), C(region_description),
    C(instance_type), C(instance_type_description), C(gpu_description), C(gpu_model) (for example V(H100)),
    C(gpu_memory_gib) (memory of one GPU), C(price_cents_per_hour), C(gpus),
    C(vcpus), C(memory_gib), C(storage_gib), C(hostname), C(ip), C(private_ip), C(ssh_key_names),
    C(file_system_names), C(file_system_mounts), C(firewall_ruleset_ids), C(tags) (a dict), and
    C(jupyter_token) and C(jupyter_url) with O(include_jupyter=true)."
  - Every host gets C(ansible_user=ubuntu), the user of the Lambda images, and O(ssh_common_args); O(compose) can
    override them.
  - O(keyed_groups) may be keyed by a number, so the key C(lambda_gpus) with the prefix C(gpus) gives C(gpus_8).
  - The cache holds the instance list as the API returned it, without the jupyter fields unless
    O(include_jupyter=true); the plugin makes its cache files readable by their owner only. Filters, host names and
    groups are applied after the cache, so changing them needs no refresh. Setting O(cache=false) for one run, or
    removing the cache file, forces one.
  - Values that could be templates (instance names or tags holding C({{), C({%) or C({#)) are marked unsafe, so
    they are never templated; every other value is plain, as C(ansible-inventory --list --export) shows it.
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
  - key: lambda_gpu_model
    prefix: gpu
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

import os
from typing import Any, NoReturn

from ansible.errors import AnsibleError, AnsibleParserError, AnsibleUndefinedVariable
from ansible.plugins.inventory import BaseInventoryPlugin, Cacheable, Constructable

from ansible_collections.lambdalabs.cloud.plugins.module_utils._api import list_instances, without_secrets
from ansible_collections.lambdalabs.cloud.plugins.module_utils._client import LambdaCloudError, client_from_options
from ansible_collections.lambdalabs.cloud.plugins.module_utils._hostvars import instance_hostvars
from ansible_collections.lambdalabs.cloud.plugins.module_utils._inventory import (
    HOSTNAME_FIELDS,
    SETTINGS,
    check_raw_config,
    could_be_template,
    group_name,
    inventory_settings,
    safe_host_name,
    selected,
    unique_host_names,
)
from ansible_collections.lambdalabs.cloud.plugins.module_utils._validation import InvalidParameter

try:  # ansible-core 2.19 and later: data from a plugin is never templated unless it is marked as trusted
    from ansible.template import trust_as_template

    wrap_var = None
    AnsibleNativeEnvironment = None
except ImportError:  # pragma: no cover - older ansible-core: values that could be templates are marked unsafe
    from ansible.template import AnsibleNativeEnvironment
    from ansible.utils.unsafe_proxy import wrap_var

    trust_as_template = None

CACHE_FORMAT = 1


def _plain(value: Any) -> Any:
    """Mark a value so that Ansible shows it as it is, and never templates anything that could be a template."""
    if could_be_template(value):
        return wrap_var(value) if wrap_var is not None else value
    if trust_as_template is None:
        return value
    if isinstance(value, str):
        return trust_as_template(value)
    if isinstance(value, dict):
        return {_plain(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def _untemplatable(host_vars: dict[str, Any]) -> dict[str, Any]:
    """The host's variables as the plugin's own templates (filters, hostnames, compose, groups) see them.

    From ansible-core 2.19 on, data from a plugin is never templated. Before, a value that could be a template is
    marked unsafe here, so that an expression which reads it never runs what an instance name or tag holds.
    """
    if wrap_var is None:
        return host_vars
    return {key: wrap_var(value) if could_be_template(value) else value for key, value in host_vars.items()}


class InventoryModule(BaseInventoryPlugin, Constructable, Cacheable):
    NAME = "lambdalabs.cloud.lambda_cloud"
    _cache_key: str | None = None

    def verify_file(self, path: str) -> bool:
        return super().verify_file(path) and path.endswith(("lambda_cloud.yml", "lambda_cloud.yaml"))

    # ------------------------------------------------------------------ options
    def _fail(self, option: str, message: str) -> NoReturn:
        raise AnsibleParserError(f"Invalid value for the lambda_cloud inventory option '{option}': {message}")

    def _settings(self, config: dict[str, Any]) -> dict[str, Any]:
        """The validated filter, naming and grouping options, after a check of the raw values of every option."""
        try:
            check_raw_config(config, self.get_options(), self.NAME)
            return inventory_settings({name: self.get_option(name) for name in SETTINGS}, self.templar.is_template)
        except InvalidParameter as error:
            self._fail(error.param, error.detail)

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
                reason = str(error) if isinstance(error, AnsibleUndefinedVariable) else error.__class__.__name__
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
                return list_instances(client)
            finally:
                client.close()
        except LambdaCloudError as error:
            raise AnsibleParserError(f"lambda_cloud inventory: {error}") from None

    def _instances(self, path: str, cache: bool) -> list[dict[str, Any]]:
        """The instance list from the cache when allowed and present, else from the API."""
        include_jupyter = self.get_option("include_jupyter")
        cache_key = self._cache_key = self.get_cache_key(path)
        use_cache = self.get_option("cache")
        update_cache = use_cache and not cache
        if use_cache and cache:
            entry = self._cache.get(cache_key)
            if isinstance(entry, dict) and entry.get("format") == CACHE_FORMAT:
                if entry.get("jupyter") or not include_jupyter:
                    return entry["instances"]
            update_cache = True
        instances = self._fetch()
        if not include_jupyter:
            instances = [without_secrets(item) for item in instances]
        if update_cache:
            self._cache[cache_key] = {"format": CACHE_FORMAT, "jupyter": include_jupyter, "instances": instances}
        return instances

    def update_cache_if_changed(self) -> None:
        """Write the cache readable by its owner only: it lists the account's instances (and Jupyter tokens)."""
        old = os.umask(0o077)
        try:
            super().update_cache_if_changed()
        finally:
            os.umask(old)
        directory = getattr(getattr(self._cache, "_plugin", None), "_cache_dir", None)
        if directory and self._cache_key and os.path.isdir(directory):
            for entry in os.scandir(directory):
                if self._cache_key in entry.name and entry.is_file(follow_symlinks=False):
                    os.chmod(entry.path, 0o600)

    # ------------------------------------------------------------------ hosts
    def _kept(self, host_vars: dict[str, Any], settings: dict[str, Any]) -> bool:
        """The include_filters (any must hold) and exclude_filters (none may hold); a failing one is false."""

        def holds(option: str, expression: str) -> bool:
            try:
                return bool(self._compose(expression, host_vars))
            except Exception as error:  # pylint: disable=broad-exception-caught
                if not settings["strict"]:
                    return False
                raise AnsibleParserError(
                    f"lambda_cloud inventory: could not evaluate {option} entry {expression!r} for instance "
                    f"{host_vars[settings['prefix'] + 'id']}: {error}"
                ) from None

        include, exclude = settings["include_filters"], settings["exclude_filters"]
        if include and not any(holds("include_filters", c) for c in include):
            return False
        return not any(holds("exclude_filters", c) for c in exclude)

    def _hostname(self, host_vars: dict[str, Any], settings: dict[str, Any]) -> str:
        """The first non-empty hostnames preference, else the instance id."""
        prefix = settings["prefix"]
        for entry in settings["hostnames"]:
            if entry in HOSTNAME_FIELDS:
                value = host_vars[prefix + entry]
            else:
                extra = self._vars or {} if settings["use_extra_vars"] else {}
                self.templar.available_variables = {**extra, **host_vars}
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

    def _populate(self, instances: list[dict[str, Any]], settings: dict[str, Any]) -> None:
        prefix = settings["prefix"]
        jinja_filters = settings["include_filters"] or settings["exclude_filters"]
        hosts = []
        for instance in instances:
            if not isinstance(instance, dict) or not selected(instance, settings):
                continue
            shape = (prefix, settings["include_jupyter"], settings["connect_with"])
            host_vars = _untemplatable(instance_hostvars(instance, *shape, ssh_common_args=settings["ssh_common_args"]))
            if jinja_filters and not self._kept(host_vars, settings):
                continue
            name, why = safe_host_name(self._hostname(host_vars, settings), str(host_vars[prefix + "id"]))
            if why:
                self.display.warning(f"lambda_cloud inventory: {why}; the instance is added as '{name}'.")
            hosts.append((name, host_vars))
        names, warnings = unique_host_names(hosts, [str(h[prefix + "id"]) for _n, h in hosts])
        for warning in warnings:
            self.display.warning(f"lambda_cloud inventory: {warning}")

        inventory, strict = self.inventory, settings["strict"]
        if settings["default_groups"]:
            inventory.add_group("lambda")
        for name, (_old, host_vars) in zip(names, hosts):
            inventory.add_host(name)
            if settings["default_groups"]:
                inventory.add_host(name, group="lambda")
                for kind, key in (("region", "region"), ("type", "instance_type")):
                    group = group_name(kind, host_vars[prefix + key])
                    if group:
                        inventory.add_host(name, group=inventory.add_group(group))
            for key, value in host_vars.items():
                inventory.set_variable(name, key, _plain(value))
            if self.get_option("compose"):
                self._set_composite_vars(self.get_option("compose"), host_vars, name, strict=strict)
            if self.get_option("groups"):
                self._add_host_to_composed_groups(self.get_option("groups"), host_vars, name, strict=strict)
            if self.get_option("keyed_groups"):
                self._add_host_to_keyed_groups(self.get_option("keyed_groups"), host_vars, name, strict=strict)

    # ------------------------------------------------------------------ constructed
    def _set_composite_vars(self, compose, variables, host, strict=False):
        """As constructed does it, but a composed value that holds no template is plain, like the other values.

        A composed value keeps its type on every supported ansible-core: before 2.19 the expression is rendered with
        Ansible's native Jinja environment, as 2.19 always does, so that C(lambda_gpus * 80) is a number, not a string.
        """
        templar = self.templar
        if AnsibleNativeEnvironment is not None:
            self.templar = templar.copy_with_new_env(environment_class=AnsibleNativeEnvironment)
        try:
            self._set_each_composite_var(compose, variables, host, strict)
        finally:
            self.templar = templar

    def _set_each_composite_var(self, compose, variables, host, strict):
        for varname, expression in (compose or {}).items():
            try:
                value = self._compose(expression, variables)
            except Exception as error:  # pylint: disable=broad-exception-caught
                if strict:
                    raise AnsibleError(f"Could not set {varname} for host {host}: {error}") from None
                continue
            self.inventory.set_variable(host, varname, _plain(value))

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
        config = self._read_config_data(path)
        settings = self._settings(config if isinstance(config, dict) else {})
        instances = self._instances(path, cache)
        try:
            self._populate(instances, settings)
        except AnsibleParserError:
            raise
        except AnsibleError as error:
            raise AnsibleParserError(f"lambda_cloud inventory: {error}") from None
