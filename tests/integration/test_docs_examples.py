# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every example of the provisioning, training and cost-control guides runs as written, in order, on the simulator
with real SSH nodes, the way a user runs it: ansible-playbook and ansible from the shell, in a working directory of
the guide's files, with a home directory of its own (the SSH key in ~/.ssh, known_hosts trusted on first use). ssh
reads the home directory of the account it runs as, not HOME: that key and known_hosts are given to it with
ANSIBLE_PRIVATE_KEY_FILE and ANSIBLE_SSH_ARGS, the only settings of the tests' own.

What each guide assumes is there first: an SSH key ``deploy`` (its private key in ~/.ssh) and a file system
``datasets``, capacity for the guide's instance types, the user's job script, and, for the training guide, the
cluster that the provisioning guide provisions. The only changes to what is written (``SUBSTITUTIONS``): the
simulator's API key for ``secret_...`` (the simulator's address is LAMBDA_API_URL), a log file in the working
directory for /var/log, and a window of seconds instead of 30 minutes for reap_idle. doc_examples.py says how each
block runs.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.integration.doc_examples import Example, cron_command, examples
from tests.integration.support import (
    BIN,
    COLLECTION,
    COLLECTIONS_ROOT,
    LAMBDA_STACK,
    live,
    require_node_fabric,
    torch_on_nodes,
)
from tests.simulator.client import Simulator

DOCS = COLLECTION / "docs"
# The job the guides start: each rank says who it is (torchrun's workers run it; it needs no GPU).
TRAIN_PY = "import os\nprint(f\"rank {os.environ['RANK']} of {os.environ['WORLD_SIZE']}\", flush=True)\n"
TRAIN_SH = '#!/bin/sh\necho "training on $(hostname)"\n'
JOB_DIR = "/lambda/nfs/datasets/job"


@dataclass
class Guide:
    """A user's shell on the simulator: the working directory, home and environment the examples run in."""

    sim: Simulator
    work: Path
    home: Path
    env: dict[str, str]
    count: int = 0

    def substitutions(self) -> list[tuple[str, str]]:
        return [
            ("secret_...", self.sim.api_key),
            ("/var/log/lambda-reap.log", str(self.work / "lambda-reap.log")),
            (
                "lambdalabs.cloud.reap_idle ",
                "lambdalabs.cloud.reap_idle -e reap_idle_minutes=0.05 -e reap_idle_samples=2 ",
            ),
        ]

    def shell(self, script: str, where: str, timeout: float = 600) -> str:
        """``script`` in bash, as written but for the substitutions; its output; fails the test naming ``where``."""
        for old, new in self.substitutions():
            script = script.replace(old, new)
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=self.work,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        assert done.returncode == 0, (
            f"{where} failed (rc {done.returncode}):\n{done.stdout[-4000:]}{done.stderr[-3000:]}"
        )
        return done.stdout

    def run(self, example: Example) -> str:
        """Run one example the way its kind says (doc_examples.py); what it printed."""
        kind = example.kind
        if kind == "output":
            return ""
        if kind == "file":
            (self.work / example.file_name).write_text(example.text)
            return ""
        if kind == "node":
            return self.on_nodes(example.text, example.where)
        if kind == "cron":
            return self.shell(cron_command(example.text), example.where)
        if kind == "controller":
            return self.shell(example.text, example.where)
        self.count += 1
        name = f"example-{self.count}.yml"
        (self.work / name).write_text(example.text)
        if kind == "variables":
            # Role variables: the provision playbook checks them, over the guide's variables file, in check mode.
            return self.shell(
                f"ansible-playbook lambdalabs.cloud.provision --check -e @training.yml -e @{name}", example.where
            )
        if kind == "tasks":
            play = {"name": "Example", "hosts": "localhost", "connection": "local", "gather_facts": False}
            (self.work / name).write_text(
                yaml.safe_dump([play | {"tasks": yaml.safe_load(example.text)}], sort_keys=False)
            )
        return self.shell(f"ansible-playbook {name}", example.where)

    def nodes(self, cluster: str = "training") -> list[dict]:
        tagged = [i for i in live(self.sim) if {"key": "cluster", "value": cluster} in (i.get("tags") or [])]
        return sorted(tagged, key=lambda i: i["name"])

    def ssh(self, node: dict) -> list[str]:
        """ssh to ``node`` as the user, without a master connection that would keep its output open."""
        known = f"UserKnownHostsFile={self.home / '.ssh' / 'known_hosts'}"
        options = ["-F", "/dev/null", "-o", known, "-o", "StrictHostKeyChecking=accept-new", "-o", "BatchMode=yes"]
        return ["ssh", "-i", self.env["ANSIBLE_PRIVATE_KEY_FILE"], *options, f"ubuntu@{node['ip']}"]

    def on_nodes(self, script: str, where: str) -> str:
        """``script`` on every node of the cluster at once, in the job's directory (as a multi-node job starts)."""
        started = [
            subprocess.Popen(
                [*self.ssh(node), "bash", "-s"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                env=self.env,
            )
            for node in self.nodes()
        ]
        for process in started:  # every node gets the script before any is waited for: a multi-node job waits for all
            process.stdin.write(f"cd {JOB_DIR}\n{script}")
            process.stdin.close()
        outputs = [process.stdout.read() for process in started]
        for process in started:
            process.wait(timeout=60)
        assert all(process.returncode == 0 for process in started), f"{where} failed on a node:\n" + "\n".join(outputs)
        return "".join(outputs)


@contextmanager
def guide(tmp_path: Path) -> Iterator[Guide]:
    """The simulator (real SSH nodes, Lambda Stack's stand-in), and a user who has what the guides assume."""
    require_node_fabric()
    stack = ["--lambda-stack", str(LAMBDA_STACK)] if (LAMBDA_STACK / ".installed").exists() else []
    sim = Simulator("--nodes", "--boot-seconds", "0.3", "--terminate-seconds", "0.3", *stack).start()
    # A short home: ssh's control sockets live under it, and a Unix socket's path has at most 108 bytes.
    home, work = Path(tempfile.mkdtemp(prefix="guide-")), tmp_path / "work"
    try:
        (home / ".ssh").mkdir(mode=0o700)
        work.mkdir()
        key = home / ".ssh" / "id_ed25519"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
        assert (
            sim.api("POST", "/ssh-keys", {"name": "deploy", "public_key": key.with_suffix(".pub").read_text()})[0]
            == 200
        )
        assert sim.api("POST", "/filesystems", {"name": "datasets", "region": "us-east-1"})[0] == 200
        sim.seed(capacity={"gpu_8x_h100_sxm5": ["us-east-1", "us-south-1"]})
        (work / "train.sh").write_text(TRAIN_SH)
        env = {
            "PATH": f"{BIN}:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(home),
            "LANG": "C.UTF-8",
            "LAMBDA_API_URL": sim.url,
            # As the provisioning guide exports it first (its own export runs too).
            "LAMBDA_API_KEY": sim.api_key,
            "ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS_ROOT),
            "ANSIBLE_PRIVATE_KEY_FILE": str(key),
            "ANSIBLE_SSH_ARGS": f"-F /dev/null -o UserKnownHostsFile={home / '.ssh' / 'known_hosts'} -o BatchMode=yes "
            "-o ControlMaster=auto -o ControlPersist=30s",
        }
        yield Guide(sim, work, home, env)
    finally:
        sim.stop()
        shutil.rmtree(home, ignore_errors=True)


def provisioned(user: Guide) -> None:
    """The provisioning guide's cluster, provisioned as that guide does, busy, with the job's script on its file
    system."""
    first = examples(DOCS / "provisioning.md")
    user.run(next(e for e in first if e.file_name == "training.yml"))
    user.run(next(e for e in first if e.kind == "controller" and "lambdalabs.cloud.provision" in e.text))
    for node in user.nodes():  # the cluster's GPUs are busy: reap_idle finds nothing idle, the job still runs
        user.sim.set_node(node["id"], gpu_utilization=80)
    head = user.nodes()[0]
    script = f"mkdir -p {JOB_DIR} && cat > {JOB_DIR}/train.py"
    subprocess.run([*user.ssh(head), script], input=TRAIN_PY, env=user.env, text=True, check=True, timeout=60)


@pytest.mark.parametrize("doc", ["provisioning.md", "training.md", "cost-control.md"])
def test_every_example_of_the_guide_runs_as_written(doc, tmp_path):
    # The training guide runs torch on its nodes (the smoke test, torchrun, the job): one such test at a time.
    with guide(tmp_path) as user:
        with torch_on_nodes() if doc == "training.md" else nullcontext():
            if doc == "training.md":
                provisioned(user)
            else:
                user.run(next(e for e in examples(DOCS / "provisioning.md") if e.file_name == "training.yml"))
            if doc == "cost-control.md":
                # What the guide's reap finds: an instance whose expiry has passed.
                expired = [{"key": "expires-at", "value": "2025-06-01T18:00:00Z"}]
                user.sim.seed(
                    instances=[{"name": "forgotten-experiment", "instance_type": "gpu_1x_a100_sxm4", "tags": expired}]
                )
            ran = {example.line: user.run(example) for example in examples(DOCS / doc)}
            left = {i["name"] for i in live(user.sim)}
    assert len(ran) >= 5, f"docs/{doc} has fewer examples than it had"
    if doc == "provisioning.md":
        assert "Terminated 4 node(s) of cluster training" in "".join(ran.values())
        assert left == {"trainer-1", "training-1", "training-2"}, left  # the cluster of the last example, and its node
    if doc == "training.md":
        # torchrun as the guide starts it: 8 processes on each of the 4 nodes, one rank each.
        started = next(out for out in ran.values() if "rank " in out)
        assert {int(rank) for rank in re.findall(r"rank (\d+) of 32", started)} == set(range(32)), started
        assert left == set(), left  # run_and_teardown ends the cluster
    if doc == "cost-control.md":
        assert left == {"experiment-7"}, left  # the expired instance is reaped, tonight's experiment is not
        # The status's figures, written where the command ran.
        figures = json.loads((user.work / "status.json").read_text())
        assert [node["name"] for node in figures["unclustered"]["nodes"]] == ["forgotten-experiment"], figures
