#!/usr/bin/python
# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: gpu_node_info
short_description: GPU, hostname and file system facts of a GPU node, gathered on the node
version_added: 1.0.0
description:
  - Runs on a GPU node (not on the controller) and reports, in one module run, its GPUs as C(nvidia-smi) lists them,
    the CUDA version, its hostname, whether its file systems are mounted, and optionally samples of GPU utilization.
  - It talks to no API, changes nothing, and needs nothing beyond Python on the node. The C(lambdalabs.cloud.gpu_node)
    and C(lambdalabs.cloud.training_cluster) roles and the C(lambdalabs.cloud.reap_idle) playbook use it.
author:
  - Lambda Cloud collection maintainers (@lambdalabs)
attributes:
  check_mode:
    description: Can run in check mode and return the same result as without it.
    support: full
    details: The module only reads.
  diff_mode:
    description: Will return details on what has changed when in diff mode.
    support: N/A
    details: The module only reads.
options:
  nvidia_smi:
    description:
      - The C(nvidia-smi) command, a name on the node's C(PATH) or a path.
    type: str
    default: nvidia-smi
  expected_gpus:
    description:
      - The GPU count of the instance type (the inventory's C(lambda_gpus)), reported back as C(expected_count).
    type: int
  file_system_names:
    description:
      - The names of the node's file systems (the inventory's C(lambda_file_system_names)).
    type: list
    elements: str
    default: []
  file_system_mounts:
    description:
      - The mounts the node reports (the inventory's C(lambda_file_system_mounts)), each with C(mount_point).
    type: list
    elements: dict
    default: []
  mount_root:
    description:
      - Where file systems without a reported mount point are mounted, as C(<mount_root>/<name>).
    type: path
    default: /lambda/nfs
  utilization_samples:
    description:
      - How many times to read the utilization of every GPU, O(utilization_interval) seconds apart. V(0) reads none.
    type: int
    default: 0
  utilization_interval:
    description:
      - Seconds between two utilization samples.
    type: float
    default: 1
  private_address:
    description:
      - The node's private IPv4 address (the inventory's C(lambda_private_ip)); the result names the network
        interface that holds it, for C(NCCL_SOCKET_IFNAME).
    type: str
  reach:
    description:
      - Addresses as C(host:port) that the node tries to open a TCP connection to, for example the other nodes'
        private addresses on port 22; the result says which it reached.
    type: list
    elements: str
    default: []
"""

EXAMPLES = r"""
- name: Facts of the node
  lambdalabs.cloud.gpu_node_info:
    expected_gpus: "{{ lambda_gpus }}"
    file_system_names: "{{ lambda_file_system_names }}"
    file_system_mounts: "{{ lambda_file_system_mounts }}"
  register: node

- name: Its GPUs
  ansible.builtin.debug:
    msg: "{{ node.hostname }}: {{ node.gpu.count }}x {{ node.gpu.model }}"

- name: Five utilization samples over a minute
  lambdalabs.cloud.gpu_node_info:
    utilization_samples: 5
    utilization_interval: 15
  register: busy
"""

RETURN = r"""
gpu:
  description:
    - The GPUs as C(nvidia-smi --query-gpu) lists them; C(present) is false, with the reason in C(error), when it
      lists none or cannot run.
  returned: always
  type: dict
  sample:
    present: true
    count: 8
    model: NVIDIA H100 80GB HBM3
    models: [NVIDIA H100 80GB HBM3]
    memory_mib: 81559
    memory_total_mib: 652472
    driver_version: 550.90.07
    cuda_version: "12.4"
    persistence_mode: true
    expected_count: 8
    gpus: [{"index": 0, "name": "NVIDIA H100 80GB HBM3", "memory_mib": 81559, "driver_version": "550.90.07",
            "persistence_mode": true, "uuid": "GPU-...", "pci_bus_id": "00000000:18:00.0"}]
    error: null
hostname:
  description: The node's hostname.
  returned: always
  type: str
  sample: trainer-1
mounts:
  description:
    - The file system mounts, as C(lambdalabs.cloud.mount_plan) plans them, with C(mounted) (the paths that are mount
      points) and C(problem) (one sentence on what is not mounted, or null).
  returned: always
  type: dict
  sample: {"paths": ["/lambda/nfs/datasets"], "mounted": ["/lambda/nfs/datasets"], "problem": null}
utilization:
  description: The utilization samples, one list of percentages (one per GPU) for each sample.
  returned: always
  type: list
  elements: list
  sample: [[97, 95], [98, 96]]
interface:
  description: The network interface that holds O(private_address), or null.
  returned: always
  type: str
  sample: enp5s0
reachable:
  description: For each address of O(reach), whether a TCP connection to it opened within 5 seconds.
  returned: always
  type: dict
  sample: {"10.19.0.3:22": true}
"""

import os
import re
import socket
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.lambdalabs.cloud.plugins.module_utils._gpu import (
    QUERY_FIELDS,
    gpu_facts,
    mount_plan,
    mount_problem,
    parse_utilization,
)
from ansible_collections.lambdalabs.cloud.plugins.module_utils._training import interface_for


def reaches(target):
    """Whether a TCP connection to ``host:port`` opens within 5 seconds."""
    host, _sep, port = target.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=5):
            return True
    except (OSError, ValueError):
        return False


def mount_points():
    """Every mount point of the node, from /proc/self/mountinfo (bind mounts included); None where it cannot be read."""
    try:
        with open("/proc/self/mountinfo", encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return None
    points = set()
    for line in lines:
        fields = line.split()
        if len(fields) > 4:
            points.add(re.sub(r"\\([0-7]{3})", lambda match: chr(int(match.group(1), 8)), fields[4]))
    return points


def run(module, argv):
    """(rc, stdout, stderr) of a command, stopped after 60 s (coreutils' timeout, where the node has it); rc 2 with
    an empty output when the program cannot be found or run at all."""
    program = argv[0] if os.sep in argv[0] else module.get_bin_path(argv[0])
    if not program or not os.access(program, os.X_OK):
        return 2, "", ""
    limit = module.get_bin_path("timeout")
    command = [limit, "--kill-after=5", "60", program, *argv[1:]] if limit else [program, *argv[1:]]
    try:
        return module.run_command(command, handle_exceptions=False)
    except OSError as error:
        return 1, "", str(error)


def main():
    module = AnsibleModule(
        argument_spec={
            "nvidia_smi": {"type": "str", "default": "nvidia-smi"},
            "expected_gpus": {"type": "int"},
            "file_system_names": {"type": "list", "elements": "str", "default": []},
            "file_system_mounts": {"type": "list", "elements": "dict", "default": []},
            "mount_root": {"type": "path", "default": "/lambda/nfs"},
            "utilization_samples": {"type": "int", "default": 0},
            "utilization_interval": {"type": "float", "default": 1},
            "private_address": {"type": "str"},
            "reach": {"type": "list", "elements": "str", "default": []},
        },
        supports_check_mode=True,
    )
    p = module.params
    if not 0 <= p["utilization_samples"] <= 1000 or not 0 <= p["utilization_interval"] <= 3600:
        module.fail_json(msg="utilization_samples must be 0 to 1000 and utilization_interval 0 to 3600 seconds.")
    smi = p["nvidia_smi"]
    rc, out, err = run(module, [smi, f"--query-gpu={','.join(QUERY_FIELDS)}", "--format=csv,noheader,nounits"])
    summary = {"stdout": run(module, [smi])[1]} if rc == 0 else None
    gpu = gpu_facts({"rc": rc, "stdout": out, "stderr": err}, summary, p["expected_gpus"], smi)
    plan = mount_plan(p["file_system_names"], p["file_system_mounts"], p["mount_root"].rstrip("/"))
    points = mount_points()
    mounted = [path for path in plan["paths"] if (path in points if points is not None else os.path.ismount(path))]
    samples = []
    for index in range(p["utilization_samples"] if gpu["present"] else 0):
        if index:
            time.sleep(p["utilization_interval"])
        rc, out, _err = run(module, [smi, "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"])
        samples.append(parse_utilization(out) if rc == 0 else [])
    interface = None
    if p["private_address"]:
        interface = interface_for(p["private_address"], run(module, ["ip", "-o", "-4", "addr", "show"])[1])
    module.exit_json(
        changed=False,
        gpu=gpu,
        hostname=socket.gethostname(),
        mounts=dict(plan, mounted=mounted, problem=mount_problem(plan, mounted)),
        utilization=samples,
        interface=interface,
        reachable={target: reaches(target) for target in p["reach"]},
    )


if __name__ == "__main__":
    main()
