#!/usr/bin/python
# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: lambda_cluster_info
short_description: Show the clusters of a Lambda Cloud account, their nodes, uptime and cost so far
version_added: 1.1.0
description:
  - Reads the running instances (booting, active, unhealthy) and groups them by their C(cluster) tag, the tag that
    the P(lambdalabs.cloud.cluster#role) role gives its nodes. Instances without the tag are listed apart, so that
    forgotten ones are seen.
  - For each node it gives its status, type, region, address, uptime, price per hour and cost so far; for each
    cluster, its expiry (the C(expires-at) tag) and totals; and the totals of the account.
  - The API does not say when an instance was launched. The collection tags every launch with C(launched-at); for
    an instance without that tag, the launch event of the account's audit trail gives the time, and the uptime and
    cost are V(null) (V(unknown) in the table) only when neither has it.
  - Cost so far is the instance type's price per hour times the time since the launch. Lambda's invoice is the
    authority; this is an estimate to the cent.
  - Makes one API request, and one to ten more (audit events) only when some instance has no C(launched-at) tag.
  - The C(lambdalabs.cloud.status) playbook prints its table.
extends_documentation_fragment: [lambdalabs.cloud.lambda_cloud, lambdalabs.cloud.lambda_cloud.info_module]
options:
  name:
    description:
      - Only the cluster of this name; the instances of no cluster are then left out.
      - When no running instance has this cluster's tag, the result has no cluster, and RV(table) names the
        clusters that are running.
    type: str
"""

EXAMPLES = r"""
- name: What is running, and what it has cost so far
  lambdalabs.cloud.lambda_cluster_info:
  register: status

- name: Show it
  ansible.builtin.debug:
    msg: "{{ status.table }}"

- name: The cost so far of the cluster training, in dollars
  lambdalabs.cloud.lambda_cluster_info:
    name: training
  register: training

- name: Fail when it has cost more than 100 dollars
  ansible.builtin.assert:
    that: training.total.cost_cents < 10000
"""

RETURN = r"""
clusters:
  description: The clusters, by name, each with its nodes and totals.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The cluster's name, its nodes' C(cluster) tag.
      type: str
      sample: training
    expires_at:
      description: The earliest C(expires-at) tag of its nodes, or V(null).
      type: str
      sample: "2026-12-05T20:00:00Z"
    count:
      description: How many running nodes it has.
      type: int
      sample: 2
    price_cents_per_hour:
      description: What its nodes cost per hour together, in US cents.
      type: int
      sample: 258
    cost_cents:
      description: What its nodes have cost so far, in US cents, rounded; nodes of unknown launch time not counted.
      type: int
      sample: 516
    cost_unknown:
      description: How many of its nodes have no known launch time, and so no cost in RV(clusters[].cost_cents).
      type: int
      sample: 0
    nodes:
      description: Its running nodes, in natural order of name.
      type: list
      elements: dict
      sample:
        - name: training-1
          id: 0920582c7ff041399e34823a0be62549
          status: active
          instance_type: gpu_1x_a100_sxm4
          region: us-east-1
          ip: 198.51.100.2
          launched_at: "2026-12-05T08:00:00Z"
          launched_at_from: tag
          uptime_seconds: 7200
          price_cents_per_hour: 129
          cost_cents: 258.0
          expires_at: "2026-12-05T20:00:00Z"
unclustered:
  description:
    - The running instances without a C(cluster) tag (as RV(clusters[].nodes)), with their totals (as in
      RV(clusters)). Empty when O(name) is given.
  returned: always
  type: dict
  sample: {"count": 1, "price_cents_per_hour": 75, "cost_cents": 1800, "cost_unknown": 0, "nodes": []}
total:
  description: The totals (as in RV(clusters)) of every node shown.
  returned: always
  type: dict
  sample: {"count": 3, "price_cents_per_hour": 333, "cost_cents": 2316, "cost_unknown": 0}
known_clusters:
  description: The names of every cluster with running nodes, whichever O(name) is.
  returned: always
  type: list
  elements: str
  sample: [eval, training]
cluster:
  description: O(name), the cluster shown, or V(null) for every cluster.
  returned: always
  type: str
  sample: training
now:
  description: The time (UTC) that the uptime and costs are counted to.
  returned: always
  type: str
  sample: "2026-12-05T10:00:00Z"
table:
  description:
    - The same as lines of text to print, one per node under a header, then one per cluster, one for the instances
      of no cluster, and one for the account.
  returned: always
  type: list
  elements: str
  sample:
    - "CLUSTER   NODE        STATUS  TYPE              REGION     IP            UPTIME  $/H   COST"
    - "training  training-1  active  gpu_1x_a100_sxm4  us-east-1  198.51.100.2  2 h     1.29  2.58"
    - "Cluster training: 1 node(s), $1.29 per hour, $2.58 so far, expires 2026-12-05T20:00:00Z (in 10 h)."
    - "Account: 1 running instance(s), $1.29 per hour, $2.58 so far."
"""

import time

from ansible_collections.lambdalabs.cloud.plugins.module_utils._api import instance_launch_times, list_instances
from ansible_collections.lambdalabs.cloud.plugins.module_utils._cost import utc_text
from ansible_collections.lambdalabs.cloud.plugins.module_utils._module import LambdaCloudInfoModule
from ansible_collections.lambdalabs.cloud.plugins.module_utils._status import (
    AUDIT_LOOKBACK_SECONDS,
    account_status,
    check_cluster,
    status_table,
    untagged_ids,
)


class ClusterInfoModule(LambdaCloudInfoModule):
    argument_spec = {"name": {"type": "str"}}

    def run(self):
        cluster = check_cluster("name", self.params["name"])
        instances = list_instances(self.client)
        now = time.time()
        untagged = untagged_ids(instances, now, cluster)
        audit_times = {}
        if untagged:
            audit_times = instance_launch_times(self.client, untagged, utc_text(now - AUDIT_LOOKBACK_SECONDS))
        status = account_status(instances, audit_times, now, cluster)
        shown = len(status["clusters"])
        self.unchanged(
            f"Found {shown} cluster(s) and {status['total']['count']} running instance(s).",
            **status,
            now=utc_text(now),
            table=status_table(status, now),
        )


def main():
    ClusterInfoModule.main()


if __name__ == "__main__":
    main()
