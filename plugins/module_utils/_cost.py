# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What instances have cost so far and cost per day, and the times of the cost tags (launched-at, expires-at).

The API does not say when an instance was launched: the collection tags every launch with ``launched-at`` (UTC),
and the audit trail's launch event stands in for an instance without the tag. Cost so far is the instance type's
price per hour times the time since the launch: an estimate to the cent, not the invoice.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any

from ansible_collections.lambdalabs.cloud.plugins.module_utils._api import dollars, price_cents_per_hour, tag_of

LAUNCHED_AT_TAG = "launched-at"
# A launched-at tag outside these bounds (before Lambda Cloud's API, or later than now by more than a controller's
# clock can be off) is no launch time: the audit trail is asked instead.
EARLIEST_LAUNCH = datetime(2015, 1, 1, tzinfo=timezone.utc).timestamp()
CLOCK_SKEW = 300

# YYYY-MM-DD, optionally THH:MM or THH:MM:SS (fractions allowed), optionally Z or +00:00. UTC only.
UTC_TIME = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?)?(?:Z|z|\+00:?00)?")


def parse_utc(text: Any) -> datetime | None:
    """The UTC time a tag value names, or None when it is not a real date and time (2021-02-29, 24:00)."""
    if not isinstance(text, str):
        return None
    match = UTC_TIME.fullmatch(text.strip())
    if not match:
        return None
    year, month, day, hour, minute, second = (int(part or 0) for part in match.groups())
    try:
        return datetime(year, month, day, hour, minute, second, tzinfo=timezone.utc)
    except ValueError:
        return None


def utc_text(seconds: float) -> str:
    """Seconds since the epoch as UTC text, the way the collection's tags write times: 2026-06-01T12:00:00Z."""
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def launch_time(
    instance: Mapping[str, Any], audit_times: Mapping[str, float] | None = None, now: float | None = None
) -> tuple[float | None, str | None]:
    """When the instance was launched (seconds since the epoch), and where that comes from: its ``launched-at`` tag,
    else the audit trail (``audit_times``: id -> seconds); (None, None) when neither says."""
    tagged = parse_utc(tag_of(instance, LAUNCHED_AT_TAG))
    latest = (time.time() if now is None else now) + CLOCK_SKEW
    if tagged is not None and EARLIEST_LAUNCH <= tagged.timestamp() <= latest:
        return tagged.timestamp(), "tag"
    audited = (audit_times or {}).get(str(instance.get("id")))
    return (audited, "audit") if audited is not None else (None, None)


def uptime(instance: Mapping[str, Any], now: float, audit_times: Mapping[str, float] | None = None) -> float | None:
    """Seconds since the launch (never below 0), or None when the launch time is unknown."""
    launched, _source = launch_time(instance, audit_times, now)
    return None if launched is None else max(0.0, now - launched)


def spent(
    instances: Iterable[Mapping[str, Any]], now: float, audit_times: Mapping[str, float] | None = None
) -> dict[str, Any]:
    """What the instances cost per hour and per day, and have cost so far (in cents); the cost so far leaves out
    the instances whose launch time is unknown, which ``cost_unknown`` counts."""
    hourly, cost, unknown = 0, 0.0, 0
    for instance in instances:
        price = price_cents_per_hour(instance)
        hourly += price
        seconds = uptime(instance, now, audit_times)
        if seconds is None:
            unknown += 1
        else:
            cost += price * seconds / 3600
    return {
        "price_cents_per_hour": hourly,
        "cents_per_day": hourly * 24,
        "cost_cents": round(cost),
        "cost_unknown": unknown,
    }


def spent_text(figures: Mapping[str, Any]) -> str:
    """``$5.38 so far`` and how many instances that leaves out."""
    text = f"${dollars(figures['cost_cents'])} so far"
    if figures["cost_unknown"]:
        text += f" (not counting {figures['cost_unknown']} whose launch time is unknown)"
    return text
