# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The arguments of the collection's action plugins, checked on the controller before anything runs."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.lambdalabs.cloud.plugins.module_utils._validation import InvalidParameter


def validated_args(
    spec: Mapping[str, Any], args: Mapping[str, Any], check: Callable[[dict[str, Any]], None]
) -> dict[str, Any]:
    """``args`` converted by the argument ``spec``, then checked (and completed) in place by ``check``, which raises
    InvalidParameter. An option given as null takes its default. A refusal is one line, as a module's would be."""
    given = {key: value for key, value in args.items() if value is not None}
    validation = ArgumentSpecValidator(dict(spec)).validate(given)
    if validation.error_messages:
        raise AnsibleActionFail(" ".join(" ".join(validation.error_messages).split()))
    params = validation.validated_parameters
    try:
        check(params)
    except InvalidParameter as error:
        raise AnsibleActionFail(str(error)) from None
    return params


def finite_number(value: Any, default: float) -> float | None:
    """``value`` (``default`` when None) as a finite float, or None when it is not one: an action plugin's choice of
    how to run, made before the module itself checks the option and refuses it in one line."""
    try:
        number = float(default if value is None else value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None
