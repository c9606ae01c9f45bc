"""Benchmark of lambda_instance against the simulator; prints figures from the simulator's request log.

Run from the repository root after `make venv collection-link`:

    ANSIBLE_COLLECTIONS_PATH=.tmp/collections .venv/bin/python -m tests.perf.bench_modules

It measures
1. the API requests of an idempotent re-run of state=present (target: 1 GET, 0 writes);
2. requests, polls and wall time of launch + wait with --boot-seconds 20
   (target: active detected within one poll interval, at most 10 polls);
3. the wall time of launching 8 nodes at once with --launch-interval 12
   (target: at most 8 x 12 s + 10 s, no failed task).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.integration.support import BIN, PUBLIC_KEY
from tests.simulator.client import Simulator


def playbook(sim: Simulator, plays: list, inventory: str = "localhost,", forks: int = 5) -> tuple[int, float, str]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "play.yml"
        path.write_text(json.dumps(plays))
        inv = inventory
        if "\n" in inventory:
            inv = str(Path(tmp) / "hosts.ini")
            Path(inv).write_text(inventory)
        env = dict(os.environ, LAMBDA_API_URL=sim.url, LAMBDA_API_KEY=sim.api_key, ANSIBLE_NOCOLOR="1")
        started = time.monotonic()
        proc = subprocess.run(
            [
                str(BIN / "ansible-playbook"),
                str(path),
                "-i",
                inv,
                "-c",
                "local",
                "--forks",
                str(forks),
                "-e",
                f"ansible_python_interpreter={sys.executable}",
            ],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        return proc.returncode, time.monotonic() - started, proc.stdout + proc.stderr


def launch_play(hosts: str = "localhost", name: str = "bench", **args) -> list:
    module = {"name": name, "instance_type": "gpu_1x_a10", "region": "us-east-1", "ssh_key_name": "bench"} | args
    return [{"hosts": hosts, "gather_facts": False, "tasks": [{"lambdalabs.cloud.lambda_instance": module}]}]


class BenchSimulator(Simulator):
    """A simulator with the benchmark's SSH key."""

    def __enter__(self) -> Simulator:
        super().__enter__()
        self.api("POST", "/ssh-keys", {"name": "bench", "public_key": PUBLIC_KEY})
        return self


def idempotent_rerun() -> None:
    with BenchSimulator("--boot-seconds", "1") as sim:
        rc, _seconds, out = playbook(sim, launch_play(launch_interval=0))
        assert rc == 0, out
        sim.clear_requests()
        rc, seconds, out = playbook(sim, launch_play(launch_interval=0))
        assert rc == 0, out
        requests = sim.requests()
        gets = sum(1 for r in requests if r["method"] == "GET")
        print(f"idempotent re-run of present: {gets} GET, {len(requests) - gets} writes, {seconds:.2f} s wall")


def launch_and_wait() -> None:
    with BenchSimulator("--boot-seconds", "20") as sim:
        sim.clear_requests()
        rc, seconds, out = playbook(sim, launch_play(launch_interval=0))
        assert rc == 0, out
        requests = sim.requests()
        launch = next(r for r in requests if r["path"].endswith("/instance-operations/launch"))
        polls = [r for r in requests if r["method"] == "GET" and r["path"].startswith("/api/v1/instances/")]
        active_at = launch["at"] + 20
        detected_at = polls[-1]["at"]
        previous = polls[-2]["at"] if len(polls) > 1 else launch["at"]
        print(
            f"launch + wait (boot 20 s): {len(requests)} requests, {len(polls)} polls, {seconds:.1f} s wall, "
            f"active detected {detected_at - active_at:.1f} s after it became active "
            f"(last poll interval {detected_at - previous:.1f} s)"
        )


def eight_nodes() -> None:
    with BenchSimulator("--boot-seconds", "1", "--launch-interval", "12") as sim:
        inventory = "[nodes]\n" + "\n".join(f"n{i}" for i in range(8)) + "\n"
        plays = launch_play(hosts="nodes", name="node-{{ inventory_hostname }}")
        rc, seconds, out = playbook(sim, plays, inventory=inventory, forks=8)
        if rc != 0:
            print(out[-2000:])
        launches = sim.requests("POST", "/instance-operations/launch")
        ok = sum(1 for r in launches if r["status"] == 200)
        limited = sum(1 for r in launches if r["status"] == 429)
        print(
            f"8 nodes at --launch-interval 12: rc={rc}, {seconds:.1f} s wall (target <= {8 * 12 + 10} s), "
            f"{ok} launches, {limited} answered 429"
        )


if __name__ == "__main__":
    idempotent_rerun()
    launch_and_wait()
    eight_nodes()
