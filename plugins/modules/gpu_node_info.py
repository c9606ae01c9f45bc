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
  - It talks to no API and changes nothing. The C(lambdalabs.cloud.gpu_node) and
    C(lambdalabs.cloud.training_cluster) roles and the C(lambdalabs.cloud.reap_idle) playbook use it.
  - When the task asks for none of O(utilization_samples), O(private_address) and O(reach), and the connection
    pipelines modules (C(pipelining) on, and a become method other than C(su)), the controller reads the node with
    one POSIX shell script (C(/bin/sh), C(uname), C(cat)) on its standard input instead of running Python there,
    which costs the node and the controller much less CPU; the result is the same. Otherwise the module runs on the
    node, with Python.
  - An option given as null takes its default.
  - With O(connect_timeout), the controller first waits until the node accepts a connection, as
    M(ansible.builtin.wait_for_connection) does, so that a node that is still booting or restarting needs no task of
    its own.
  - With O(require_gpu), O(check_gpu_count) and O(check_mounts), the task fails when the node does not pass those
    checks, with one sentence for each problem, naming the host.
author:
  - Lambda Cloud collection maintainers (@lambdalabs)
attributes:
  action:
    description: Indicates this has a corresponding action plugin so some parts of the options can be executed on
      the controller.
    support: full
    details: The controller waits for the connection (O(connect_timeout)); everything else runs on the node.
extends_documentation_fragment: [lambdalabs.cloud.lambda_cloud.info_module]
options:
  connect_timeout:
    description:
      - Seconds to wait for the node to accept a connection, trying again every second; the controller does this
        before the module runs on the node. When the time is up, the host is unreachable, with the last connection
        error.
      - V(0) tries once.
    type: float
    default: 0
  nvidia_smi:
    description:
      - The C(nvidia-smi) command, a name on the node's C(PATH) or a path.
    type: str
    default: nvidia-smi
  expected_gpus:
    description:
      - The GPU count of the instance type (the inventory's C(lambda_gpus)), reported back as C(expected_count).
    type: int
  instance_type:
    description:
      - The node's instance type (the inventory's C(lambda_instance_type)), named when the GPU count is wrong.
    type: str
  require_gpu:
    description:
      - Fail when the node has no working GPU (C(nvidia-smi) is missing, fails, or lists none).
    type: bool
    default: false
  check_gpu_count:
    description:
      - Fail when the node has a working GPU, and not O(expected_gpus) of them. Needs O(expected_gpus).
    type: bool
    default: false
  check_mounts:
    description:
      - Fail when a file system of O(file_system_names) or O(file_system_mounts) is not mounted where it should be.
    type: bool
    default: false
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
  progress_seconds:
    description:
      - When the samples span more than this many seconds, the controller takes them one at a time and prints a
        progress line at least this often while it waits between two, with the node, the samples taken, the highest
        utilization so far, and the time.
      - V(0) takes every sample in one run on the node, without progress lines.
    type: float
    default: 30
    version_added: 1.1.0
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

- name: Fail on a node without the GPUs of its instance type, or with a file system missing
  lambdalabs.cloud.gpu_node_info:
    expected_gpus: "{{ lambda_gpus }}"
    instance_type: "{{ lambda_instance_type }}"
    file_system_names: "{{ lambda_file_system_names }}"
    file_system_mounts: "{{ lambda_file_system_mounts }}"
    require_gpu: true
    check_gpu_count: true
    check_mounts: true

- name: Facts of a node that is still restarting, once it accepts SSH (up to 10 minutes)
  lambdalabs.cloud.gpu_node_info:
    connect_timeout: 600
  register: node

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
msg:
  description:
    - One line on the node (its GPUs and hostname) or, when a check fails, every problem found, naming the host.
  returned: always
  type: str
  sample: "trainer-1: 8x NVIDIA H100 80GB HBM3, 81559 MiB each, driver 550.90.07, CUDA 12.4. Hostname trainer-1."
connect_seconds:
  description: Seconds the controller waited for the node to accept a connection; V(0) when the first try worked.
  returned: always
  type: float
  sample: 12.4
hostname:
  description: The node's hostname.
  returned: always
  type: str
  sample: trainer-1
mounts:
  description:
    - The file system mounts. C(reported) are the mount points the instance reports; C(defaults) the
      C(<mount_root>/<name>) paths of the other file systems, C(default_needed) of which must be mounted; C(paths)
      every path checked, C(mounted) those that are mount points, and C(problem) one sentence on what is not
      mounted, or null.
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
import socket
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.lambdalabs.cloud.plugins.module_utils._gpu import parse_utilization
from ansible_collections.lambdalabs.cloud.plugins.module_utils._network import interface_for
from ansible_collections.lambdalabs.cloud.plugins.module_utils._node_read import (
    ARGUMENT_SPEC,
    COMMAND_SECONDS,
    QUERY_ARGS,
    UTILIZATION_ARGS,
    node_facts,
)


def reaches(target):
    """Whether a TCP connection to ``host:port`` opens within 5 seconds."""
    host, _sep, port = target.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=5):
            return True
    except (OSError, ValueError):
        return False


def read_mountinfo():
    """The node's mount table (/proc/self/mountinfo), or None where it cannot be read."""
    try:
        with open("/proc/self/mountinfo", encoding="utf-8") as handle:
            return handle.read()
    except OSError:
        return None


def run(module, argv):
    """(rc, stdout, stderr) of a command, stopped after 60 s (coreutils' timeout, where the node has it); rc 2 with
    an empty output when the program cannot be found or run at all."""
    program = argv[0] if os.sep in argv[0] else module.get_bin_path(argv[0])
    if not program or not os.path.isfile(program) or not os.access(program, os.X_OK):
        return 2, "", ""
    limit = module.get_bin_path("timeout")
    command = [limit, "--kill-after=5", str(COMMAND_SECONDS), program, *argv[1:]] if limit else [program, *argv[1:]]
    try:
        return module.run_command(command, handle_exceptions=False)
    except OSError as error:
        return 1, "", str(error)


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    p = module.params
    if not 0 <= p["utilization_samples"] <= 1000 or not 0 <= p["utilization_interval"] <= 3600:
        module.fail_json(msg="utilization_samples must be 0 to 1000 and utilization_interval 0 to 3600 seconds.")
    smi = p["nvidia_smi"]
    rc, out, err = run(module, [smi, *QUERY_ARGS])
    summary = {"stdout": run(module, [smi])[1]} if rc == 0 else None
    query = {"rc": rc, "stdout": out, "stderr": err}
    facts = node_facts(p, query, summary, socket.gethostname(), read_mountinfo(), os.path.ismount)
    samples = []
    for index in range(p["utilization_samples"] if facts["gpu"]["present"] else 0):
        if index:
            time.sleep(p["utilization_interval"])
        rc, out, _err = run(module, [smi, *UTILIZATION_ARGS])
        samples.append(parse_utilization(out) if rc == 0 else [])
    interface = None
    if p["private_address"]:
        interface = interface_for(p["private_address"], run(module, ["ip", "-o", "-4", "addr", "show"])[1])
    module.exit_json(
        changed=False,
        **facts,
        utilization=samples,
        interface=interface,
        reachable={target: reaches(target) for target in p["reach"]},
    )


if __name__ == "__main__":
    main()
