# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the training_cluster role: ranks and files of a training cluster, its checks and its smoke test."""

from __future__ import annotations

from ansible_collections.lambdalabs.cloud.plugins.module_utils._training import (
    known_hosts,
    readiness_lines,
    readiness_problems,
    smoke_install_failure,
    smoke_python,
    smoke_verdict,
    ssh_config,
    training_env,
    training_plan,
)

KEYS = ("lambda_private_ip", "lambda_gpus", "lambda_file_system_names", "lambda_file_system_mounts")


def _plan(hostvars, hosts, master_port=29500, mount_root="/lambda/nfs", shared_dir=None):
    """The plan from the nodes' host variables (only the few it needs are read)."""
    variables = {host: {key: hostvars[host].get(key) for key in KEYS} for host in hosts}
    return training_plan(variables, list(hosts), master_port, mount_root, shared_dir)


def _smoke_python(hostvars, hosts, mode="auto", venv="", found_var="_training_cluster_image_torch"):
    """The smoke test's Python from each node's registered look for the image's PyTorch."""
    found = {host: hostvars[host].get(found_var) for host in hosts}
    found = {host: None if not result or result.get("skipped") else result for host, result in found.items()}
    return smoke_python(found, mode, venv)


class FilterModule:
    def filters(self):
        return {
            "training_plan": _plan,
            "training_env": training_env,
            "training_problems": readiness_problems,
            "training_ready": readiness_lines,
            "training_smoke_verdict": smoke_verdict,
            "training_smoke_python": _smoke_python,
            "training_smoke_install_failure": smoke_install_failure,
            "training_known_hosts": known_hosts,
            "training_ssh_config": ssh_config,
        }
