# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""From nodes to a training cluster, on three real SSH nodes of the simulator: the training_cluster role, its
distributed smoke test, and reaping idle GPUs. Jobs on a cluster are in test_cluster_jobs.py.

One pytest worker takes the whole module; the tests run in order on one cluster.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.support import NodeCluster, Run, live, node_cluster, torch_on_nodes
from tests.simulator.fabric_check import machine_memory_mib


class Cluster(NodeCluster):
    def train(self, **extra_vars: Any) -> Run:
        return self.play("train", train_hosts=self.group, **extra_vars)


class MemoryWatch:
    """The lowest available memory of the machine (MemAvailable) while the block runs, sampled every 0.2 s."""

    def __enter__(self) -> MemoryWatch:
        self.total_mib, self.start_mib = machine_memory_mib()
        self.lowest_mib = self.start_mib
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.2):
            self.lowest_mib = min(self.lowest_mib, machine_memory_mib()[1])

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def drop_mib(self) -> int:
        return self.start_mib - self.lowest_mib


def task_results(run, name: str) -> dict[str, dict[str, Any]]:
    return {e["host"]: e["result"] | {"_status": e["status"]} for e in run.results if e["task"].endswith(f" : {name}")}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[Cluster]:
    # No shared file system: the guides' test (test_docs_examples.py) trains on a cluster with one.
    interpreter = {"ansible_python_interpreter": "/usr/bin/python3"}
    with node_cluster(
        tmp_path_factory, "llm", Cluster, inventory_vars=interpreter, play_args=["-f", "8"], file_system_names=[]
    ) as cluster:
        yield cluster


def test_every_node_gets_the_same_hostfile_and_its_own_env(cluster):
    run = cluster.train()
    run.assert_ok()
    files = {
        host: dict(zip(("hostfile", "env", "hosts"), (part.strip("\n") for part in text.split("@@"))))
        for host, text in cluster.on_nodes(
            "sh -c 'cat /etc/lambda-cluster/hostfile; echo @@; cat /etc/lambda-cluster/env; echo @@; cat /etc/hosts'"
        ).items()
    }
    assert {found["hostfile"] for found in files.values()} == {"llm-1 slots=1\nllm-2 slots=1\nllm-3 slots=1"}
    head = cluster.nodes["llm-1"]["private_ip"]
    for rank, name in enumerate(["llm-1", "llm-2", "llm-3"]):
        env = files[name]["env"]
        assert f'export MASTER_ADDR="{head}"' in env and 'export MASTER_PORT="29500"' in env
        assert 'export NNODES="3"' in env and f'export NODE_RANK="{rank}"' in env and 'NPROC_PER_NODE="1"' in env
        assert 'export NCCL_SOCKET_IFNAME="lo"' in env  # the interface of the nodes' (loopback) private network
    for name, node in cluster.nodes.items():
        assert all(f"{node['private_ip']} {name}" in found["hosts"] for found in files.values())
    checks = task_results(run, "Check that the cluster can train")
    assert all("reaches every node" in result["msg"] for result in checks.values()), checks


def test_nodes_reach_each_other_by_name_over_ssh_as_ubuntu(cluster):
    answers = cluster.on_nodes("sh -c 'ssh -o BatchMode=yes llm-2 hostname && ssh -o BatchMode=yes llm-3 id -un'")
    assert set(answers.values()) == {f"{cluster.nodes['llm-2']['hostname']}\nubuntu"}


def test_a_second_run_changes_nothing(cluster):
    again = cluster.train()
    again.assert_ok()
    assert re.findall(r"changed=(\d+)", again.stdout) == ["0"] * 4, again.stdout  # localhost checks the hosts


def test_broken_nodes_fail_with_one_line_naming_each(cluster):
    # llm-3 stops answering on its private address and shows no GPU: the others cannot reach it, and it fails on its
    # GPUs alone (it still reaches the others).
    unreachable = cluster.nodes["llm-3"]
    cluster.sim.set_node(unreachable["id"], private_network=False, gpu_count=0)
    try:
        run = cluster.train()
    finally:
        cluster.sim.set_node(unreachable["id"], private_network=True, gpu_count=1)
    failed = {
        host: r for host, r in task_results(run, "Check that the cluster can train").items() if r["_status"] == "failed"
    }
    assert set(failed) == {"llm-1", "llm-2", "llm-3"}, run.output[-3000:]
    for host in ("llm-1", "llm-2"):
        message = failed[host]["msg"]
        assert "\n" not in message
        assert f"{host} cannot reach llm-3 at its private address {unreachable['private_ip']}:22" in message, message
        assert "GPU" not in message, message
    # llm-1's next node by name is llm-2, which it reaches: its one problem is llm-3's address.
    assert failed["llm-1"]["msg"].count("llm-1 ") == 1, failed["llm-1"]["msg"]
    assert failed["llm-3"]["msg"] == "llm-3 shows 0 GPU(s) but its instance type has 1."


def test_the_smoke_test_all_reduces_across_every_node_with_the_images_pytorch(cluster):
    # As docs/training.md runs it, without a shared file system and without package settings: the nodes carry
    # Lambda Stack's stand-in (make lambda-stack), python3 imports PyTorch, so nothing is installed.
    with torch_on_nodes(), MemoryWatch() as memory:
        run = cluster.train(training_cluster_smoke_test=True)
    run.assert_ok()
    # Far from the machine's memory limit: the machine's available memory fell by less than a tenth of it.
    print(f"smoke test on 3 nodes: available memory fell by at most {memory.drop_mib} MiB of {memory.total_mib} MiB")
    assert memory.drop_mib < memory.total_mib // 10, (memory.drop_mib, memory.total_mib)
    verdict = next(iter(task_results(run, "Record the smoke test's verdict").values()))["ansible_facts"]
    smoke = verdict["lambda_training_smoke"]
    assert smoke["ok"] and smoke["backend"] == "gloo" and smoke["expected"] == 6
    assert {result["rank"] for result in smoke["results"].values()} == {0, 1, 2}
    assert all(result["sum"] == 6 and result["world_size"] == 3 for result in smoke["results"].values())
    assert smoke["summary"].startswith("all_reduce across 3 node(s) with gloo: sum 6 on every rank, in ")
    assert "The smoke test runs with the image's PyTorch 2.13.0+cpu." in run.output
    assert not any("Install PyTorch" in e["task"] and e["status"] == "changed" for e in run.results)
    assert cluster.on_nodes(
        "sh -c 'test ! -e ~/.lambda-cluster/venv && test ! -e /etc/lambda-cluster/venv && echo none'"
    ) == dict.fromkeys(cluster.nodes, "none")


def test_a_smoke_install_that_fails_names_each_node_and_the_cause(cluster):
    # The virtualenv goes to /run (64 MiB on a node). On llm-2, /run is full but 4 MiB: python3 -m venv finds no space.
    # On the others, pip's only package source holds no PyTorch.
    prepare = "install -d -o ubuntu -g ubuntu /run/smoke"
    fill = "sh -c 'fallocate -l $(( $(df --output=avail -B1 /run | tail -1) - 4194304 )) /run/fill'"
    for command, hosts in ((prepare, "all"), (fill, "llm-2")):
        done = cluster.adhoc("-l", hosts, "-m", "ansible.builtin.command", "-a", command, become=True)
        assert done.returncode == 0, done.stdout + done.stderr
    try:
        run = cluster.train(
            training_cluster_smoke_test=True,
            training_cluster_smoke_pytorch="venv",
            training_cluster_smoke_venv="/run/smoke/venv",
            training_cluster_smoke_pip_extra_args="--no-index --find-links /nonexistent",
        )
    finally:
        cluster.on_nodes("rm -rf /run/smoke /run/fill", become=True)
    assert run.rc != 0
    failed = task_results(run, "Fail with the node and the cause of the failed install")
    assert set(failed) == {"llm-1", "llm-2", "llm-3"}, failed
    prefix = "installing PyTorch for the smoke test failed:"
    assert failed["llm-2"]["msg"].startswith(f"llm-2: {prefix} no space left on device on the node ("), failed
    for host in ("llm-1", "llm-3"):
        message = failed[host]["msg"]
        assert message.startswith(f"{host}: {prefix} pip could not get torch==2.13.0, numpy from its package sources")
    assert all("\n" not in result["msg"] and "Traceback" not in result["msg"] for result in failed.values())


# ------------------------------------------------------------------ idle GPUs
def test_reap_idle_lists_and_terminates_only_the_idle_node(cluster):
    idle, busy = cluster.nodes["llm-1"], cluster.nodes["llm-2"]
    cluster.sim.set_node(idle["id"], gpu_utilization=0)
    cluster.sim.set_node(busy["id"], gpu_utilization=80)
    cluster.sim.set_node(cluster.nodes["llm-3"]["id"], gpu_utilization=55)
    window = {"reap_idle_hosts": "lambda_cluster_llm", "reap_idle_minutes": 0.05, "reap_idle_samples": 3}
    # A threshold over 100% would call a node at full load idle: refused before any node is sampled.
    over = cluster.play("reap_idle", reap_idle_threshold=101, reap_confirm=True, **window)
    assert over.rc != 0 and [e["task"] for e in over.results] == ["Check the variables, before any node is sampled"]
    assert "Invalid value for reap_idle_threshold: must be at most 100, got 101." in over.results[0]["result"]["msg"]
    dry = cluster.play("reap_idle", reap_idle_progress_seconds=1, **window)
    dry.assert_ok()
    # The controller takes the samples one at a time, and says between two how far the window is.
    progress = re.findall(
        r"gpu_node_info: (llm-\d): (\d)/3 utilization samples \(peak (\d+)%\), \d+ s of 3 s", dry.stdout
    )
    assert {"llm-1", "llm-2", "llm-3"} <= {host for host, _count, _peak in progress}, dry.stdout
    # Which counts a line shows depends on when it falls between the samples; each node's peak does not.
    assert ("llm-2", "80") in {(host, peak) for host, _count, peak in progress}, progress
    assert all(peak == "0" for host, _count, peak in progress if host == "llm-1"), progress
    listing = "\n".join(next(e["result"]["msg"] for e in dry.results if e["task"] == "List the idle nodes"))
    assert listing.startswith("Dry run: would have terminated 1 idle node(s), saving $0.75 per hour.")
    assert f"llm-1 ({idle['id']}): below 10% GPU utilization in every sample (peak 0%)" in listing
    assert "llm-2" not in listing and "llm-3" not in listing
    assert [i["name"] for i in live(cluster.sim, prefix="llm-")] == ["llm-1", "llm-2", "llm-3"]  # a dry run ends none

    known = cluster.ansible.known_hosts

    def pinned() -> set[str]:
        return {line.split()[0] for line in known.read_text().splitlines() if line.strip()}

    assert {idle["ip"], busy["ip"]} <= pinned()  # trusted on first use
    confirmed = cluster.play("reap_idle", reap_confirm=True, reap_known_hosts=str(known), **window)
    confirmed.assert_ok()
    assert [i["name"] for i in live(cluster.sim)] == ["llm-2", "llm-3"]
    # The reaped node's address will be another node's: its host key is forgotten, the others' are kept.
    assert idle["ip"] not in pinned() and busy["ip"] in pinned()
    saved = next(e["result"]["msg"] for e in confirmed.results if e["task"] == "Show what was saved")
    # Launched by the cluster role minutes ago: its launched-at tag counts the cost so far.
    assert re.fullmatch(
        r"Terminated 1 idle node\(s\), saving \$0\.75 per hour \(\$18\.00 per day\); they had cost \$0\.\d\d so "
        r"far\.",
        saved,
    ), saved
