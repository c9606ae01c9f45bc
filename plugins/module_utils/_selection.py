# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Choosing resources from a list: the filters of the info modules, and finding one resource by name."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ansible_collections.lambdalabs.cloud.plugins.module_utils._validation import InvalidParameter, check_choice

Matcher = Callable[[Mapping[str, Any], Any], bool]


def field_equals(getter: Callable[[Mapping[str, Any]], Any]) -> Matcher:
    """Match when the item's value equals the filter, or is one of a list of filter values."""

    def match(item: Mapping[str, Any], wanted: Any) -> bool:
        value = getter(item)
        if isinstance(wanted, (list, tuple, set)):
            return value in wanted
        return value == wanted

    return match


def field(name: str) -> Callable[[Mapping[str, Any]], Any]:
    return lambda item: item.get(name)


def apply_filters(items: Iterable[Any], matchers: Mapping[str, Matcher], values: Mapping[str, Any]) -> list:
    """Keep the items that match every filter whose value is set (None and [] mean "no filter")."""
    active = [(matchers[name], value) for name, value in values.items() if name in matchers and value not in (None, [])]
    return [item for item in items if all(match(item, value) for match, value in active)]


@dataclass(frozen=True)
class Filter:
    """One filter option of an info module, declared once: its check, how an item matches, its argument spec.

    ``check(param, value)`` runs before any request. ``match`` defaults to "the item's field of the option's name
    equals the value (or one of a list of values)". ``spec`` defaults to a string option. With ``known_as``, a value
    that no item read has in that field is refused, and the error calls it ``known_as`` ("image family").
    """

    check: Callable[[str, Any], None] | None = None
    match: Matcher | None = None
    spec: Mapping[str, Any] | None = None
    known_as: str | None = None


def filter_specs(filters: Mapping[str, Filter]) -> dict[str, Any]:
    """The argument spec of the filter options."""
    return {name: dict(option.spec or {"type": "str"}) for name, option in filters.items()}


def check_filters(filters: Mapping[str, Filter], values: Mapping[str, Any]) -> None:
    """Check every filter value before any request."""
    for name, option in filters.items():
        if option.check is not None:
            option.check(name, values.get(name))


def filter_matchers(filters: Mapping[str, Filter]) -> dict[str, Matcher]:
    """How an item matches each filter."""
    return {name: option.match or field_equals(field(name)) for name, option in filters.items()}


def check_known(filters: Mapping[str, Filter], values: Mapping[str, Any], items: Iterable[Mapping[str, Any]]) -> None:
    """Refuse a value of a ``known_as`` filter that no item read has in that field."""
    items = list(items)
    for name, option in filters.items():
        if option.known_as:
            check_choice(name, values.get(name), (item.get(name) for item in items), option.known_as)


def find_one_by_name(
    items: Iterable[Mapping[str, Any]], name: str, what: str, hint: str = "remove the extra ones in the console"
) -> Any:
    """The one item with this name, None when there is none; more than one is an error naming their ids."""
    found = [item for item in items if item.get("name") == name]
    if len(found) > 1:
        ids = ", ".join(str(item.get("id")) for item in found)
        raise InvalidParameter("name", f"{len(found)} {what}s are named '{name}' ({ids}); {hint}.")
    return found[0] if found else None
