# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Jobs on a cluster of three real SSH nodes of the simulator (run_and_teardown and cluster_job): refusals that
terminate nothing, a job on every node with its ranks, a controller stopped mid-job and the reap that ends its
cluster, and a head node killed mid-job.

One pytest worker takes the whole module; the tests run in order on one cluster, the last one tears it down.
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

from tests.integration.support import import_playbook, live, node_cluster
from tests.integration.test_training_cluster import Cluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[Cluster]:
    interpreter = {"ansible_python_interpreter": "/usr/bin/python3"}
    ttl = {"lambda_cluster_ttl_hours": 2}
    with node_cluster(
        tmp_path_factory, "llm", Cluster, inventory_vars=interpreter, play_args=["-f", "8"], role_vars=ttl
    ) as cluster:
        cluster.train().assert_ok()  # the rank variables of every node
        yield cluster


# A short margin before the expiry and a short heartbeat, so that the runs fit a test; progress lines every second.
JOB = {"run_expiry_margin": 5, "run_heartbeat_seconds": 6, "run_progress_seconds": 1}
REFUSE = "Refuse a job that must not start"


def terminations(sim) -> int:
    return len(sim.requests("POST", "/instance-operations/terminate"))


def job_logs(root: Path) -> dict[str, str]:
    """The logs a run brought home: node -> its log (one run directory under ``root``)."""
    (run_dir,) = root.iterdir()
    return {log.stem: log.read_text() for log in run_dir.glob("*.log")}


def test_a_job_on_every_node_reports_each_rank_and_brings_every_log_home(cluster, tmp_path):
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
    assert "runs on llm-1, llm-2, llm-3" in where and "expires at" in where and "reap terminates it then" in where
    names = ["llm-1", "llm-2", "llm-3"]
    assert job_logs(logs) == {
        name: f"rank {rank} of 3 on {cluster.nodes[name]['hostname']}\n" for rank, name in enumerate(names)
    }
    (run_dir,) = logs.iterdir()
    assert run.task("Show how the job ended on each node")["msg"] == [
        f"llm-1: succeeded, exit status 0; log: {run_dir}/llm-1.log",
        f"llm-2: failed, exit status 3; log: {run_dir}/llm-2.log",
        f"llm-3: failed, exit status 3; log: {run_dir}/llm-3.log",
    ]
    run.failure("Fail when the job failed", "the job ended with exit status 3", "left running for a look")
    assert re.search(r"llm-[23]: running for \d+ s; log: rank [12] of 3", run.stdout), run.stdout[-3000:]
    assert [i["name"] for i in live(cluster.sim)] == names


def test_a_job_on_a_missing_misspelt_or_unreadable_cluster_fails_and_terminates_nothing(cluster, tmp_path):
    before, terminated = [i["id"] for i in live(cluster.sim)], terminations(cluster.sim)
    misspelt = cluster.play("run_and_teardown", lambda_cluster_name="lmm", run_command="true", **JOB)
    assert misspelt.rc != 0
    misspelt.failure(REFUSE, "No cluster named 'lmm': clusters in the account: llm (3 node(s)).", "Nothing was run")
    unnamed = cluster.play("run_and_teardown", run_command="true", **JOB)
    assert unnamed.rc != 0
    unnamed.failure(REFUSE, "lambda_cluster_name: is required", "Clusters in the account: llm (3 node(s))")
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
    blind.failure(REFUSE, "The inventory has no host in group lambda_cluster_llm", "lists 3 active node(s)")
    assert [i["id"] for i in live(cluster.sim)] == before and terminations(cluster.sim) == terminated


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


def test_a_job_whose_controller_stops_goes_on_and_reap_ends_its_cluster_at_the_expiry(cluster, tmp_path):
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
    head, others = cluster.nodes["llm-1"], [cluster.nodes["llm-2"], cluster.nodes["llm-3"]]
    started = cluster.start_play(
        "run_and_teardown",
        lambda_cluster_name="llm",
        run_on="all",
        run_command='echo "rank $NODE_RANK up"; sleep 300',
        run_log_dir=str(logs),
        lambda_cluster_known_hosts=str(cluster.ansible.known_hosts),
        **JOB,
    )
    wait_for_job(started, cluster, head, *others)
    os.kill(cluster.sim.node(head["id"])["pid"], signal.SIGKILL)
    run = started.wait(timeout=120)
    assert run.rc != 0
    failure = run.failure("Fail when the job failed", "The cluster was torn down.")["msg"]
    assert re.search(r"llm-1 did not answer for [67] s \(run_heartbeat_seconds 6\)", failure), failure
    # The surviving nodes' jobs were stopped, and their logs came home; the dead node's could not.
    assert job_logs(logs) == {"llm-2": "rank 1 up\n", "llm-3": "rank 2 up\n"}
    assert (
        run.task("Show how the job ended on each node")["msg"][0] == "llm-1: lost; no log (the node could not give it)"
    )
    assert live(cluster.sim) == []
