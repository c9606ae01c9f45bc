# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark of a cluster from nothing to configured: ``lambdalabs.cloud.provision -e provision_configure=true`` on
the simulator's SSH nodes, with Lambda's real pacing (one launch per 12 s, enforced by the simulator too) and 5 s
boots, for 1 and 8 nodes.

The launches alone take 12 x (N - 1) s, and the last node boots for 5 s more: the pacing bound. The figure that matters
is the overhead over that bound, which is what the collection adds (waiting, SSH, configuring).

Run it from the repository root, as root, after ``make venv collection-link system-deps``::

    ANSIBLE_COLLECTIONS_PATH=$PWD/.tmp/collections .venv/bin/python -m tests.perf.bench_cluster [--nodes 1 8] [--runs 3]

It prints one line per cluster size; docs/benchmarks-nodes.md records them.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.integration.support import BIN, ansible_env, ssh_args
from tests.simulator.client import Simulator, node_fabric_unavailable

LAUNCH_INTERVAL = 12.0
BOOT_SECONDS = 5.0


def provision_seconds(count: int, work: Path) -> float:
    """The wall time of one provision-and-configure run of a ``count``-node cluster, on a fresh simulator, with its
    files in ``work`` (a new directory each run)."""
    work.mkdir()
    key = work / f"key-{count}"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    sim = Simulator(
        "--nodes",
        "--boot-seconds",
        str(BOOT_SECONDS),
        "--terminate-seconds",
        "0",
        "--launch-interval",
        str(LAUNCH_INTERVAL),
    ).start()
    try:
        sim.api("POST", "/ssh-keys", {"name": "bench", "public_key": key.with_suffix(".pub").read_text()})
        variables = {
            "lambda_cluster_name": f"bench{count}",
            "lambda_cluster_nodes": {"count": count},
            "lambda_cluster_defaults": {
                "instance_type": ["gpu_1x_a10"],
                "region": ["us-east-1"],
                "ssh_key_name": "bench",
            },
            "provision_configure": True,
            "ansible_ssh_private_key_file": str(key),
        }
        command = [str(BIN / "ansible-playbook"), "lambdalabs.cloud.provision", "-f", "8", "-e", json.dumps(variables)]
        env = ansible_env(sim, {"ANSIBLE_SSH_ARGS": ssh_args(work / f"known_hosts-{count}")})
        started = time.monotonic()
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900, check=False)
        seconds = time.monotonic() - started
        if done.returncode != 0:
            raise SystemExit(f"provision of {count} node(s) failed:\n{done.stdout[-3000:]}{done.stderr[-2000:]}")
        return seconds
    finally:
        sim.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, nargs="+", default=[1, 8], help="cluster sizes (default: 1 8)")
    parser.add_argument("--runs", type=int, default=1, help="runs of each size; the median is printed too")
    args = parser.parse_args()
    why = node_fabric_unavailable()
    if why:
        sys.exit(f"the node fabric cannot run here: {why}")
    print(f"provision + configure, {LAUNCH_INTERVAL:g} s between launches, {BOOT_SECONDS:g} s boots")
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp:
        for count in args.nodes:
            bound = LAUNCH_INTERVAL * (count - 1) + BOOT_SECONDS
            overheads = []
            for run in range(args.runs):
                seconds = provision_seconds(count, Path(tmp) / f"{count}-{run}")
                overheads.append(seconds - bound)
                print(f"{count} node(s): {seconds:.1f} s, pacing bound {bound:g} s, overhead {seconds - bound:.1f} s")
            if args.runs > 1:
                print(f"{count} node(s): median overhead {statistics.median(overheads):.1f} s over {args.runs} runs")


if __name__ == "__main__":
    main()
