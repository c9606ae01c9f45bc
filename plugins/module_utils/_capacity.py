# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where GPUs are free, and at what price: the capacity playbook's variables, checked, and the table of instance
types that lambda_instance_type_info returns and the playbook prints."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from ansible_collections.lambdalabs.cloud.plugins.module_utils._api import capacity_regions, dollars
from ansible_collections.lambdalabs.cloud.plugins.module_utils._validation import (
    InvalidParameter,
    check_number,
    check_region,
    check_text,
    switch,
)

HEADER = ("Type", "GPUs", "GPU memory", "$/h", "Regions with capacity")
# The columns aligned to the right (numbers); the others are aligned to the left.
RIGHT = frozenset({1, 3})
# The memory of one GPU as Lambda writes it in a description: "A100 (40 GB SXM4)", "GH200 (96 GB)".
MEMORY = re.compile(r"(\d+(?:\.\d+)?)\s*([GT]i?B)\b", re.IGNORECASE)
WHOLE_NUMBER = re.compile(r"[+-]?\d+")
UNKNOWN = "-"


def gpu_memory(instance_type: Mapping[str, Any]) -> str:
    """The memory of one GPU of the type, such as "40 GB", from its gpu_description or else its description; "-"
    when neither says."""
    for key in ("gpu_description", "description"):
        text = instance_type.get(key)
        match = MEMORY.search(text) if isinstance(text, str) else None
        if match:
            return f"{match[1]} {match[2]}"
    return UNKNOWN


def gpu_count(instance_type: Mapping[str, Any]) -> str:
    specs = instance_type.get("specs")
    gpus = specs.get("gpus") if isinstance(specs, Mapping) else None
    return str(gpus) if isinstance(gpus, int) and not isinstance(gpus, bool) else UNKNOWN


def _cell(value: Any) -> str:
    """A value on one line: whitespace (a newline too) shown as one space."""
    return " ".join(str(value).split()) or UNKNOWN


def capacity_row(instance_type: Mapping[str, Any]) -> tuple[str, ...]:
    """The cells of one instance type: name, GPUs, memory of one GPU, dollars per hour, regions with capacity now."""
    regions = sorted(_cell(region) for region in capacity_regions(instance_type))
    return (
        _cell(instance_type.get("name", UNKNOWN)),
        gpu_count(instance_type),
        gpu_memory(instance_type),
        dollars(instance_type.get("price_cents_per_hour")),
        ", ".join(regions) or "none",
    )


def capacity_table(instance_types: Iterable[Mapping[str, Any]]) -> list[str]:
    """The instance types as lines of aligned columns, in their order: a header, then one line per type."""
    rows = [HEADER, *(capacity_row(instance_type) for instance_type in instance_types)]
    widths = [max(len(row[column]) for row in rows) for column in range(len(HEADER))]
    lines = []
    for row in rows:
        cells = [
            cell.rjust(width) if column in RIGHT else cell.ljust(width)
            for column, (cell, width) in enumerate(zip(row, widths))
        ]
        lines.append("  ".join(cells).rstrip())
    return lines


def _min_gpus(value: Any) -> int:
    if isinstance(value, str) and WHOLE_NUMBER.fullmatch(value.strip()):
        value = int(value.strip())
    elif isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidParameter("min_gpus", f"must be a whole number of GPUs, such as 8, got {_shown(value)}.")
    check_number("min_gpus", value, minimum=0)
    return value


def _max_price_cents(value: Any) -> int:
    """Dollars per hour as whole cents, rounded down: a type that costs more than the limit is never shown."""
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise InvalidParameter(
                "max_price", f"must be a price in US dollars per hour, such as 2.5, got {_shown(value)}."
            ) from None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidParameter(
            "max_price", f"must be a price in US dollars per hour, such as 2.5, got {_shown(value)}."
        )
    check_number("max_price", value, minimum=0)
    return math.floor(Decimal(repr(value)) * 100)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def capacity_options(min_gpus: Any = None, max_price: Any = None, region: Any = None, available: Any = True) -> dict:
    """The capacity playbook's variables as lambda_instance_type_info's options, checked before the API is read.

    ``min_gpus`` a whole number from 0, ``max_price`` US dollars per hour from 0 (as cents, rounded down), ``region``
    a region code, ``available`` a strict switch; each may come as the text of ``-e``. ``error`` is one line naming
    the variable, or None; an option that is not set is left out, so that ``default(omit)`` omits it.
    """
    try:
        options: dict[str, Any] = {"error": None, "available": switch("available", available)}
        if min_gpus is not None:
            options["min_gpus"] = _min_gpus(min_gpus)
        if max_price is not None:
            options["max_price_cents_per_hour"] = _max_price_cents(max_price)
        if region is not None:
            check_text("region", region)  # one region: check_region would take a list too
            check_region("region", region)
            options["region"] = region
    except InvalidParameter as error:
        return {"error": f"Invalid value for {error}"}
    return options
