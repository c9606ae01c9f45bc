# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""From nodes to a training cluster, on three real SSH nodes of the simulator: the training_cluster role, its
distributed smoke test, reaping idle GPUs, and running a job then tearing down.

One pytest worker takes the whole module; the tests run in order on one cluster.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from tests.integration.support import NodeCluster, Run, import_playbook, live, node_cluster
from tests.local_packages import NoLocalSource, smoke_extra_vars


class Cluster(NodeCluster):
    def train(self, **extra_vars: Any) -> Run:
        return self.play("train", train_hosts=self.group, **extra_vars)


def task_results(run, name: str) -> dict[str, dict[str, Any]]:
    return {e["host"]: e["result"] | {"_status": e["status"]} for e in run.results if e["task"].endswith(f" : {name}")}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[Cluster]:
    interpreter = {"ansible_python_interpreter": "/usr/bin/python3"}
    ttl = {"lambda_cluster_ttl_hours": 2}
    with node_cluster(
        tmp_path_factory, "llm", Cluster, inventory_vars=interpreter, play_args=["-f", "8"], role_vars=ttl
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


def local_smoke_vars() -> dict[str, str]:
    """PyTorch from the controller's local package sources (its CPU build), never the network's CUDA build."""
    try:
        return smoke_extra_vars()
    except NoLocalSource as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"the smoke test must run under CI=true: {exc}", pytrace=False)
        pytest.skip(str(exc))


def test_the_smoke_test_all_reduces_across_every_node(cluster):
    run = cluster.train(training_cluster_smoke_test=True, **local_smoke_vars())
    run.assert_ok()
    verdict = next(iter(task_results(run, "Record the smoke test's verdict").values()))["ansible_facts"]
    smoke = verdict["lambda_training_smoke"]
    assert smoke["ok"] and smoke["backend"] == "gloo" and smoke["expected"] == 6
    assert {result["rank"] for result in smoke["results"].values()} == {0, 1, 2}
    assert all(result["sum"] == 6 and result["world_size"] == 3 for result in smoke["results"].values())
    assert smoke["summary"].startswith("all_reduce across 3 node(s) with gloo: sum 6 on every rank, in ")
    # PyTorch came from the local sources: no CUDA libraries were pulled from the network.
    packages = cluster.on_nodes("/lambda/nfs/data/.lambda-cluster/venv/bin/python -m pip list --format freeze")
    assert all("torch==" in listed and "nvidia" not in listed.lower() for listed in packages.values()), packages


# ------------------------------------------------------------------ idle GPUs
def test_reap_idle_lists_and_terminates_only_the_idle_node(cluster):
    idle, busy = cluster.nodes["llm-1"], cluster.nodes["llm-2"]
    cluster.sim.set_node(idle["id"], gpu_utilization=0)
    cluster.sim.set_node(busy["id"], gpu_utilization=80)
    cluster.sim.set_node(cluster.nodes["llm-3"]["id"], gpu_utilization=55)
    window = {"reap_idle_hosts": "lambda_cluster_llm", "reap_idle_minutes": 0.05, "reap_idle_samples": 3}
    dry = cluster.play("reap_idle", **window)
    dry.assert_ok()
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
    assert "Terminated 1 idle node(s), saving $0.75 per hour." in saved


# ------------------------------------------------------------------ run a job, then tear down
# A short margin before the expiry and a short heartbeat, so that the runs fit a test; progress lines every second.
JOB = {"run_expiry_margin": 5, "run_heartbeat_seconds": 6, "run_progress_seconds": 1}
REFUSE = "Refuse a job that must not start"


def terminations(sim) -> int:
    return len(sim.requests("POST", "/instance-operations/terminate"))


def job_logs(root: Path) -> dict[str, str]:
    """The logs a run brought home: node -> its log (one run directory under ``root``)."""
    (run_dir,) = root.iterdir()
    return {log.stem: log.read_text() for log in run_dir.glob("*.log")}


def test_a_job_on_a_missing_misspelt_or_unreadable_cluster_fails_and_terminates_nothing(cluster, tmp_path):
    before, terminated = [i["id"] for i in live(cluster.sim)], terminations(cluster.sim)
    misspelt = cluster.play("run_and_teardown", lambda_cluster_name="lmm", run_command="true", **JOB)
    assert misspelt.rc != 0
    misspelt.failure(REFUSE, "No cluster named 'lmm': clusters in the account: llm (2 node(s)).", "Nothing was run")
    unnamed = cluster.play("run_and_teardown", run_command="true", **JOB)
    assert unnamed.rc != 0
    unnamed.failure(REFUSE, "lambda_cluster_name: is required", "Clusters in the account: llm (2 node(s))")
    # An inventory source that cannot be read (a wrong API key: 401) gives no host; the API still lists the nodes.
    unreadable = tmp_path / "inventory"
    shutil.copytree(cluster.inventory, unreadable)
    source = unreadable / "nodes.lambda_cloud.yml"
    source.write_text(source.read_text() + "api_key: not-the-key\n")
    blind = cluster.ansible.playbook(
        plays=import_playbook("run_and_teardown"),
        inventory=str(unreadable),
        extra_vars={"lambda_cluster_name": "llm", "run_command": "true", **JOB},
        args=["-c", "ssh"],
    )
    assert blind.rc != 0
    blind.failure(REFUSE, "The inventory has no host in group lambda_cluster_llm", "lists 2 active node(s)")
    assert [i["id"] for i in live(cluster.sim)] == before and terminations(cluster.sim) == terminated


def test_a_job_on_every_node_reports_each_rank_and_brings_every_log_home(cluster, tmp_path):
    cluster.train().assert_ok()  # the rank variables of the two nodes left
    job = 'echo "rank $NODE_RANK of $NNODES on $(hostname)"; if [ "$NODE_RANK" != 0 ]; then sleep 3; exit 3; fi'
    logs = tmp_path / "logs"
    run = cluster.play(
        "run_and_teardown",
        lambda_cluster_name="llm",
        run_on="all",
        run_command=job,
        run_log_dir=str(logs),
        teardown_on_failure=False,
        **JOB,
    )
    assert run.rc != 0
    where = run.task("Say where the job runs, where its logs go and when the cluster ends")["msg"]
    assert "runs on llm-2, llm-3" in where and "expires at" in where and "reap terminates it then" in where, where
    found = job_logs(logs)
    hostnames = {name: cluster.nodes[name]["hostname"] for name in ("llm-2", "llm-3")}
    assert found == {
        "llm-2": f"rank 0 of 2 on {hostnames['llm-2']}\n",
        "llm-3": f"rank 1 of 2 on {hostnames['llm-3']}\n",
    }
    (run_dir,) = logs.iterdir()
    assert run.task("Show how the job ended on each node")["msg"] == [
        f"llm-2: succeeded, exit status 0; log: {run_dir}/llm-2.log",
        f"llm-3: failed, exit status 3; log: {run_dir}/llm-3.log",
    ]
    run.failure("Fail when the job failed", "llm-3: the job ended with exit status 3", "left running for a look")
    assert re.search(r"llm-3: running for \d+ s; log: rank 1 of 2", run.stdout), run.stdout[-3000:]
    assert [i["name"] for i in live(cluster.sim)] == ["llm-2", "llm-3"]


def provision_orphan(cluster, ttl_hours: float) -> dict[str, Any]:
    """A one-node cluster named orphan, with an expiry; returns its node."""
    run = cluster.ansible.playbook(
        plays=import_playbook("provision"),
        extra_vars={
            "lambda_cluster_name": "orphan",
            "lambda_cluster_nodes": {"count": 1},
            "lambda_cluster_ttl_hours": ttl_hours,
            "lambda_cluster_defaults": {
                "instance_type": ["gpu_1x_a10"],
                "region": ["us-east-1"],
                "ssh_key_name": "cluster",
            },
            "lambda_cluster_launch_interval": 0,
        },
    )
    run.assert_ok()
    (node,) = live(cluster.sim, prefix="orphan-")
    return node


def node_job_log(cluster, node: dict[str, Any]) -> str:
    """The job log on the node, read from the machine (empty before the job starts, or without the node)."""
    root = cluster.sim.node(node["id"])["root_dir"]
    if not root:
        return ""
    return "".join(log.read_text() for log in Path(root, "home/ubuntu/.lambda-jobs").glob("*/job.log"))


def wait_for_job(started, cluster, *nodes: dict[str, Any], timeout: float = 60) -> None:
    """Until the job wrote "up" on each node; fails with the playbook's output if it ends or takes too long."""
    deadline = time.monotonic() + timeout
    while not all("up" in node_job_log(cluster, node) for node in nodes):
        if started.process.poll() is not None or time.monotonic() > deadline:
            started.process.kill()
            ended = started.wait(timeout=30)
            raise AssertionError(f"the job did not start (rc {ended.rc}): {ended.output[-3000:]}")
        time.sleep(0.2)


def test_a_job_that_ends_tears_the_cluster_down_and_one_whose_controller_stops_is_reaped_at_its_expiry(
    cluster, tmp_path
):
    provision_orphan(cluster, ttl_hours=1)
    logs = tmp_path / "logs"
    # The teardown forgets the node's host key: Lambda gives its address to the next node, with another key.
    known = str(cluster.ansible.known_hosts)
    done = cluster.play(
        "run_and_teardown",
        lambda_cluster_name="orphan",
        run_command="echo done",
        run_log_dir=str(logs),
        lambda_cluster_known_hosts=known,
        **JOB,
    )
    done.assert_ok()
    assert job_logs(logs) == {"orphan-1": "done\n"}
    assert not live(cluster.sim, prefix="orphan-")
    # The controller stops during the job: the job goes on, and reap ends the cluster at its expiry.
    node = provision_orphan(cluster, ttl_hours=0.008)
    started = cluster.start_play(
        "run_and_teardown",
        lambda_cluster_name="orphan",
        run_command="echo up; sleep 300",
        run_log_dir=str(tmp_path / "orphaned"),
        **JOB,
    )
    wait_for_job(started, cluster, node)
    started.process.send_signal(signal.SIGTERM)
    stopped = started.wait(timeout=60)
    assert stopped.rc != 0
    assert [i["id"] for i in live(cluster.sim, prefix="orphan-")] == [node["id"]]
    tags = {tag["key"]: tag["value"] for tag in node["tags"]}
    expires = datetime.strptime(tags["expires-at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    time.sleep(max(0.0, expires.timestamp() - time.time()) + 1)
    reaped = cluster.play("reap", reap_confirm=True)
    reaped.assert_ok()
    assert not live(cluster.sim, prefix="orphan-")


def test_killing_the_head_node_mid_job_fails_it_within_the_heartbeat_and_tears_down(cluster, tmp_path):
    logs = tmp_path / "logs"
    head, other = cluster.nodes["llm-2"], cluster.nodes["llm-3"]
    started = cluster.start_play(
        "run_and_teardown",
        lambda_cluster_name="llm",
        run_on="all",
        run_command='echo "rank $NODE_RANK up"; sleep 300',
        run_log_dir=str(logs),
        lambda_cluster_known_hosts=str(cluster.ansible.known_hosts),
        **JOB,
    )
    wait_for_job(started, cluster, head, other)
    os.kill(cluster.sim.node(head["id"])["pid"], signal.SIGKILL)
    run = started.wait(timeout=120)
    assert run.rc != 0
    failure = run.failure("Fail when the job failed", "The cluster was torn down.")["msg"]
    assert re.search(r"llm-2 did not answer for [67] s \(run_heartbeat_seconds 6\)", failure), failure
    # The surviving node's job was stopped, and its log came home; the dead node's could not.
    assert job_logs(logs) == {"llm-3": "rank 1 up\n"}
    assert (
        run.task("Show how the job ended on each node")["msg"][0] == "llm-2: lost; no log (the node could not give it)"
    )
    assert live(cluster.sim) == []
