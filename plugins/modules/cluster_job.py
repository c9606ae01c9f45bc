#!/usr/bin/python
# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: cluster_job
short_description: Run a job on a cluster node, watch it, and bring its log home
version_added: 1.1.0
description:
  - Starts O(command) on the node, detached from the connection, in C(~/.lambda-jobs/<run_id>) of the task's user,
    with the variables of O(env_file) (the torchrun rank variables that the C(lambdalabs.cloud.train) playbook
    writes).
  - Watches it from the controller until it ends, and copies its whole log to O(log_dir)C(/<host>.log).
  - Shows the last line of the log at most every O(progress_seconds).
  - Run it on several nodes in one task, and each node's job runs and is watched at the same time. When one fails,
    the others are stopped, so that the run ends at once and not at the time limit.
  - A node that does not answer for O(heartbeat_seconds), or that the API no longer calls active (see O(watch_ids)),
    fails the job within that time.
  - The job keeps running when the controller stops. Give the cluster an expiry (C(lambda_cluster_ttl_hours)), so
    that C(lambdalabs.cloud.reap) ends it then.
  - The C(lambdalabs.cloud.run_and_teardown) playbook runs this module and checks the cluster before.
author:
  - Lambda Cloud collection maintainers (@lambdalabs)
attributes:
  check_mode:
    description: Can run in check mode and return changed status prediction without modifying the target.
    support: none
  diff_mode:
    description: Will return details on what has changed when in diff mode.
    support: none
  action:
    description: Indicates this has a corresponding action plugin so some parts of the options can be executed on the
      controller.
    support: full
options:
  command:
    description:
      - The job, a shell command line run by C(bash) with C(pipefail).
    type: str
    required: true
  run_id:
    description:
      - The run's identifier, letters, digits and C(-); the job's directory on the node is named after it.
    type: str
    required: true
  log_dir:
    description:
      - The directory on the controller where each node's log is copied, one C(<host>.log) a node.
    type: path
    required: true
  env_file:
    description:
      - A shell file the job reads first, when it is there.
    type: str
    default: /etc/lambda-cluster/env
  nodes:
    description:
      - The number of nodes of a multi-node job. When given, the job does not start unless O(env_file) can be read
        and is written for that many nodes (its C(NNODES)), as a cluster that changed since would give wrong ranks.
      - V(0) checks nothing.
    type: int
    default: 0
  timeout:
    description:
      - The job's time limit in seconds; the job is stopped then, and the task fails.
    type: float
    default: 86400
  heartbeat_seconds:
    description:
      - How long the node may not answer before the job counts as failed.
    type: float
    default: 60
  progress_seconds:
    description:
      - The least time between two progress lines of one node.
    type: float
    default: 30
  poll_seconds:
    description:
      - The time between two looks at the node.
    type: float
    default: 2
  tail_lines:
    description:
      - How many of the log's last lines the result holds.
    type: int
    default: 20
  instance_id:
    description:
      - The id of this node's instance, for O(watch_ids).
    type: str
  watch_ids:
    description:
      - The instance ids of the job's nodes, checked in the API (one request for all of them at most every 10 s).
      - A node that leaves C(active) fails the job. Give them to one node's task only; the others learn of it.
    type: list
    elements: str
    default: []
  api_key:
    description:
      - The API key for O(watch_ids); by default the E(LAMBDA_API_KEY) environment variable.
    type: str
  api_url:
    description:
      - The API's base URL; by default E(LAMBDA_API_URL), or Lambda Cloud's.
    type: str
  request_timeout:
    description:
      - Seconds to wait for one API answer.
    type: float
    default: 10
  validate_certs:
    description:
      - Check the API's TLS certificate.
    type: bool
    default: true
notes:
  - The job runs as the task's user; use C(become_user) for another one.
  - The job survives the loss of the connection. A job stopped by this module gets C(SIGTERM) for its whole process
    group.
"""

EXAMPLES = r"""
- name: Run the training on every node, with its rank variables
  lambdalabs.cloud.cluster_job:
    command: torchrun --nnodes "$NNODES" --node-rank "$NODE_RANK" --master-addr "$MASTER_ADDR" train.py
    run_id: "{{ run_id }}"
    log_dir: "{{ playbook_dir }}/logs/{{ run_id }}"
    need_env: true
  register: job
"""

RETURN = r"""
state:
  description: How the job ended on this node.
  returned: always
  type: str
  choices: [succeeded, failed, lost, stopped, timed_out]
  sample: succeeded
rc:
  description: The job's exit status; null when it did not end by itself.
  returned: always
  type: int
  sample: 0
msg:
  description: One line on how the job ended on this node.
  returned: always
  type: str
  sample: "trainer-1: the job ended with exit status 0"
seconds:
  description: How long the node was watched.
  returned: always
  type: float
  sample: 812.4
log:
  description: Where the node's whole log was copied; null when the node could not give it.
  returned: always
  type: str
  sample: /home/me/logs/20261205T101500Z-3fa9c1/trainer-1.log
tail:
  description: The last lines of the log.
  returned: always
  type: list
  elements: str
  sample: ["epoch 3 loss 0.41", "done"]
"""
