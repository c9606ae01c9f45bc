# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Autostop on the cluster itself: the watchdog that the cluster role sets up on the head node, on real SSH nodes.

It samples every node's GPUs over the cluster's own SSH, terminates an idle cluster through the API, leaves a busy
one alone, survives a restart of the head node, changes its period when set again, and is removed with its key."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.support import Ansible, import_playbook, live, require_node_fabric, role_task, wait_for
from tests.simulator.client import Simulator

LAUNCH = "/api/v1/instance-operations/launch"
WATCHDOG = "/usr/local/lib/lambda-autostop/lambda_autostop.py"
MACHINE_PATHS = ("/etc/lambda-autostop", "/var/lib/lambda-autostop", WATCHDOG, "/var/log/lambda-autostop.log")


def cluster_vars(name: str, key: Path, **role_vars: Any) -> dict[str, Any]:
    return {
        "lambda_cluster_name": name,
        "lambda_cluster_nodes": {"count": 2},
        "lambda_cluster_defaults": {"instance_type": ["gpu_1x_a10"], "region": ["us-east-1"], "ssh_key_name": "auto"},
        "lambda_cluster_launch_interval": 0,
        "ansible_ssh_private_key_file": str(key),
        **role_vars,
    }


# ------------------------------------------------------------------ failure paths first
@pytest.mark.parametrize(
    ("role_vars", "expected"),
    [
        ({"lambda_cluster_autostop_minutes": -1}, "lambda_cluster_autostop_minutes"),
        ({"lambda_cluster_autostop_minutes": "soon"}, "lambda_cluster_autostop_minutes"),
        ({"lambda_cluster_autostop_minutes": 60 * 24 * 8}, "lambda_cluster_autostop_minutes"),
        ({"lambda_cluster_autostop_minutes": 5, "lambda_cluster_autostop_action": "maybe"}, "autostop_action"),
        ({"lambda_cluster_autostop_minutes": 5, "lambda_cluster_autostop_threshold": 0}, "autostop_threshold"),
        ({"lambda_cluster_autostop_minutes": 5, "lambda_cluster_autostop_threshold": 101}, "autostop_threshold"),
    ],
)
def test_a_bad_autostop_fails_before_anything_is_launched(ansible, account, tmp_path, role_vars, expected):
    run = ansible.playbook(plays=import_playbook("provision"), extra_vars=cluster_vars("demo", tmp_path, **role_vars))
    assert run.rc != 0
    assert expected in run.output, run.output[-2000:]
    assert "Traceback" not in run.output
    assert account.requests("POST", LAUNCH) == [] and live(account) == []


# ------------------------------------------------------------------ on real nodes
class Nodes:
    """A simulator with real SSH nodes, the deploy key, and the provision playbook to run on it."""

    def __init__(self, tmp_path: Path) -> None:
        self.sim = Simulator("--nodes", "--boot-seconds", "0.3", "--terminate-seconds", "0.3").start()
        self.ansible = Ansible(self.sim, tmp_path)
        self.key = tmp_path / "auto-key"
        # The nodes (the group lambda, which the cluster role adds them to) find their own python: the test's fast
        # module runner for localhost is a path of this machine.
        self.inventory = tmp_path / "inventory.yml"
        localhost = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
        nodes = {"vars": {"ansible_python_interpreter": "auto_silent"}}
        inventory = {"all": {"hosts": {"localhost": localhost}, "children": {"lambda": nodes}}}
        self.inventory.write_text(yaml.safe_dump(inventory))
        made = self.ansible.module("lambda_ssh_key", {"name": "auto", "private_key_path": str(self.key)})
        assert made["_rc"] == 0 and made["changed"], made

    def provision(self, name: str, **role_vars: Any):
        run = self.ansible.playbook(
            plays=import_playbook("provision"),
            extra_vars=cluster_vars(name, self.key, **role_vars),
            inventory=str(self.inventory),
            timeout=600,
        )
        run.assert_ok()
        return run

    def nodes(self, cluster: str) -> list[dict[str, Any]]:
        return [node for node in live(self.sim) if node["name"].startswith(f"{cluster}-")]

    def ssh(self, node: dict[str, Any], command: str) -> subprocess.CompletedProcess[str]:
        """``command`` on ``node`` as ubuntu, over SSH (the test's own connection)."""
        options = ["-F", "/dev/null", "-i", str(self.key), "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes"]
        options += ["-o", f"UserKnownHostsFile={self.ansible.known_hosts}", "-o", "StrictHostKeyChecking=accept-new"]
        return subprocess.run(
            ["ssh", *options, f"ubuntu@{node['ip']}", command],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )


@pytest.fixture
def nodes(tmp_path):
    require_node_fabric()
    made = Nodes(tmp_path)
    try:
        yield made
    finally:
        made.sim.stop()
    # Everything went to the nodes, over SSH: nothing of the watchdog is on this machine.
    assert not any(os.path.exists(path) for path in MACHINE_PATHS), MACHINE_PATHS


def test_autostop_ends_an_idle_cluster_leaves_a_busy_one_and_survives_a_restart(nodes):
    # The busy cluster: one node's GPU at 80% before the watchdog starts.
    nodes.provision("busy")
    busy = nodes.nodes("busy")
    nodes.sim.set_node(busy[1]["id"], gpu_utilization=80)
    busy_set = nodes.provision("busy", lambda_cluster_autostop_minutes=1)
    busy_since = time.monotonic()
    said = role_task(busy_set, "Show the autostop")["msg"]
    assert said.startswith("Autostop of cluster busy: when every GPU of its 2 node(s) has stayed below 10% for 1 min")
    assert "the watchdog on busy-1 terminates the cluster" in said, said

    idle_set = nodes.provision("idle", lambda_cluster_autostop_minutes=1)
    idle_since = time.monotonic()
    assert "the watchdog on idle-1 terminates the cluster" in role_task(idle_set, "Show the autostop")["msg"]
    idle = nodes.nodes("idle")
    head = idle[0]
    # The key is on the head node for root alone; the other node lets the watchdog's key read utilization only.
    unseen = nodes.ssh(head, "stat -c '%a %U' /etc/lambda-autostop/api-key")
    assert unseen.stdout.split() == []  # not even stat
    assert unseen.returncode == 1 and "Permission denied" in unseen.stderr, unseen  # refused, not an SSH failure
    shown = nodes.ssh(head, "sudo stat -c '%a %U' /etc/lambda-autostop/api-key /etc/lambda-autostop/config.json")
    assert shown.stdout.split() == ["600", "root", "600", "root"], shown
    unread = nodes.ssh(head, "cat /etc/lambda-autostop/api-key")
    assert unread.returncode != 0
    assert unread.returncode == 1 and "Permission denied" in unread.stderr, unread
    assert nodes.sim.api_key in nodes.ssh(head, "sudo cat /etc/lambda-autostop/api-key").stdout
    keys = nodes.ssh(idle[1], "cat ~/.ssh/authorized_keys").stdout
    assert 'restrict,command="nvidia-smi --query-gpu=utilization.gpu --format=csv,noheader,nounits"' in keys

    # The head node restarts: the watchdog comes back with it (cloud-init's per-boot scripts).
    status, answer = nodes.sim.api("POST", "/instance-operations/restart", {"instance_ids": [head["id"]]})
    assert status == 200, answer
    nodes.sim.wait_for_status(head["id"], "active", timeout=60)
    wait_for(
        lambda: nodes.ssh(head, f"pgrep -f '{WATCHDOG} loop'").returncode == 0,
        timeout=60,
        what="the watchdog to run again after the restart",
    )

    # All GPUs idle: the watchdog terminates the whole cluster within 3 minutes.
    wait_for(lambda: not nodes.nodes("idle"), timeout=180 - (time.monotonic() - idle_since), what="idle to end")
    assert {i["name"] for i in live(nodes.sim)} == {"busy-1", "busy-2"}
    terminated = nodes.sim.requests("POST", "/api/v1/instance-operations/terminate")
    assert len(terminated) == 1  # one request for the whole cluster, from the head node

    # One busy node: the busy cluster is left alone for 5 minutes.
    time.sleep(max(0.0, 300 - (time.monotonic() - busy_since)))
    assert [node["name"] for node in nodes.nodes("busy")] == ["busy-1", "busy-2"]
    log = nodes.ssh(busy[0], "sudo cat /var/log/lambda-autostop.log").stdout.splitlines()
    rounds = [line for line in log if " busy: busy-2 at or above 10% (peak 80%)" in line]
    assert len(rounds) >= 8, log  # a round every 30 s
    assert not any(" idle: " in line for line in log), log

    # Set again: the period changes, one watchdog goes on.
    nodes.provision("busy", lambda_cluster_autostop_minutes=2)
    config = nodes.ssh(busy[0], "sudo cat /etc/lambda-autostop/config.json").stdout
    assert '"minutes": 2.0' in config, config
    # The role's start of a loop ends at once when one runs (its lock): wait for that one to be gone.
    wait_for(
        lambda: len(nodes.ssh(busy[0], f"pgrep -f '{WATCHDOG} loop'").stdout.split()) == 1,
        timeout=15,
        what="one watchdog loop",
    )
    assert len(nodes.ssh(busy[0], f"pgrep -f '{WATCHDOG} loop'").stdout.split()) == 1

    # 0: the watchdog, its settings, its API key and its SSH key are gone, from the head and the other node.
    removed = nodes.provision("busy", lambda_cluster_autostop_minutes=0)
    assert role_task(removed, "Show the autostop")["msg"] == "Autostop of cluster busy: removed from busy-1."
    gone = "sudo ls -d /etc/lambda-autostop /var/lib/cloud/scripts/per-boot/lambda-autostop " + WATCHDOG
    assert nodes.ssh(busy[0], gone).stdout == ""
    wait_for(
        lambda: nodes.ssh(busy[0], f"pgrep -f '{WATCHDOG}'").returncode == 1,
        timeout=30,
        what="the watchdog to end",
    )
    assert "lambda-autostop@busy" not in nodes.ssh(busy[1], "cat ~/.ssh/authorized_keys").stdout
    assert [node["name"] for node in nodes.nodes("busy")] == ["busy-1", "busy-2"]
