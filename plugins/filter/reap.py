# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the reap playbooks: which instances have expired or stayed idle, and what to say about them."""

from __future__ import annotations

from ansible_collections.lambdalabs.cloud.plugins.module_utils._reap import (
    reap_idle_plan,
    reap_idle_report,
    reap_options,
    reap_plan,
    reap_report,
    sample_interval,
    terminated_summary,
)

SAMPLED = "_reap_idle_sample"


def _plan(instances, tag="expires-at"):
    return reap_plan(list(instances or []), tag)


def _idle_plan(hostvars, hosts, threshold, opt_out_tag="reap-idle"):
    """The reap_idle plan from the nodes' host variables and their registered utilization samples."""
    nodes = {}
    for host in hosts:
        variables = hostvars[host]
        sample = variables.get(SAMPLED) or {}
        ok = not sample.get("unreachable") and not sample.get("failed") and "utilization" in sample
        nodes[host] = {
            "id": variables.get("lambda_id"),
            "price_cents_per_hour": variables.get("lambda_price_cents_per_hour"),
            "tags": variables.get("lambda_tags"),
            "samples": sample["utilization"] if ok else None,
        }
    return reap_idle_plan(nodes, float(threshold), opt_out_tag)


class FilterModule:
    def filters(self):
        return {
            "reap_plan": _plan,
            "reap_options": reap_options,
            "reap_report": reap_report,
            "reap_idle_plan": _idle_plan,
            "reap_idle_report": reap_idle_report,
            "reap_idle_interval": sample_interval,
            "reap_terminated": terminated_summary,
        }
