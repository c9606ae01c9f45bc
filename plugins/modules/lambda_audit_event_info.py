#!/usr/bin/python
# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: lambda_audit_event_info
short_description: Read the audit events of a Lambda Cloud account
version_added: 1.0.0
description:
  - Reads the account's audit events (who launched, terminated, changed what, and when), oldest first, following
    the API's pages until the last one or until O(max_events) events are read.
  - Makes one API request per page.
extends_documentation_fragment: [lambdalabs.cloud.lambda_cloud, lambdalabs.cloud.lambda_cloud.info_module]
options:
  start:
    description:
      - Only events at or after this time, in ISO 8601, for example V(2026-01-01T00:00:00Z). Without a time zone,
        UTC.
    type: str
  end:
    description:
      - Only events at or before this time, in ISO 8601.
    type: str
  resource_type:
    description:
      - Only events of this kind of resource, for example V(instance), V(ssh_key), V(filesystem) or
        V(firewall_ruleset).
    type: str
  max_events:
    description:
      - Stop after this many events; no further page is read.
    type: int
    default: 1000
"""

EXAMPLES = r"""
- name: Who terminated instances since the start of the day
  lambdalabs.cloud.lambda_audit_event_info:
    start: "{{ now(utc=true, fmt='%Y-%m-%dT00:00:00Z') }}"
    resource_type: instance
  register: audit

- name: Show them
  ansible.builtin.debug:
    msg: "{{ audit.audit_events | selectattr('action', 'eq', 'terminated') | map(attribute='actor_lrn') | list }}"
"""

RETURN = r"""
audit_events:
  description: The events, as the API returns them, oldest first.
  returned: always
  type: list
  elements: dict
  sample:
    - service_name: cloud
      resource_name: instance
      action: terminated
      event_id: 0123456789abcdef0123456789abcdef
      event_time: "2026-01-01T10:30:45.123456Z"
      actor_lrn: lrn:cloud:identity:00112233445566778899aabbccddeeff
      resource_lrns: ["lrn:cloud:instance:0920582c7ff041399e34823a0be62549"]
pages:
  description: How many pages were read (one API request each).
  returned: always
  type: int
  sample: 3
truncated:
  description: Whether more events were left unread because of O(max_events).
  returned: always
  type: bool
  sample: false
"""

from datetime import datetime, timezone

from ansible_collections.lambdalabs.cloud.plugins.module_utils._api import audit_events_page
from ansible_collections.lambdalabs.cloud.plugins.module_utils._module import LambdaCloudInfoModule
from ansible_collections.lambdalabs.cloud.plugins.module_utils._validation import (
    InvalidParameter,
    check_number,
    check_text,
)


def iso_time(param, value):
    """The value as an ISO 8601 UTC time the API accepts, or an error naming the parameter."""
    if value is None:
        return None
    check_text(param, value, max_length=64)
    text = value.strip()
    try:
        parsed = datetime.fromisoformat(text[:-1] + "+00:00" if text[-1:] in "Zz" else text)
    except ValueError:
        raise InvalidParameter(param, f"{value!r} is not an ISO 8601 time such as 2026-01-01T00:00:00Z.") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class AuditEventInfoModule(LambdaCloudInfoModule):
    argument_spec = {
        "start": {"type": "str"},
        "end": {"type": "str"},
        "resource_type": {"type": "str"},
        "max_events": {"type": "int", "default": 1000},
    }

    def run(self):
        p = self.params
        query = {"start": iso_time("start", p["start"]), "end": iso_time("end", p["end"])}
        check_text("resource_type", p["resource_type"], max_length=64)
        check_number("max_events", p["max_events"], minimum=1, maximum=1_000_000)
        query["resource_type"] = p["resource_type"]
        events, pages, token = [], 0, None
        while True:
            page, token = audit_events_page(self.client, query | {"page_token": token})
            pages += 1
            events.extend(page)
            if not token or len(events) >= p["max_events"]:
                break
        truncated = len(events) > p["max_events"] or (bool(token) and len(events) >= p["max_events"])
        events = events[: p["max_events"]]
        more = " (more were left unread: max_events)" if truncated else ""
        self.unchanged(
            f"Read {len(events)} audit event(s) in {pages} page(s){more}.",
            audit_events=events,
            pages=pages,
            truncated=truncated,
        )


def main():
    AuditEventInfoModule.main()


if __name__ == "__main__":
    main()
