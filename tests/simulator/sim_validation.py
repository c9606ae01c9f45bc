# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""API errors and the request-body checks that produce ``global/invalid-parameters``."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from typing import Any

INVALID_PARAMETERS = "global/invalid-parameters"
NOT_FOUND = "global/object-does-not-exist"
DUPLICATE = "global/duplicate"
FIX_REQUEST = "Correct the request body as described in the API reference and try again."


class ApiError(Exception):
    """An error answered in the API's envelope: ``{"error": {"code", "message", "suggestion"}}``."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        suggestion: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.suggestion = suggestion
        self.headers = headers or {}

    def envelope(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.suggestion:
            error["suggestion"] = self.suggestion
        return {"error": error}


def check_unique_name(name: str, resources: Iterable[dict[str, Any]], what: str, suggestion: str) -> None:
    """A 400 ``global/duplicate`` when one of ``resources`` is named ``name`` already; ``what`` says "A file system"."""
    if any(resource["name"] == name for resource in resources):
        raise ApiError(400, DUPLICATE, f"{what} named {name!r} already exists.", suggestion)


def invalid(message: str, suggestion: str = FIX_REQUEST) -> ApiError:
    """A 400 ``global/invalid-parameters`` error."""
    return ApiError(400, INVALID_PARAMETERS, message, suggestion)


def not_found(message: str, suggestion: str) -> ApiError:
    """A 404 ``global/object-does-not-exist`` error."""
    return ApiError(404, NOT_FOUND, message, suggestion)


def field_name(where: str, key: str | int) -> str:
    """The dotted/indexed name of a field for error messages: ``tags[0].key``."""
    if isinstance(key, int):
        return f"{where}[{key}]"
    return f"{where}.{key}" if where else key


def type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def expect_object(value: Any, where: str = "") -> dict[str, Any]:
    """``value`` as a JSON object, or a 400 naming the field."""
    if value is None and not where:
        raise invalid("The request body is missing; a JSON object is required.")
    if not isinstance(value, dict):
        name = f"'{where}'" if where else "The request body"
        raise invalid(f"{name} must be a JSON object, not {type_name(value)}.")
    return value


def check_keys(obj: dict[str, Any], allowed: Collection[str], required: Iterable[str] = (), where: str = "") -> None:
    """Refuse unknown and missing fields."""
    for key in obj:
        if key not in allowed:
            raise invalid(
                f"Unknown field '{field_name(where, key)}'.",
                f"Remove it; the allowed fields are: {', '.join(sorted(allowed))}.",
            )
    for key in required:
        if key not in obj:
            raise invalid(f"Missing required field '{field_name(where, key)}'.")


def get_str(
    obj: dict[str, Any],
    key: str,
    where: str = "",
    *,
    min_length: int = 0,
    max_length: int | None = None,
    pattern: str | None = None,
    choices: Collection[str] | None = None,
) -> str | None:
    """An optional string field with the reference's constraints; None when absent."""
    if key not in obj:
        return None
    value = obj[key]
    name = field_name(where, key)
    if not isinstance(value, str):
        raise invalid(f"Field '{name}' must be a string, not {type_name(value)}.")
    if len(value) < min_length:
        if min_length == 1:
            raise invalid(f"Field '{name}' must not be empty.")
        raise invalid(f"Field '{name}' must be at least {min_length} characters long.")
    if max_length is not None and len(value) > max_length:
        raise invalid(f"Field '{name}' must be at most {max_length} characters long (got {len(value)}).")
    if pattern is not None and not re.match(pattern, value):
        raise invalid(f"Field '{name}' ({value!r}) must match the pattern {pattern}.")
    if choices is not None and value not in choices:
        raise invalid(f"Field '{name}' ({value!r}) must be one of: {', '.join(choices)}.")
    return value


def get_list(obj: dict[str, Any], key: str, where: str = "") -> list[Any] | None:
    """An optional array field; None when absent."""
    if key not in obj:
        return None
    value = obj[key]
    if not isinstance(value, list):
        raise invalid(f"Field '{field_name(where, key)}' must be an array, not {type_name(value)}.")
    return value


def get_str_list(obj: dict[str, Any], key: str, where: str = "") -> list[str] | None:
    """An optional array-of-strings field; None when absent."""
    values = get_list(obj, key, where)
    if values is None:
        return None
    name = field_name(where, key)
    for index, item in enumerate(values):
        if not isinstance(item, str):
            raise invalid(f"Field '{field_name(name, index)}' must be a string, not {type_name(item)}.")
    return values


def get_int(
    obj: dict[str, Any], key: str, where: str = "", *, minimum: int | None = None, maximum: int | None = None
) -> int | None:
    """An optional integer field (booleans refused); None when absent."""
    if key not in obj:
        return None
    value = obj[key]
    name = field_name(where, key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(f"Field '{name}' must be an integer, not {type_name(value)}.")
    if minimum is not None and value < minimum:
        raise invalid(f"Field '{name}' must be at least {minimum}.")
    if maximum is not None and value > maximum:
        raise invalid(f"Field '{name}' must be at most {maximum}.")
    return value


def require_str(obj: dict[str, Any], key: str, where: str = "", **constraints: Any) -> str:
    """A required string field with the reference's constraints: those of :func:`get_str`."""
    value = get_str(obj, key, where, **constraints)
    if value is None:
        raise invalid(f"Missing required field '{field_name(where, key)}'.")
    return value
