# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark of the simulator's node fabric (``--nodes``): how fast nodes come up, what they cost, how many fit,
and how long ``lambdalabs.cloud.configure`` takes over SSH for 1, 4 and 8 nodes.

Run it from the repository root, as root, after ``make venv collection-link system-deps``::

    ANSIBLE_COLLECTIONS_PATH=$PWD/.tmp/collections .venv/bin/python -m tests.perf.bench_nodes [--capacity 10 50 100]

It prints one line per figure; docs/benchmarks-nodes.md records them.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from tests.integration.support import BIN, ssh_args
from tests.simulator.client import Simulator, node_fabric_unavailable


def keypair(directory: Path) -> Path:
    key = directory / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    return key


def start(key: Path) -> Simulator:
    sim = Simulator("--nodes", "--boot-seconds", "0", "--terminate-seconds", "0").start()
    sim.api("POST", "/ssh-keys", {"name": "bench", "public_key": key.with_suffix(".pub").read_text()})
    return sim


def launch(sim: Simulator, count: int, prefix: str) -> list[str]:
    ids = []
    for index in range(count):
        body = {"region_name": "us-east-1", "instance_type_name": "gpu_1x_a10", "ssh_key_names": ["bench"]}
        status, payload = sim.api("POST", "/instance-operations/launch", body | {"name": f"{prefix}-{index + 1}"})
        assert status == 200, payload
        ids.append(payload["data"]["instance_ids"][0])
    return ids


def ssh_ok(key: Path, address: str, known_hosts: Path) -> bool:
    """One ssh command, with host keys checked as the collection sets it up (trusted on first use, then pinned)."""
    command = ["ssh", *ssh_args(known_hosts).split(), "-i", str(key), "-o", "BatchMode=yes", "-o", "ConnectTimeout=2"]
    command += [f"ubuntu@{address}", "true"]
    return subprocess.run(command, capture_output=True, timeout=30, check=False).returncode == 0


def ssh_ready_seconds(sim: Simulator, key: Path, repeat: int) -> list[float]:
    """From the launch request to the first ssh command that succeeds, one node at a time."""
    times = []
    for index in range(repeat):
        started = time.monotonic()
        [instance_id] = launch(sim, 1, f"ready{index}")
        while True:
            instance = next(i for i in sim.state()["instances"] if i["id"] == instance_id)
            if instance["status"] == "active" and ssh_ok(key, instance["ip"], key.with_name(f"known_hosts-{index}")):
                break
            time.sleep(0.02)
        times.append(time.monotonic() - started)
        sim.api("POST", "/instance-operations/terminate", {"instance_ids": [instance_id]})
    return times


def node_memory_kib(pid: int) -> int:
    """The resident memory of every process in the PID namespace whose init is ``pid``."""
    namespace = os.readlink(f"/proc/{pid}/ns/pid")
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.readlink(f"/proc/{entry}/ns/pid") != namespace:
                continue
            with open(f"/proc/{entry}/status") as handle:
                total += next((int(line.split()[1]) for line in handle if line.startswith("VmRSS:")), 0)
        except OSError:
            continue
    return total


def capacity(key: Path, count: int) -> tuple[float, float]:
    """Start ``count`` nodes at once: seconds until all are active, and the median memory per node (MiB)."""
    sim = start(key)
    try:
        started = time.monotonic()
        ids = launch(sim, count, "many")
        while True:
            statuses = [i["status"] for i in sim.state()["instances"] if i["id"] in ids]
            if statuses.count("active") == count:
                break
            if time.monotonic() - started > 900:
                raise SystemExit(f"{count} nodes did not all become active in 15 minutes")
            time.sleep(0.2)
        ready = time.monotonic() - started
        pids = [node["pid"] for node in sim.nodes() if node["pid"]]
        memory = statistics.median(node_memory_kib(pid) for pid in pids[:20]) / 1024
        return ready, memory
    finally:
        sim.stop()


def busy_cpu_seconds() -> float:
    """CPU seconds the whole machine has spent not idle (/proc/stat): the controller's and the nodes' processes."""
    with open("/proc/stat", encoding="ascii") as handle:
        fields = [int(value) for value in handle.readline().split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def configure_seconds(key: Path, count: int, work: Path, repeat: int = 5) -> tuple[float, float]:
    """Median wall time, and median CPU time of the whole machine, of lambdalabs.cloud.configure over SSH on
    ``count`` nodes with 8 forks.

    The nodes' Python is named in the inventory (Lambda images have /usr/bin/python3), as docs/inventory.md
    recommends, so that Ansible does not discover it on every host first.
    """
    sim = start(key)
    try:
        ids = launch(sim, count, f"cfg{count}")
        for instance_id in ids:
            sim.wait_for_status(instance_id, "active", timeout=120)
        inventory = work / f"inventory-{count}"
        (inventory / "group_vars").mkdir(parents=True)
        (inventory / "bench.lambda_cloud.yml").write_text(yaml.safe_dump({"plugin": "lambdalabs.cloud.lambda_cloud"}))
        host_vars = {"ansible_ssh_private_key_file": str(key), "ansible_python_interpreter": "/usr/bin/python3"}
        (inventory / "group_vars" / "lambda.yml").write_text(yaml.safe_dump(host_vars))
        env = (
            dict(os.environ)
            | sim.env
            | {
                "HOME": str(work),
                "ANSIBLE_PIPELINING": "True",
                "ANSIBLE_SSH_ARGS": ssh_args(work / f"known_hosts-{count}", persist="30s"),
            }
        )
        command = [str(BIN / "ansible-playbook"), "lambdalabs.cloud.configure", "-i", str(inventory), "-f", "8"]
        command += ["-e", "configure_hosts=lambda"]
        times, cpu = [], []
        for _run in range(repeat):
            started, busy = time.monotonic(), busy_cpu_seconds()
            result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900, check=False)
            times.append(time.monotonic() - started)
            cpu.append(busy_cpu_seconds() - busy)
            if result.returncode != 0:
                raise SystemExit(
                    f"configure on {count} node(s) failed:\n{result.stdout[-3000:]}{result.stderr[-2000:]}"
                )
        return statistics.median(times), statistics.median(cpu)
    finally:
        sim.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="nodes timed from launch to SSH (default 5)")
    parser.add_argument("--capacity", type=int, nargs="*", default=[10, 50, 100], help="node counts started at once")
    args = parser.parse_args()
    reason = node_fabric_unavailable()
    if reason:
        print(f"The node fabric cannot run here: {reason}")
        return 2
    with tempfile.TemporaryDirectory(prefix="bench-nodes-") as directory:
        work = Path(directory)
        key = keypair(work)
        sim = start(key)
        try:
            ready = ssh_ready_seconds(sim, key, args.repeat)
        finally:
            sim.stop()
        print(
            f"launch to SSH ready, one node: median {statistics.median(ready):.2f} s, max {max(ready):.2f} s "
            f"({len(ready)} nodes, --boot-seconds 0)"
        )
        for count in args.capacity:
            seconds, memory = capacity(key, count)
            print(f"{count} nodes at once: all active in {seconds:.1f} s; median memory per node {memory:.1f} MiB RSS")
        measured = {count: configure_seconds(key, count, work) for count in (1, 4, 8)}
        times = {count: seconds for count, (seconds, _cpu) in measured.items()}
        for count, (seconds, cpu) in measured.items():
            print(
                f"configure over SSH, {count} node(s), 8 forks: {seconds:.1f} s, {cpu:.1f} s of CPU (median of 5 runs)"
            )
        per_node = (measured[8][1] - measured[1][1]) / 7
        print(f"CPU each node adds to a configure run: {per_node:.2f} s")
        ratio = times[8] / times[1]
        print(f"8 nodes / 1 node: {ratio:.2f}x (target: at most 2x) {'OK' if ratio <= 2 else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
