#!/usr/bin/python
# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: lambda_instance_wait
short_description: Wait for several Lambda Cloud instances at once, and for SSH on them
version_added: 1.0.0
description:
  - Waits until every given instance is C(active) (and, with O(ssh=true), answers on port 22 with an SSH banner), or
    until every one is gone (terminated or deleted).
  - All instances are waited for together, with one API request (C(GET /instances)) per poll, so a cluster of any
    size costs the same few requests. It returns how long each instance took.
  - It never changes anything. It fails, with one line that names every instance that did not make it, when an
    instance ends while waiting for it to become active, or when O(timeout) passes.
extends_documentation_fragment: [lambdalabs.cloud.lambda_cloud]
attributes:
  check_mode:
    description: Can run in check mode and return changed status prediction without modifying the target.
    support: full
    details: In check mode it reads the instances once and does not wait.
  diff_mode:
    description: Will return details on what has changed when in diff mode.
    support: none
options:
  ids:
    description:
      - The ids of the instances to wait for. An empty list returns at once.
    type: list
    elements: str
    required: true
  state:
    description:
      - V(active) waits until every instance is C(active); V(gone) until every one is terminated or deleted.
    type: str
    choices: [active, gone]
    default: active
  timeout:
    description:
      - Seconds to wait for the instances, and then for SSH, in all. The instances are left as they are on a timeout.
    type: int
    default: 1800
  ssh:
    description:
      - With O(state=active), also wait until port 22 of each instance answers with an SSH banner.
    type: bool
    default: false
  connect_with:
    description:
      - Which address of an instance to wait for SSH on.
    type: str
    choices: [ip, private_ip, hostname]
    default: ip
  progress_seconds:
    description:
      - The task shows a line such as C(3/8 active, 5 booting, 2 min 10 s of 30 min) every this many seconds while
        it waits. V(0) shows none.
      - The controller runs the wait in steps of this length; each step reads the instances again.
    type: float
    default: 30
  report_after:
    description:
      - Return after this many seconds with RV(done=false), instead of failing, when the wait is not over yet.
      - The controller's steps (O(progress_seconds)) use it; a task seldom needs it.
    type: float
  waited_before:
    description:
      - Seconds already waited for these instances in earlier steps; the result's times count from their start.
    type: float
    default: 0
notes:
  - The instance list is read every second, one request for all the instances, so an instance that becomes active
    is seen within 1 s, at the API's limit of one request per second.
  - An instance that becomes C(unhealthy), or ends, ends the wait at once with what to do about it; the others are
    not waited for.
"""

EXAMPLES = r"""
- name: Wait for the nodes of a cluster, and for SSH on each
  lambdalabs.cloud.lambda_instance_wait:
    ids: "{{ launched | map(attribute='instance.id') | list }}"
    ssh: true
    timeout: 1800
  register: waited

- name: Show how long each node took
  ansible.builtin.debug:
    msg: "{{ waited.nodes | map(attribute='name') | zip(waited.nodes | map(attribute='seconds')) | list }}"
"""

RETURN = r"""
instances:
  description: The instances as last read, with C(tags) as a dictionary and without Jupyter credentials.
  returned: always
  type: list
  elements: dict
  sample: [{"id": "0920582c7ff041399e34823a0be62549", "name": "demo-1", "status": "active", "ip": "127.18.0.2"}]
nodes:
  description:
    - One entry per instance, in the order of O(ids). C(outcome) is V(reached), V(lost) (it ended, vanished or turned
      unhealthy while waiting for it to become active), V(timeout), V(no-ssh) (active, but SSH did not answer in time)
      or V(waiting) (not waited for to the end, as another instance was lost).
    - C(seconds) is how long the instance took to reach the state, and C(ssh_seconds) how long until SSH answered,
      both counted from the start of the wait.
  returned: always
  type: list
  elements: dict
  sample: [{"id": "0920582c7ff041399e34823a0be62549", "name": "demo-1", "status": "active", "outcome": "reached",
            "seconds": 41.2, "ssh_seconds": 44.9, "address": "127.18.0.2"}]
done:
  description: Whether the wait is over (always true for a task's result).
  returned: success
  type: bool
  sample: true
polls:
  description: How many times the instance list was read.
  returned: always
  type: int
  sample: 6
seconds:
  description: How long the whole wait took.
  returned: always
  type: float
  sample: 45.1
msg:
  description: What happened, in one line.
  returned: always
  type: str
  sample: 3 instance(s) active in 45.1 s, SSH answering on each.
"""

import socket
import time

from ansible_collections.lambdalabs.cloud.plugins.module_utils._api import list_instances, represent_instance
from ansible_collections.lambdalabs.cloud.plugins.module_utils._module import LambdaCloudModule, ModuleFailure
from ansible_collections.lambdalabs.cloud.plugins.module_utils._validation import check_id, check_number
from ansible_collections.lambdalabs.cloud.plugins.module_utils._wait import wait_for_instances

SSH_POLL_SECONDS = 1.0


def ssh_banner(address, timeout=2.0):
    """Whether ``address`` port 22 accepts a connection and greets with an SSH banner."""
    try:
        with socket.create_connection((address, 22), timeout=timeout) as sock:
            sock.settimeout(timeout)
            return sock.recv(64).startswith(b"SSH-")
    except OSError:
        return False


def missed_problem(node):
    """What happened to an instance that a wait did not see reach its state, and what to do about it."""
    named = f"{node['name'] or '(no name)'} ({node['id']}) is {node['status'] or 'gone'}"
    if node["outcome"] == "timeout":
        return f"{named} and timed out (run again to wait longer)"
    if node["outcome"] == "no-ssh":
        return (
            f"{named} and did not answer SSH on {node['address']}:22: if it never does, terminate it "
            f"(lambdalabs.cloud.lambda_instance id={node['id']} state=absent) and provision again"
        )
    if node["status"] == "unhealthy":
        return (
            f"{named}, which waiting cannot mend: restart it (lambdalabs.cloud.lambda_instance state=restarted), or "
            f"terminate it (id={node['id']} state=absent) and provision again to replace it"
        )
    return f"{named} and ended while waiting: provision again to replace it"


class InstanceWaitModule(LambdaCloudModule):
    argument_spec = {
        "ids": {"type": "list", "elements": "str", "required": True},
        "state": {"type": "str", "default": "active", "choices": ["active", "gone"]},
        "timeout": {"type": "int", "default": 1800},
        "ssh": {"type": "bool", "default": False},
        "connect_with": {"type": "str", "default": "ip", "choices": ["ip", "private_ip", "hostname"]},
        "progress_seconds": {"type": "float", "default": 30},
        "report_after": {"type": "float"},
        "waited_before": {"type": "float", "default": 0},
    }

    def wait_for_ssh(self, nodes, start, window):
        """Poll port 22 of every reached instance until each answers or the ``window`` is up."""
        pending = {node["id"] for node in nodes if node["outcome"] == "reached"}
        while pending:
            for node in nodes:
                if node["id"] in pending and node["address"] and ssh_banner(node["address"]):
                    node["ssh_seconds"] = round(time.monotonic() - start, 3)
                    pending.discard(node["id"])
            if not pending or time.monotonic() - start - self.params["waited_before"] >= window:
                break
            time.sleep(SSH_POLL_SECONDS)
        for node in nodes:
            if node["id"] in pending:
                node["outcome"] = "no-ssh"

    def run(self):
        p = self.params
        for instance_id in p["ids"]:
            check_id("ids", instance_id)
        check_number("timeout", p["timeout"], minimum=0, maximum=7 * 24 * 3600)
        check_number("progress_seconds", p["progress_seconds"], minimum=0, maximum=24 * 3600)
        check_number("report_after", p["report_after"], above=0, maximum=7 * 24 * 3600)
        check_number("waited_before", p["waited_before"], minimum=0, maximum=7 * 24 * 3600)
        step = p["report_after"] is not None and p["report_after"] < p["timeout"]
        window = p["report_after"] if step else p["timeout"]
        # Times count from the start of the whole wait, earlier steps included.
        start = time.monotonic() - p["waited_before"]
        report = wait_for_instances(
            lambda: list_instances(self.client),
            p["ids"],
            p["state"],
            0 if self.check_mode else window,
            progress=lambda r: self.module.log(
                f"lambda_instance_wait: {len(r.with_outcome('reached'))} of {len(r.nodes)} {p['state']}"
            ),
        )
        nodes = []
        for instance_id, node in report.nodes.items():
            instance = report.instances.get(instance_id) or {}
            address = instance.get(p["connect_with"]) if p["state"] == "active" else None
            nodes.append(
                {
                    "id": instance_id,
                    "name": instance.get("name"),
                    "status": node.status,
                    "outcome": node.outcome,
                    "seconds": None if node.seconds is None else round(node.seconds + p["waited_before"], 3),
                    "ssh_seconds": None,
                    "address": address,
                }
            )
        if p["ssh"] and p["state"] == "active" and not self.check_mode:
            self.wait_for_ssh(nodes, start, window)
        elapsed = round(time.monotonic() - start, 1)
        shown = [represent_instance(report.instances[i]) for i in p["ids"] if i in report.instances]
        extra = {"instances": shown, "nodes": nodes, "polls": report.polls, "seconds": elapsed}
        if self.check_mode:
            self.unchanged(f"Check mode: read {len(nodes)} instance(s) once, without waiting.", done=True, **extra)
            return
        missed = [node for node in nodes if node["outcome"] not in ("reached", "waiting")]
        if step and missed and not any(node["outcome"] == "lost" for node in missed):
            for node in missed:
                node["outcome"] = "waiting"
            self.unchanged("Still waiting.", done=False, **extra)
            return
        if missed:
            waiting = [node for node in nodes if node["outcome"] == "waiting"]
            also = f" {len(waiting)} other instance(s) were not waited for." if waiting else ""
            raise ModuleFailure(
                f"Not every instance is {p['state']} after {elapsed:g} s (timeout {p['timeout'] + p['waited_before']:g} s): "
                f"{'; '.join(missed_problem(node) for node in missed)}.{also} The instances were left as they are.",
                **extra,
            )
        ssh = ", SSH answering on each" if p["ssh"] and p["state"] == "active" else ""
        self.unchanged(f"{len(nodes)} instance(s) {p['state']} in {elapsed:g} s{ssh}.", done=True, **extra)


def main():
    InstanceWaitModule.main()


if __name__ == "__main__":
    main()
