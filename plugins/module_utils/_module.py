# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Ansible glue shared by every module: options, the client, one result contract and one way to fail.

A resource module subclasses :class:`LambdaCloudModule`, declares its ``resource_key`` (the result key,
named after the resource) and ``managed_fields`` (what ``diff`` compares), and implements :meth:`run`,
which finds the resource (``self.before``) and records what it did with :meth:`changed` or
:meth:`unchanged`. The base class builds ``changed``, the check-mode wording, the resource and ``diff``.
Every expected failure is an exception, turned into one ``fail_json`` in :meth:`main`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from ansible.module_utils.basic import AnsibleModule, _load_params, env_fallback, missing_required_lib

from ansible_collections.lambdalabs.cloud.plugins.module_utils._api import region_name
from ansible_collections.lambdalabs.cloud.plugins.module_utils._client import (
    API_KEY_ENV,
    API_URL_ENV,
    HAS_REQUESTS,
    REQUESTS_IMPORT_ERROR,
    LambdaCloudClient,
    LambdaCloudError,
    client_from_options,
)
from ansible_collections.lambdalabs.cloud.plugins.module_utils._selection import (
    Filter,
    Matcher,
    apply_filters,
    check_filters,
    check_known,
    filter_matchers,
    filter_specs,
)
from ansible_collections.lambdalabs.cloud.plugins.module_utils._validation import (
    InvalidParameter,
    raw_type_problem,
)


class ModuleFailure(Exception):
    """An expected failure: ``msg`` is one line; ``result`` adds keys to the failed result."""

    def __init__(self, msg: str, **result: Any) -> None:
        super().__init__(msg)
        self.msg = msg
        self.result = result


def regional_resource_spec(**options: Any) -> dict[str, Any]:
    """The options of a resource known by its name in one region: ``name``, ``region``, ``options``, ``state``."""
    return {
        "name": {"type": "str", "required": True},
        "region": {"type": "str"},
        **options,
        "state": {"type": "str", "default": "present", "choices": ["present", "absent"]},
    }


def common_argument_spec() -> dict[str, Any]:
    """The options of the ``lambdalabs.cloud.lambda_cloud`` doc fragment."""
    return {
        "api_key": {
            "type": "str",
            "no_log": True,
            "aliases": ["api_token"],
            "fallback": (env_fallback, [API_KEY_ENV]),
        },
        "api_url": {"type": "str", "fallback": (env_fallback, [API_URL_ENV])},
        "validate_certs": {"type": "bool", "default": True},
        "request_timeout": {"type": "float", "default": 30},
    }


def raw_type_problems(spec: Mapping[str, Any], raw: Mapping[str, Any], where: str = "") -> list[tuple[str, str]]:
    """Options whose raw value Ansible would silently turn into a string, such as ``name: [a, b]``."""
    problems = []
    for name, option in spec.items():
        keys = [name, *option.get("aliases", [])]
        value = next((raw[key] for key in keys if key in raw), None)
        param = f"{where}{name}"
        kind = option.get("type", "str")
        if kind == "str":
            problem = raw_type_problem(value, "str")
        elif kind == "list" and option.get("elements") == "str":
            problem = raw_type_problem(value, "list_of_str")
        elif kind in ("int", "float"):
            problem = raw_type_problem(value, "number")
        else:
            problem = None
        if problem:
            problems.append((param, problem))
        if option.get("options") and isinstance(value, Mapping):
            problems += raw_type_problems(option["options"], value, f"{param}.")
        if option.get("options") and isinstance(value, list):
            for index, item in enumerate(value):
                if isinstance(item, Mapping):
                    problems += raw_type_problems(option["options"], item, f"{param}[{index}].")
    return problems


def raw_nul_param(raw: Any, where: str = "") -> str | None:
    """The first option whose raw value holds a NUL character (in a string or a key), or None.

    Ansible logs a module's arguments to syslog before any check runs, and from ansible-core 2.20 a NUL character
    makes that fail with a message that names no option; such a value is refused first, with its option named.
    """
    if isinstance(raw, str):
        return (where or "?") if "\x00" in raw else None
    if isinstance(raw, Mapping):
        for key, value in raw.items():
            if where == "" and str(key).startswith("_ansible_"):
                continue
            name = str(key).replace("\x00", "\\x00")  # shown, not embedded
            param = f"{where}.{name}" if where else name
            if "\x00" in str(key):
                return param
            found = raw_nul_param(value, param)
            if found:
                return found
    if isinstance(raw, (list, tuple)):
        for index, item in enumerate(raw):
            found = raw_nul_param(item, f"{where}[{index}]")
            if found:
                return found
    return None


class _AnsibleModule(AnsibleModule):
    """AnsibleModule, but arguments with a NUL character are not logged to syslog, which cannot take them.

    From ansible-core 2.20 the failed log ends the module with a message that names no option; here the base class
    refuses such a value right after, naming its option.
    """

    def _log_invocation(self) -> None:
        if raw_nul_param(self.params) is None:
            super()._log_invocation()


class LambdaCloudModule:
    """Base of every module: owns the AnsibleModule, the client, the result contract and the error mapping."""

    argument_spec: ClassVar[dict[str, Any]] = {}
    module_kwargs: ClassVar[dict[str, Any]] = {}
    resource_key: ClassVar[str] = ""
    managed_fields: ClassVar[tuple[str, ...]] = ()

    def __init__(self) -> None:
        spec = common_argument_spec()
        spec.update(self.argument_spec)
        kwargs: dict[str, Any] = {"supports_check_mode": True}
        kwargs.update(self.module_kwargs)
        self.module = _AnsibleModule(argument_spec=spec, **kwargs)
        nul_param = raw_nul_param(_load_params())
        if nul_param:
            msg = f"Invalid value for parameter {nul_param}: contains a NUL character."
            self.module.fail_json(msg=msg, param=nul_param)
        self.params = self.module.params
        self.check_mode = self.module.check_mode
        self._client: LambdaCloudClient | None = None
        self.before: Any = None
        self.after: Any = None
        self._changed = False
        self.removed = False  # the resource is gone after the change: diff shows nothing after
        self._msg = ""
        self._extra: dict[str, Any] = {}
        if not HAS_REQUESTS:
            self.module.fail_json(msg=missing_required_lib("requests"), exception=REQUESTS_IMPORT_ERROR)
        for param, problem in raw_type_problems(spec, _load_params()):
            self.module.fail_json(msg=f"Invalid value for parameter {param}: {problem}.", param=param)

    @property
    def client(self) -> LambdaCloudClient:
        if self._client is None:
            self._client = client_from_options(self.params)
        return self._client

    # ------------------------------------------------------------------ the result contract
    def run(self) -> None:
        raise NotImplementedError

    def changed(self, verb: str, what: str, after: Any = None, **extra: Any) -> None:
        """Record a change: ``verb`` in the past tense ("launched"), ``what`` it was done to."""
        self._changed = True
        self.after = after
        self._msg = f"Would have {verb} {what}." if self.check_mode else f"{verb[0].upper()}{verb[1:]} {what}."
        self._extra.update(extra)

    def unchanged(self, msg: str, after: Any = None, **extra: Any) -> None:
        self._changed = False
        self.after = after
        self._msg = msg
        self._extra.update(extra)

    def represent(self, resource: Any) -> Any:
        """The resource as the result shows it (modules override this to normalise shapes)."""
        return resource

    def diff_view(self, shown: Any) -> dict[str, Any]:
        """The managed fields of a shown resource, for ``diff``."""
        if not isinstance(shown, Mapping):
            return {}
        return {name: shown.get(name) for name in self.managed_fields if name in shown}

    def result(self) -> dict[str, Any]:
        after = self.represent(self.after)
        result: dict[str, Any] = {"changed": self._changed, "msg": self._msg}
        if after is not None and self.resource_key:
            result[self.resource_key] = after
        result["diff"] = {
            "before": self.diff_view(self.represent(self.before)),
            "after": {} if self.removed else self.diff_view(after),
        }
        result.update(self._extra)
        return result

    def failure(self, msg: str, **extra: Any) -> dict[str, Any]:
        """A failed result: what changed before the failure is kept."""
        result = {"msg": msg, "changed": self._changed}
        after = self.represent(self.after)
        if after is not None and self.resource_key:
            result[self.resource_key] = after
        result.update(self._extra)
        result.update(extra)
        return result

    @classmethod
    def main(cls) -> None:
        module = cls()
        try:
            module.run()
            result = module.result()
        except ModuleFailure as error:
            module.module.fail_json(**module.failure(error.msg, **error.result))
        except InvalidParameter as error:
            module.module.fail_json(**module.failure(f"Invalid value for parameter {error}", param=error.param))
        except LambdaCloudError as error:
            module.module.fail_json(**module.failure(str(error), error=error.to_dict()))
        module.module.exit_json(**result)


class SharedResourceModule(LambdaCloudModule):
    """A resource in one region that instances use, such as a file system: deleted only while none does."""

    kind: ClassVar[str] = ""  # "file system"
    used_by: ClassVar[str] = ""  # "is mounted by", read between the name and the instances
    in_use_code: ClassVar[str] = ""  # the API's error code for "still in use"

    def diff_view(self, shown: Any) -> dict[str, Any]:
        view = super().diff_view(shown)
        if view:
            view["region"] = region_name(view)
        return view

    def find(self) -> dict[str, Any] | None:
        """Check the options and return the resource they name, or None."""
        raise NotImplementedError

    def present(self, existing: dict[str, Any] | None) -> None:
        raise NotImplementedError

    def in_use(self, existing: dict[str, Any]) -> bool:
        raise NotImplementedError

    def users(self, existing: dict[str, Any]) -> list[str]:
        """The instances that use the resource, as the failure names them."""
        raise NotImplementedError

    def delete_resource(self, existing: dict[str, Any]) -> None:
        raise NotImplementedError

    def run(self) -> None:
        self.before = self.find()
        if self.params["state"] == "present":
            self.present(self.before)
        else:
            self.absent(self.before)

    def absent(self, existing: dict[str, Any] | None) -> None:
        """Delete the resource; while instances use it, fail naming them, in check mode too."""
        what = f"{self.kind} {self.params['name']}"
        if existing is None:
            self.unchanged(f"{what[0].upper()}{what[1:]} does not exist.")
            return
        if self.check_mode:
            if self.in_use(existing):
                raise self.in_use_failure(what, existing, f"({self.in_use_code})")
        else:
            try:
                self.delete_resource(existing)
            except LambdaCloudError as error:
                if error.code != self.in_use_code:
                    raise
                raise self.in_use_failure(what, existing, str(error), error=error.to_dict()) from None
        self.changed("deleted", what)
        self.removed = True

    def in_use_failure(self, what: str, existing: dict[str, Any], why: str, **result: Any) -> ModuleFailure:
        users = ", ".join(self.users(existing)) or "an instance"
        return ModuleFailure(
            f"{why} {what[0].upper()}{what[1:]} {self.used_by} {users}; "
            "terminate those instances first, then delete it.",
            **result,
        )


class LambdaCloudInfoModule(LambdaCloudModule):
    """Base of the modules that only read: the result contract without ``diff``."""

    def result(self) -> dict[str, Any]:
        result = super().result()
        result.pop("diff")
        return result


def run_info_module(
    result_key: str,
    argument_spec: dict[str, Any],
    fetch: Callable[[LambdaCloudClient, dict[str, Any]], list[Any]],
    matchers: dict[str, Matcher],
    validate: Callable[[dict[str, Any]], None] | None = None,
    represent: Callable[[Any, dict[str, Any]], Any] | None = None,
    check_items: Callable[[dict[str, Any], list[Any]], None] | None = None,
    extra_results: Callable[[list[Any]], Mapping[str, Any]] | None = None,
) -> None:
    """Run an info module: checks of the filter values, one read, filters, result.

    ``validate`` runs before any request and may raise :class:`InvalidParameter`; ``fetch`` makes the
    module's one API request; ``check_items`` may refuse a filter value that can never match what was read;
    ``represent`` shapes each item of the result; ``extra_results`` adds result keys computed from those items.
    """

    class InfoModule(LambdaCloudInfoModule):
        def run(self) -> None:
            if validate is not None:
                validate(self.params)
            fetched = fetch(self.client, self.params)
            if check_items is not None:
                check_items(self.params, fetched)
            items = apply_filters(fetched, matchers, self.params)
            if represent is not None:
                items = [represent(item, self.params) for item in items]
            extra = dict(extra_results(items)) if extra_results is not None else {}
            self.unchanged(f"Found {len(items)} {result_key.replace('_', ' ')}.", **extra, **{result_key: items})

    InfoModule.argument_spec = argument_spec
    InfoModule.main()


def run_filter_info_module(
    result_key: str,
    fetch: Callable[[LambdaCloudClient, dict[str, Any]], list[Any]],
    filters: dict[str, Filter],
    options: dict[str, Any] | None = None,
    represent: Callable[[Any, dict[str, Any]], Any] | None = None,
    extra_results: Callable[[list[Any]], Mapping[str, Any]] | None = None,
) -> None:
    """:func:`run_info_module` with each filter option declared once, as a :class:`Filter`.

    ``options`` are the module's options that filter nothing.
    """
    run_info_module(
        result_key,
        filter_specs(filters) | (options or {}),
        fetch,
        filter_matchers(filters),
        validate=lambda params: check_filters(filters, params),
        represent=represent,
        check_items=lambda params, items: check_known(filters, params, items),
        extra_results=extra_results,
    )
