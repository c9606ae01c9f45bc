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
"""

import os
import socket
import subprocess
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.lambdalabs.cloud.plugins.module_utils._gpu import (
    QUERY_FIELDS,
    gpu_facts,
    mount_plan,
    mount_problem,
    parse_utilization,
)


def run(argv):
    """(rc, stdout, stderr) of a command; rc 2 with an empty output when it cannot be run at all."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    except FileNotFoundError:
        return 2, "", ""
    except (OSError, subprocess.TimeoutExpired) as error:
        return 1, "", str(error)
    return done.returncode, done.stdout, done.stderr


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
        },
        supports_check_mode=True,
    )
    p = module.params
    if not 0 <= p["utilization_samples"] <= 1000 or not 0 <= p["utilization_interval"] <= 3600:
        module.fail_json(msg="utilization_samples must be 0 to 1000 and utilization_interval 0 to 3600 seconds.")
    smi = p["nvidia_smi"]
    rc, out, err = run([smi, f"--query-gpu={','.join(QUERY_FIELDS)}", "--format=csv,noheader,nounits"])
    summary = {"stdout": run([smi])[1]} if rc == 0 else None
    gpu = gpu_facts({"rc": rc, "stdout": out, "stderr": err}, summary, p["expected_gpus"], smi)
    plan = mount_plan(p["file_system_names"], p["file_system_mounts"], p["mount_root"].rstrip("/"))
    mounted = [path for path in plan["paths"] if os.path.ismount(path)]
    samples = []
    for index in range(p["utilization_samples"] if gpu["present"] else 0):
        if index:
            time.sleep(p["utilization_interval"])
        rc, out, _err = run([smi, "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"])
        samples.append(parse_utilization(out) if rc == 0 else [])
    module.exit_json(
        changed=False,
        gpu=gpu,
        hostname=socket.gethostname(),
        mounts=dict(plan, mounted=mounted, problem=mount_problem(plan, mounted)),
        utilization=samples,
    )


if __name__ == "__main__":
    main()
