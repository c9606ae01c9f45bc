# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection against real nodes: provision with a generated key, reach the nodes over SSH through the dynamic
inventory, configure them with gpu_node, restart one, tear them down.

The simulator runs with --nodes, so every instance is a Linux host with its own sshd on a loopback address. The
tests run in order on one cluster (one pytest worker takes the whole module: conftest.ONE_WORKER_FILES).
"""

from __future__ import annotations

import re
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.support import NodeCluster, Run, import_playbook, node_cluster, per_host, ssh_args

USER_DATA = '#!/bin/bash\necho "first boot of $(hostname)"\n'


class Cluster(NodeCluster):
    def configure(self, **extra_vars: Any) -> Run:
        return self.play("configure", configure_hosts=self.group, **extra_vars)


def ssh_refused(key: Path, address: str) -> bool:
    result = subprocess.run(
        [
            "ssh",
            *ssh_args(key.with_name("known_hosts"), master="no").split(),
            "-i",
            str(key),
            "-o",
            "BatchMode=yes",
            "-o",
            "ConnectTimeout=5",
            f"ubuntu@{address}",
            "true",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return result.returncode == 255 and "refused" in result.stderr


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[Cluster]:
    interpreter = ["-e", "ansible_python_interpreter=auto_silent"]
    with node_cluster(tmp_path_factory, "gpu", Cluster, play_args=interpreter, user_data=USER_DATA) as cluster:
        # lambda_cluster_wait_for_ssh is on by default: it waited for SSH on every node
        [waited] = [e["result"] for e in cluster.provisioned.results if e["task"].endswith(" : Wait for the nodes")]
        assert all(node["ssh_seconds"] is not None for node in waited["nodes"]), waited
        yield cluster


def test_the_dynamic_inventory_reaches_three_hosts_over_ssh(cluster):
    result = cluster.adhoc("-m", "ansible.builtin.command", "-a", "hostname")
    assert result.returncode == 0, result.stdout + result.stderr
    hostnames = per_host(result.stdout)
    assert sorted(hostnames) == ["gpu-1", "gpu-2", "gpu-3"]
    assert len(set(hostnames.values())) == 3
    assert set(hostnames.values()) == {node["hostname"] for node in cluster.nodes.values()}
    become = cluster.adhoc("-m", "ansible.builtin.command", "-a", "id -un", become=True)
    assert set(per_host(become.stdout).values()) == {"root"}, become.stdout + become.stderr
    user = cluster.adhoc("-m", "ansible.builtin.command", "-a", "id -un")
    assert set(per_host(user.stdout).values()) == {"ubuntu"}


def test_a_file_on_one_nodes_file_system_is_read_on_the_others(cluster):
    token = f"written on gpu-1 at {time.time()}"
    write = cluster.adhoc(
        "-m", "ansible.builtin.copy", "-a", f"dest=/lambda/nfs/data/hello content='{token}'", "--limit", "gpu-1"
    )
    assert write.returncode == 0, write.stdout + write.stderr
    read = cluster.adhoc("-m", "ansible.builtin.command", "-a", "cat /lambda/nfs/data/hello")
    assert set(per_host(read.stdout).values()) == {token}, read.stdout


def test_user_data_ran_once_at_first_boot(cluster):
    result = cluster.adhoc("-m", "ansible.builtin.command", "-a", "cat /var/log/cloud-init-output.log", become=True)
    logs = per_host(result.stdout)
    assert sorted(logs) == ["gpu-1", "gpu-2", "gpu-3"], result.stdout + result.stderr
    for host, log in logs.items():
        assert f"first boot of {cluster.nodes[host]['hostname']}" in log


def test_gpu_node_configures_the_nodes_and_a_second_run_changes_nothing(cluster):
    first = cluster.configure(gpu_node_persistence_mode=True)
    first.assert_ok()
    facts = {
        e["host"]: e["result"]["ansible_facts"]["lambda_gpu_facts"]
        for e in first.results
        if e["task"].endswith(" : Record the new persistence mode")
    }
    assert sorted(facts) == ["gpu-1", "gpu-2", "gpu-3"]
    for fact in facts.values():
        assert fact["count"] == 1 == fact["expected_count"] and fact["model"] == "NVIDIA A10"
        assert fact["persistence_mode"] is True and fact["cuda_version"]
    mounts = [e for e in first.results if e["task"].endswith(" : Read and check the node's GPUs, hostname and mounts")]
    assert [e["status"] for e in mounts] == ["ok"] * 3
    shown = {
        e["host"]: e["result"]["msg"]
        for e in first.results
        if e["task"].endswith(" : Show the node's GPUs and hostname")
    }
    assert shown == {
        node["name"]: f"{node['name']}: 1x NVIDIA A10, 23028 MiB each, driver 550.127.05, CUDA 12.4. "
        f"Hostname {node['hostname']}."
        for node in cluster.nodes.values()
    }
    again = cluster.configure(gpu_node_persistence_mode=True)
    again.assert_ok()
    assert re.findall(r"changed=(\d+)", again.stdout) == ["0"] * 4, again.stdout  # localhost checks the hosts


def test_a_missing_gpu_fails_the_node_that_lost_it(cluster):
    victim = cluster.nodes["gpu-2"]
    cluster.sim.set_node(victim["id"], gpu_count=0)
    try:
        run = cluster.configure(gpu_node_require_gpu=True)
        failed = [e for e in run.results if e["status"] == "failed"]
        assert [e["host"] for e in failed] == [victim["name"]], run.output[-3000:]
        assert "has no working GPU" in failed[0]["result"]["msg"]
    finally:
        cluster.sim.set_node(victim["id"], gpu_count=1)


def read_by_private_address(cluster: Cluster, node: dict[str, Any], started: Path | None = None, **args: Any):
    """gpu_node_info on one node, reached at its private address (which the control API can close), with no SSH
    master connection that would outlive a closed address. With ``started``, the controller creates that file just
    before the read (a lookup, which needs no connection to the node)."""
    play = {"name": "read", "hosts": "all", "gather_facts": False, "tasks": []}
    if started is not None:
        touch = f"{{{{ lookup('ansible.builtin.pipe', 'touch {started}') }}}}"
        play["tasks"].append({"name": "started", "ansible.builtin.debug": {"msg": touch}})
    play["tasks"].append({"name": "read", "lambdalabs.cloud.gpu_node_info": args})
    return cluster.ansible.playbook(
        plays=[play],
        inventory=f"{node['private_ip']},",
        env={"ANSIBLE_SSH_ARGS": ssh_args(cluster.ansible.known_hosts, master="no")},
        args=[
            "-c",
            "ssh",
            "-u",
            "ubuntu",
            "--private-key",
            str(cluster.key),
            "-e",
            "ansible_python_interpreter=auto_silent",
        ],
    )


def test_gpu_node_info_reads_the_same_with_or_without_python_on_the_node(cluster):
    """Without utilization, interface or reach, the node is read by a shell script; with them, by the module."""
    read = {"expected_gpus": "{{ lambda_gpus }}", "file_system_names": "{{ lambda_file_system_names }}"}
    tasks = [
        {"name": "shell", "lambdalabs.cloud.gpu_node_info": read},
        {"name": "module", "lambdalabs.cloud.gpu_node_info": read | {"reach": ["{{ ansible_host }}:22"]}},
        # The script also runs under become, with the task's environment.
        {
            "name": "shell as root",
            "lambdalabs.cloud.gpu_node_info": read,
            "become": True,
            "environment": {"LC_ALL": "C"},
        },
    ]
    play = {"name": "both", "hosts": "lambda_cluster_gpu", "gather_facts": False, "tasks": tasks}
    run = cluster.ansible.playbook(
        plays=[play],
        inventory=str(cluster.inventory),
        args=["-c", "ssh", "-e", "ansible_python_interpreter=auto_silent"],
    )
    run.assert_ok()
    # Without pipelining, the connection does not hand the script to the shell: the module reads the node.
    unpiped = cluster.ansible.playbook(
        plays=[play | {"tasks": tasks[:1]}],
        inventory=str(cluster.inventory),
        args=["-c", "ssh", "-e", "ansible_python_interpreter=auto_silent"],
        env={"ANSIBLE_PIPELINING": "False"},
    )
    unpiped.assert_ok()
    # Only the module needs Python on the node: with an interpreter that does not exist, the shell read still works,
    # and the module fails, whether a task asks for reach or the connection does not pipeline.
    no_python = [
        {"name": "shell, no Python", "lambdalabs.cloud.gpu_node_info": read},
        {"name": "module, no Python", "lambdalabs.cloud.gpu_node_info": tasks[1]["lambdalabs.cloud.gpu_node_info"]},
        {"name": "unpiped, no Python", "lambdalabs.cloud.gpu_node_info": read, "vars": {"ansible_pipelining": False}},
    ]
    pythonless = cluster.ansible.playbook(
        plays=[play | {"tasks": [task | {"ignore_errors": True} for task in no_python]}],
        inventory=str(cluster.inventory),
        args=["-c", "ssh", "-e", "ansible_python_interpreter=/nonexistent/python3"],
    )
    statuses = {(e["task"], e["host"]): e["status"] for e in pythonless.results}
    for node in cluster.nodes.values():
        assert statuses[("shell, no Python", node["name"])] == "ok", pythonless.output[-3000:]
        assert statuses[("module, no Python", node["name"])] == "failed"
        assert statuses[("unpiped, no Python", node["name"])] == "failed"
    shell = {e["host"]: e["result"] for e in run.results if e["task"] == "shell"}
    module = {e["host"]: e["result"] for e in run.results if e["task"] == "module"}
    assert sorted(shell) == sorted(module) == ["gpu-1", "gpu-2", "gpu-3"]
    for node in cluster.nodes.values():
        by_shell, by_module = shell[node["name"]], module[node["name"]]
        for key in ("gpu", "hostname", "mounts", "msg"):
            assert by_shell[key] == by_module[key], (key, by_shell[key], by_module[key])
        assert by_shell["hostname"] == node["hostname"] and by_shell["gpu"]["count"] == 1
        assert by_shell["mounts"]["mounted"] == ["/lambda/nfs/data"] and by_shell["mounts"]["problem"] is None
        assert by_module["reachable"] == {f"{node['ip']}:22": True} and by_shell["reachable"] == {}
        by_module_unpiped = next(e["result"] for e in unpiped.results if e["host"] == node["name"])
        assert {key: by_module_unpiped[key] for key in ("gpu", "hostname", "mounts")} == {
            key: by_shell[key] for key in ("gpu", "hostname", "mounts")
        }
        as_root = next(e["result"] for e in run.results if e["task"] == "shell as root" and e["host"] == node["name"])
        assert {key: as_root[key] for key in ("gpu", "hostname", "mounts")} == {
            key: by_shell[key] for key in ("gpu", "hostname", "mounts")
        }


def test_gpu_node_info_waits_until_the_node_accepts_a_connection(cluster):
    node = cluster.nodes["gpu-3"]
    started = cluster.ansible.tmp_path / "read-started"
    started.unlink(missing_ok=True)
    done = threading.Event()

    def reopen() -> None:
        # Some seconds after the read begins, however long ansible-playbook took to get there on a busy machine.
        deadline = time.monotonic() + 120
        while not started.exists() and not done.is_set() and time.monotonic() < deadline:
            time.sleep(0.1)
        if not done.wait(5):
            cluster.sim.set_node(node["id"], private_network=True)

    cluster.sim.set_node(node["id"], private_network=False)
    opener = threading.Thread(target=reopen)
    opener.start()
    try:
        run = read_by_private_address(cluster, node, started=started, connect_timeout=120)
    finally:
        done.set()
        opener.join()
        cluster.sim.set_node(node["id"], private_network=True)
    run.assert_ok()
    result = run.task("read")
    assert result["connect_seconds"] > 0 and result["hostname"] == node["hostname"], result


def test_gpu_node_info_gives_up_after_connect_timeout_with_the_last_error(cluster):
    node = cluster.nodes["gpu-3"]
    cluster.sim.set_node(node["id"], private_network=False)
    try:
        started = time.monotonic()
        run = read_by_private_address(cluster, node, connect_timeout=2)
        elapsed = time.monotonic() - started
    finally:
        cluster.sim.set_node(node["id"], private_network=True)
    result = run.task("read")
    assert result["_status"] == "unreachable" and run.rc != 0, result
    assert "connect_timeout: the node did not accept a connection within 2 s: " in result["msg"], result
    assert "refused" in result["msg"] and elapsed >= 2


def test_a_wrong_key_or_a_changed_host_key_fails_configure_at_once_naming_what_to_fix(cluster, tmp_path):
    read = "lambdalabs.cloud.gpu_node : Read and check the node's GPUs, hostname and mounts"

    def configure(known_hosts: Path, **extra_vars: Any) -> tuple[Run, float]:
        """configure over fresh connections: the master connection of an earlier run would need no key."""
        started = time.monotonic()
        run = cluster.ansible.playbook(
            plays=import_playbook("configure"),
            inventory=str(cluster.inventory),
            extra_vars=extra_vars,  # gpu_node_connect_timeout stays 600 s
            args=["-c", "ssh"],
            env={"ANSIBLE_SSH_ARGS": ssh_args(known_hosts, master="no") + " -o ControlPath=none"},
        )
        return run, time.monotonic() - started

    wrong = tmp_path / "wrong-key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(wrong)], check=True)
    refused, took = configure(
        cluster.ansible.known_hosts, configure_hosts=cluster.group, ansible_ssh_private_key_file=str(wrong)
    )
    assert took < 30 and refused.rc != 0, refused.output[-3000:]
    messages = sorted(result["msg"] for result in refused.tasks(read))
    assert messages == [
        f"{name}: the node refused the SSH key {wrong} (Permission denied (publickey)): give the private key of the "
        "Lambda SSH key the node was launched with (ansible_ssh_private_key_file), and the node's user (ansible_user, "
        "ubuntu on Lambda's images)."
        for name in cluster.nodes
    ]
    # A known_hosts that remembers another key for a node's address (as after Lambda gave the address to a new node).
    node = cluster.nodes["gpu-1"]
    stale = tmp_path / "known_hosts"
    other = (tmp_path / "wrong-key.pub").read_text().split()
    stale.write_text(f"{node['ip']} {other[0]} {other[1]}\n")
    changed, took = configure(stale, configure_hosts="gpu-1")
    assert took < 30 and changed.rc != 0
    message = changed.task(read)["msg"]
    assert message.startswith(f"gpu-1: the node's host key differs from the one in line 1 of {stale}"), message
    assert f"ssh-keygen -f {stale} -R {node['ip']}" in message


def test_restart_drops_ssh_then_brings_it_back_with_the_files(cluster):
    node = cluster.nodes["gpu-1"]
    run = cluster.ansible.playbook(
        [
            {
                "name": "restart",
                "lambdalabs.cloud.lambda_instance": {"name": node["name"], "state": "restarted", "wait": False},
            }
        ]
    )
    run.assert_ok()
    deadline = time.monotonic() + 30
    refused_seen = False
    while time.monotonic() < deadline and not refused_seen:
        refused_seen = ssh_refused(cluster.key, node["ip"])
    cluster.sim.wait_for_status(node["id"], "active", timeout=60)
    back = cluster.adhoc("-m", "ansible.builtin.command", "-a", "cat /lambda/nfs/data/hello", "--limit", node["name"])
    assert back.returncode == 0 and "written on gpu-1" in back.stdout, back.stdout + back.stderr
    assert refused_seen or cluster.sim.node(node["id"])["boots"] == 2


def recorded_hosts(known_hosts: Path) -> dict[str, str]:
    """The addresses in a known_hosts file (unhashed, as ssh writes them here), with their keys."""
    lines = known_hosts.read_text().splitlines() if known_hosts.exists() else []
    return {line.split()[0]: line.split(maxsplit=1)[1] for line in lines if line.strip()}


def test_after_teardown_ssh_is_refused_and_the_host_keys_are_forgotten(cluster):
    known = recorded_hosts(cluster.ansible.known_hosts)
    assert {node["ip"] for node in cluster.nodes.values()} <= set(known), known  # checked and pinned on first use
    down = cluster.ansible.playbook(
        plays=import_playbook("teardown"),
        extra_vars={"lambda_cluster_name": "gpu", "lambda_cluster_known_hosts": str(cluster.ansible.known_hosts)},
    )
    down.assert_ok()
    for node in cluster.nodes.values():
        assert ssh_refused(cluster.key, node["ip"]), node["name"]
    assert all(not node["ready"] and not node["pid"] for node in cluster.sim.nodes()), cluster.sim.nodes()
    left = recorded_hosts(cluster.ansible.known_hosts)
    assert not {address for node in cluster.nodes.values() for address in (node["ip"], node["private_ip"])} & set(left)


def again(count: int, types: list[str] | None = None, **role_vars: Any) -> dict[str, Any]:
    """The provision variables of the second cluster, "again": ``count`` nodes of ``types``, and the cluster role's
    ``role_vars`` (without their lambda_cluster_ prefix)."""
    return {
        "lambda_cluster_name": "again",
        "lambda_cluster_nodes": {"count": count},
        "lambda_cluster_defaults": {
            "instance_type": types or ["gpu_1x_a10"],
            "region": ["us-east-1"],
            "ssh_key_name": "cluster",
        },
        "lambda_cluster_launch_interval": 0,
        **{f"lambda_cluster_{name}": value for name, value in role_vars.items()},
    }


def test_a_second_cluster_on_the_same_addresses_configures_with_host_key_checking_on(cluster):
    # The teardown above freed the addresses; the simulator, as Lambda does, gives them to the next nodes, whose host
    # keys are new. Host key checking stays on (accept-new): without the teardown's cleanup this run would be refused.
    old = {node["ip"]: node for node in cluster.nodes.values()}
    deadline = time.monotonic() + 30
    while any(item["status"] != "active" for item in cluster.sim.state()["instances"]) and time.monotonic() < deadline:
        time.sleep(0.2)
    variables = again(3)
    cluster.ansible.playbook(plays=import_playbook("provision"), extra_vars=variables).assert_ok()
    new = {item["ip"]: item for item in cluster.sim.state()["instances"] if item["status"] == "active"}
    assert set(new) == set(old) and not {item["id"] for item in new.values()} & {item["id"] for item in old.values()}
    cluster.play("configure", configure_hosts="lambda_cluster_again").assert_ok()
    pinned = recorded_hosts(cluster.ansible.known_hosts)
    assert set(new) <= set(pinned), pinned


def test_scaling_down_with_remove_extra_converges_in_one_run(cluster):
    # The provision waits for SSH on the nodes it keeps (wait_for_ssh is on): the one it terminates is not waited for.
    variables = again(2, remove_extra=True, known_hosts=str(cluster.ansible.known_hosts))
    run = cluster.ansible.playbook(plays=import_playbook("provision"), extra_vars=variables)
    run.assert_ok()
    live = sorted(i["name"] for i in cluster.sim.state()["instances"] if i["status"] in ("booting", "active"))
    assert live == ["again-1", "again-2"]
    summary = "\n".join(next(e["result"]["msg"] for e in run.results if e["task"].endswith("Show the cluster")))
    assert "Cluster again: 2 node(s)" in summary and "Terminated (beyond the wanted nodes): again-3" in summary


def test_a_node_turned_unhealthy_mid_wait_ends_the_clusters_wait_within_one_poll(cluster):
    # A node that boots for 10 minutes joins the two that answer SSH; Lambda's health checks fail it mid-boot.
    cluster.sim.configure(boot_seconds=600)
    started = cluster.ansible.start_playbook(plays=import_playbook("provision"), extra_vars=again(3))
    deadline = time.monotonic() + 120
    booting: list[dict[str, Any]] = []
    while not booting:  # launched; then the role's wait polls, every 1 to 3 s
        assert time.monotonic() < deadline and started.process.poll() is None, started.results()[-3:]
        booting = [i for i in cluster.sim.state()["instances"] if i["name"] == "again-3" and i["status"] == "booting"]
        time.sleep(0.2)
    polls = len(cluster.sim.requests("GET", "/instances"))
    while len(cluster.sim.requests("GET", "/instances")) < polls + 2:
        assert time.monotonic() < deadline and started.process.poll() is None, started.results()[-3:]
        time.sleep(0.2)
    cluster.sim.set_instance(booting[0]["id"], status="unhealthy")
    turned = time.monotonic()
    run = started.wait(timeout=120)
    ended = time.monotonic()
    cluster.sim.configure(boot_seconds=0.3)
    cluster.sim.api("POST", "/instance-operations/terminate", {"instance_ids": [booting[0]["id"]]})
    # The wait ends at the next poll and fails the play in one line that names the node and says what to do.
    assert run.rc != 0 and ended - turned < 3 + 10, ended - turned  # one poll (3 s at most) and the role's last tasks
    failed = run.failure(
        "lambdalabs.cloud.cluster : Check that every node is up",
        "again-3",
        "is unhealthy, which waiting cannot mend: restart it",
        "and provision again to replace it",
    )
    assert "\n" not in failed["msg"]
    warning = next(e["result"]["msg"] for e in run.results if e["task"].endswith("Warn about unhealthy nodes"))
    assert warning.startswith("Warning: again-3 of cluster again is unhealthy")
    deadline = time.monotonic() + 30
    while any(i["name"] == "again-3" and i["status"] != "terminated" for i in cluster.sim.state()["instances"]):
        assert time.monotonic() < deadline
        time.sleep(0.2)


def test_growing_a_cluster_never_fails_over_to_another_type(cluster):
    cluster.sim.seed(capacity={"gpu_1x_a10": []})  # the cluster's type runs out; A100s are there
    launches = len(cluster.sim.requests("POST", "/instance-operations/launch"))
    variables = again(3, types=["gpu_1x_a10", "gpu_1x_a100_sxm4"])
    run = cluster.ansible.playbook(plays=import_playbook("provision"), extra_vars=variables)
    assert run.rc != 0
    assert len(cluster.sim.requests("POST", "/instance-operations/launch")) == launches  # no A100 joined the A10s
    types = {i["instance_type"]["name"] for i in cluster.sim.state()["instances"] if i["status"] == "active"}
    assert types == {"gpu_1x_a10"}


def test_a_job_that_ends_brings_its_log_home_and_tears_its_cluster_down(cluster, tmp_path):
    logs = tmp_path / "logs"
    # Without this module's -e ansible_python_interpreter, which would reach localhost too: the job runner needs no
    # Python on the nodes.
    run = cluster.ansible.playbook(
        plays=import_playbook("run_and_teardown"),
        inventory=str(cluster.inventory),
        args=["-c", "ssh"],
        extra_vars={
            "lambda_cluster_name": "again",
            "run_command": "echo done on $(hostname)",
            "run_log_dir": str(logs),
            "run_require_expiry": False,  # "again" was provisioned without lambda_cluster_ttl_hours
            "lambda_cluster_known_hosts": str(cluster.ansible.known_hosts),
        },
    )
    run.assert_ok()
    assert (
        "Cluster again has no expiry"
        in run.task("Say where the job runs, where its logs go and when the cluster ends")["msg"]
    )
    (run_dir,) = logs.iterdir()
    assert sorted(log.name for log in run_dir.glob("*.log")) == ["again-1.log"]
    assert (run_dir / "again-1.log").read_text().startswith("done on ")
    assert not [i for i in cluster.sim.state()["instances"] if i["status"] in ("booting", "active")]
