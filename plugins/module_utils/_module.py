# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Ansible glue shared by every module: options, client, errors, info modules."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from ansible.module_utils.basic import AnsibleModule, env_fallback, missing_required_lib

from ansible_collections.lambdalabs.cloud.plugins.module_utils._client import (
    API_KEY_ENV,
    API_URL_ENV,
    HAS_REQUESTS,
    REQUESTS_IMPORT_ERROR,
    LambdaCloudClient,
    LambdaCloudError,
)
from ansible_collections.lambdalabs.cloud.plugins.module_utils._resources import (
    InvalidParameter,
    Matcher,
    apply_filters,
)


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


def client_from_options(options: dict[str, Any]) -> LambdaCloudClient:
    """Build the client from the shared options (used by modules and the inventory plugin)."""
    return LambdaCloudClient(
        options.get("api_key"),
        options.get("api_url"),
        validate_certs=options.get("validate_certs", True),
        request_timeout=30 if options.get("request_timeout") is None else options["request_timeout"],
    )


class LambdaCloudModule:
    """Base of every module: owns the AnsibleModule, the client and the error mapping.

    A module subclasses it, sets ``argument_spec`` (and optionally ``module_kwargs``)
    and implements :meth:`run`, which returns the result dict.
    """

    argument_spec: ClassVar[dict[str, Any]] = {}
    module_kwargs: ClassVar[dict[str, Any]] = {}

    def __init__(self) -> None:
        spec = common_argument_spec()
        spec.update(self.argument_spec)
        kwargs = {"supports_check_mode": True}
        kwargs.update(self.module_kwargs)
        self.module = AnsibleModule(argument_spec=spec, **kwargs)
        self.params = self.module.params
        self.check_mode = self.module.check_mode
        self._client: LambdaCloudClient | None = None
        if not HAS_REQUESTS:
            self.module.fail_json(msg=missing_required_lib("requests"), exception=REQUESTS_IMPORT_ERROR)

    @property
    def client(self) -> LambdaCloudClient:
        if self._client is None:
            self._client = client_from_options(self.params)
        return self._client

    def run(self) -> dict[str, Any]:
        raise NotImplementedError

    def fail_error(self, error: LambdaCloudError, msg: str | None = None, **result: Any) -> None:
        """Fail with the one-line message of an API or network error (or ``msg``) and its structured form."""
        self.module.fail_json(msg=msg or str(error), error=error.to_dict(), **result)

    def fail_param(self, error: InvalidParameter, **result: Any) -> None:
        self.module.fail_json(msg=f"Invalid value for parameter {error}", param=error.param, **result)

    @classmethod
    def main(cls) -> None:
        instance = cls()
        try:
            result = instance.run()
        except InvalidParameter as error:
            instance.fail_param(error)
        except LambdaCloudError as error:
            instance.fail_error(error)
        instance.module.exit_json(**result)


def run_info_module(
    result_key: str,
    argument_spec: dict[str, Any],
    fetch: Callable[[LambdaCloudClient, dict[str, Any]], list[dict[str, Any]]],
    matchers: dict[str, Matcher],
    validate: Callable[[dict[str, Any], list[dict[str, Any]]], None] | None = None,
) -> None:
    """Run an info module: one read, optional checks of the filter values, filters, result.

    ``fetch`` makes the module's one API request; ``validate`` may raise
    :class:`InvalidParameter` for a filter value that can never match.
    """

    class InfoModule(LambdaCloudModule):
        def run(self) -> dict[str, Any]:
            items = fetch(self.client, self.params)
            if validate is not None:
                validate(self.params, items)
            return {"changed": False, result_key: apply_filters(items, matchers, self.params)}

    InfoModule.argument_spec = argument_spec
    InfoModule.main()
