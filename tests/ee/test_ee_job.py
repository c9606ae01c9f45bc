# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A job inside the collection's execution environment, as AWX runs one: ansible-runner with process isolation
(podman), the image that `make ee` built, against the simulator and its real SSH nodes.

It provisions a 2-node cluster, reads the dynamic inventory, configures the nodes over SSH and tears the cluster
down. The API key reaches the job as AWX credentials do, in the container's environment, and no artifact holds it.
Run with `make ee-test`, after `make ee`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
import yaml

from tests.integration.support import live, require_node_fabric
from tests.simulator.client import Simulator

ROOT = Path(__file__).resolve().parents[2]

IMAGE = "localhost/lambdalabs-cloud-ee:latest"
CONTAINERS_CONF = ROOT / "tests" / "ee" / "containers.conf"
BIN = ROOT / ".venv" / "bin"

JOB = [
    {"ansible.builtin.import_playbook": "lambdalabs.cloud.provision"},
    {
        "name": "Read the cluster from the dynamic inventory",
        "hosts": "localhost",
        "gather_facts": False,
        "tasks": [{"name": "Read the inventory again", "ansible.builtin.meta": "refresh_inventory"}],
    },
    {"ansible.builtin.import_playbook": "lambdalabs.cloud.configure"},
    {
        "name": "Say where the job ran",
        "hosts": "lambda_cluster_ee",
        "gather_facts": False,
        "tasks": [
            {
                "name": "Read the hostname",
                "ansible.builtin.command": "hostname",
                "register": "name",
                "changed_when": False,
            }
        ],
    },
    {"ansible.builtin.import_playbook": "lambdalabs.cloud.teardown"},
]


def podman_image_exists() -> bool:
    env = os.environ | {"CONTAINERS_CONF": str(CONTAINERS_CONF)}
    done = subprocess.run(["podman", "image", "exists", IMAGE], env=env, check=False, capture_output=True)
    return done.returncode == 0


@pytest.fixture
def job_dir():
    """The job's private data directory, as AWX makes one; removed afterwards, with the cluster's private key."""
    made = Path(tempfile.mkdtemp(prefix="ee-job-"))
    yield made
    shutil.rmtree(made, ignore_errors=True)


def test_a_job_in_the_execution_environment_provisions_configures_and_tears_down(job_dir):
    require_node_fabric()
    if not podman_image_exists():
        pytest.fail(f"{IMAGE} is missing: run make ee first")
    with Simulator("--nodes", "--boot-seconds", "0.3", "--terminate-seconds", "0.3") as sim:
        data = job_dir
        key = data / "cluster-key"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
        status, answer = sim.api("POST", "/ssh-keys", {"name": "ee", "public_key": key.with_suffix(".pub").read_text()})
        assert status == 200, answer
        (data / "project").mkdir()
        (data / "project" / "job.yml").write_text(yaml.safe_dump(JOB, sort_keys=False))
        (data / "inventory").mkdir()
        plugin = {"plugin": "lambdalabs.cloud.lambda_cloud"}
        plugin["keyed_groups"] = [{"key": "lambda_tags.cluster", "prefix": "lambda_cluster"}]
        (data / "inventory" / "nodes.lambda_cloud.yml").write_text(yaml.safe_dump(plugin))
        (data / "inventory" / "hosts.yml").write_text(
            yaml.safe_dump({"all": {"hosts": {"localhost": {"ansible_connection": "local"}}}})
        )
        (data / "env").mkdir()
        extra = {
            "lambda_cluster_name": "ee",
            "lambda_cluster_nodes": {"count": 2},
            "lambda_cluster_defaults": {"instance_type": ["gpu_1x_a10"], "region": ["us-east-1"], "ssh_key_name": "ee"},
            "lambda_cluster_launch_interval": 0,
            "ansible_ssh_private_key_file": "/runner/cluster-key",
            "ansible_ssh_common_args": "-o StrictHostKeyChecking=accept-new -o UserKnownHostsFile=/tmp/known_hosts",
        }
        (data / "env" / "extravars").write_text(yaml.safe_dump(extra))
        env = {
            "PATH": f"{BIN}:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(data),
            "CONTAINERS_CONF": str(CONTAINERS_CONF),
            # As AWX's credentials do: in the job's environment, never on a command line or in a file of the job.
            "LAMBDA_API_KEY": sim.api_key,
            "LAMBDA_API_URL": sim.url,
        }
        command = [
            str(BIN / "ansible-runner"), "run", str(data), "-p", "job.yml", "--ident", "job",
            "--process-isolation", "--process-isolation-executable", "podman", "--container-image", IMAGE,
            "--container-option=--network=host", "--container-option=--pull=never",
            # root in the container: the job's directory is this machine's root's (rootless podman maps the
            # image's user 1000 to the job's owner, as in AWX).
            "--container-option=--user=root",
            "--container-option=--env=LAMBDA_API_KEY", "--container-option=--env=LAMBDA_API_URL",
            f"--container-volume-mount={key}:/runner/cluster-key:ro",
        ]  # fmt: skip
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900, check=False)
        artifacts = data / "artifacts" / "job"
        stdout = (artifacts / "stdout").read_text() if (artifacts / "stdout").exists() else done.stdout
        assert done.returncode == 0, stdout[-4000:] + done.stderr[-2000:]
        events = [json.loads(p.read_text()) for p in sorted((artifacts / "job_events").glob("*.json"))]
        configured = {
            e["event_data"]["host"]
            for e in events
            if e.get("event") == "runner_on_ok" and e["event_data"].get("task") == "Read the hostname"
        }
        assert configured == {"ee-1", "ee-2"}, stdout[-3000:]
        launches = sim.requests("POST", "/api/v1/instance-operations/launch")
        assert len(launches) == 2 and live(sim) == []
        # The key is nowhere in what the job left behind.
        leaked = [p for p in data.rglob("*") if p.is_file() and sim.api_key.encode() in p.read_bytes()]
        assert leaked == [], leaked
        assert "LAMBDA_API_KEY" in (artifacts / "command").read_text()  # by name only
