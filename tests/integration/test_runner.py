# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection through ansible-runner, the way AWX and Ansible Automation Platform run it.

A project playbook imports ``lambdalabs.cloud.provision`` (and ``teardown``), as a job template's playbook would;
``ansible_runner.run`` runs it against the simulator with the API key in the environment (what an AWX credential
injects). The inventory is imported as an AWX inventory source does: ``ansible-inventory -i <file> --list --export``.
Afterwards no file runner wrote holds the API key, except the environment runner records by design
(``artifacts/<ident>/command``) and ``env/`` in the private data directory, which is its input.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.support import BIN, add_deploy_key, import_playbook, live, plain

ansible_runner = pytest.importorskip("ansible_runner", reason="ansible-runner is not installed (requirements-test.txt)")

# A key that cannot turn up by chance, so that finding it anywhere means it leaked.
API_KEY = "secret_runner-test-0f3b9c1e7d5a"


@pytest.fixture
def sim(simulator_factory):
    """A simulator that accepts only API_KEY, with the SSH key "deploy" in the account."""
    simulator = simulator_factory("--boot-seconds", "1", "--terminate-seconds", "1", api_key=API_KEY)
    return add_deploy_key(simulator)


@pytest.fixture
def private_data_dir(tmp_path, monkeypatch):
    """A factory of runner private data directories, one per job as AWX makes them, with a project that imports
    the collection's playbooks (as a job template's playbook would)."""
    # ansible-runner looks ansible-playbook and ansible-inventory up on PATH: this environment's.
    monkeypatch.setenv("PATH", f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")

    def make(ident: str) -> Path:
        project = tmp_path / ident / "project"
        project.mkdir(parents=True)
        for name in ("provision", "teardown"):
            (project / f"{name}.yml").write_text(yaml.safe_dump(import_playbook(name)))
        return tmp_path / ident

    return make


def base_env() -> dict[str, str]:
    """What every run gets besides the credential: this checkout's collection and quiet Ansible settings."""
    env = {
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "ANSIBLE_LOCALHOST_WARNING": "False",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "False",
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "PYTHONWARNINGS": "ignore",
    }
    if "ANSIBLE_COLLECTIONS_PATH" in os.environ:
        env["ANSIBLE_COLLECTIONS_PATH"] = os.environ["ANSIBLE_COLLECTIONS_PATH"]
    return env


def cluster_vars(**overrides: Any) -> dict[str, Any]:
    values = {
        "lambda_cluster_name": "awx",
        "lambda_cluster_nodes": {"count": 2},
        "lambda_cluster_defaults": {
            "instance_type": ["gpu_1x_a10"],
            "region": ["us-west-1"],
            "ssh_key_name": "deploy",
        },
        "lambda_cluster_wait_for_ssh": False,
        "lambda_cluster_launch_interval": 0,
        "lambda_cluster_poll_interval": 1,
    }
    values.update(overrides)
    return values


def play(private_data_dir: Path, ident: str, playbook: str, extravars: dict[str, Any], envvars: dict[str, str]):
    result = ansible_runner.run(
        private_data_dir=str(private_data_dir),
        ident=ident,
        playbook=playbook,
        extravars=extravars,
        envvars=envvars,
        quiet=True,
        timeout=300,
    )
    assert result.status == "successful" and result.rc == 0, result.stdout.read()[-3000:]
    return result


def task_results(result, name: str) -> list[dict[str, Any]]:
    """The event data of the runner_on_ok events of tasks called ``name`` (in a role or not)."""
    return [
        event["event_data"]
        for event in result.events
        if event.get("event") == "runner_on_ok"
        and (event["event_data"].get("task") == name or event["event_data"].get("task", "").endswith(f" : {name}"))
    ]


def unsafe_markers(value: Any) -> int:
    """How many {"__ansible_unsafe": ...} markers ``value`` holds."""
    if isinstance(value, dict):
        return (set(value) == {"__ansible_unsafe"}) + sum(unsafe_markers(item) for item in value.values())
    if isinstance(value, list):
        return sum(unsafe_markers(item) for item in value)
    return 0


def inventory_source(directory: Path) -> Path:
    """An inventory file as a project would hold it: no key in it, the credential injects LAMBDA_API_KEY."""
    source = directory / "prod.lambda_cloud.yml"
    source.write_text(
        yaml.safe_dump(
            {
                "plugin": "lambdalabs.cloud.lambda_cloud",
                "keyed_groups": [{"key": "lambda_tags.cluster", "prefix": "lambda_cluster"}],
            }
        )
    )
    return source


def inventory_update(private_data_dir: Path, source: Path, sim) -> dict[str, Any]:
    """What an AWX inventory update runs: ansible-inventory -i <source> --list --export, through runner."""
    inventory, error = ansible_runner.interface.get_inventory(
        action="list",
        inventories=[str(source)],
        response_format="json",
        export=True,
        private_data_dir=str(private_data_dir),
        ident="inventory_update",
        envvars=base_env() | {"LAMBDA_API_KEY": API_KEY, "LAMBDA_API_URL": sim.url},
        quiet=True,
        timeout=120,
    )
    assert isinstance(inventory, dict), (inventory, error)
    return inventory


def files_holding(directory: Path, secret: str) -> set[str]:
    """The files under ``directory`` (relative paths) that contain ``secret``."""
    return {
        str(path.relative_to(directory))
        for path in directory.rglob("*")
        if path.is_file() and secret.encode() in path.read_bytes()
    }


def test_provision_inventory_import_and_teardown_through_runner(sim, private_data_dir, tmp_path):
    # 1. A job template's run of the provision playbook, the key injected into the environment by a credential.
    credential = {"LAMBDA_API_KEY": API_KEY, "LAMBDA_API_URL": sim.url}
    jobs = {ident: private_data_dir(ident) for ident in ("provision", "inventory_update", "teardown")}
    provision = play(jobs["provision"], "provision", "provision.yml", cluster_vars(), base_env() | credential)
    nodes = [i["name"] for i in live(sim)]
    assert nodes == ["awx-1", "awx-2"]
    stats = provision.stats
    assert stats["changed"].get("localhost", 0) > 0 and not stats["failures"] and not stats["dark"]
    (recorded,) = task_results(provision, "Record the cluster")
    assert recorded["res"]["ansible_facts"]["lambda_cluster_result"]["launched"] == nodes

    # 2. An inventory source's sync: ansible-inventory --list --export on the inventory file of the project.
    inventory_dir = jobs["inventory_update"]
    inventory = plain(inventory_update(inventory_dir, inventory_source(inventory_dir / "project"), sim))
    assert sorted(inventory["lambda_cluster_awx"]["hosts"]) == nodes
    hostvars = inventory["_meta"]["hostvars"]
    assert {hostvars[node]["lambda_region"] for node in nodes} == {"us-west-1"}

    # 3. Teardown, with the key given the other way the playbooks accept: the extra variable lambda_api_key (for
    #    example from a vaulted variable, or an AWX credential type that injects extra_vars). No key in the
    #    environment: this run must use the extra variable.
    teardown = play(
        jobs["teardown"],
        "teardown",
        "teardown.yml",
        {"lambda_cluster_name": "awx", "lambda_api_key": API_KEY, "lambda_api_url": sim.url},
        base_env(),
    )
    assert live(sim) == []
    assert teardown.stats["changed"].get("localhost", 0) > 0

    # 4. Where the key is on disk after the three jobs: only in runner's input (env/envvars, env/extravars: what
    #    ansible_runner.run was given; get_inventory keeps its envvars in memory) and in its record of the
    #    environment of each command it ran (artifacts/<ident>/command, mode 0600). Never in the events, stdout or
    #    anything the playbooks wrote.
    holding = files_holding(tmp_path, API_KEY)
    assert holding == {
        "provision/env/envvars",
        "provision/artifacts/provision/command",
        "inventory_update/artifacts/inventory_update/command",
        "teardown/env/extravars",
    }, sorted(holding)
    for ident, job in jobs.items():
        artifacts = job / "artifacts" / ident
        assert (artifacts / "stdout").is_file() and (artifacts / "command").stat().st_mode & 0o077 == 0
    assert len(list((jobs["provision"] / "artifacts" / "provision" / "job_events").iterdir())) > 10
    assert API_KEY not in str([event.get("event_data") for event in [*provision.events, *teardown.events]])


def test_an_awx_inventory_import_gets_plain_values(sim, private_data_dir):
    """AWX stores what ansible-inventory --list --export prints: {"__ansible_unsafe": ...} markers would become
    dicts in its host variables (community.general#8212). Only values that could be templates carry one."""
    template = "{{ lookup('pipe', 'id') }}"
    sim.seed(
        instances=[
            {"name": "node-1", "status": "active", "tags": [{"key": "cluster", "value": "awx"}]},
            {"name": "node-2", "status": "active", "tags": [{"key": "note", "value": template}]},
        ]
    )
    job = private_data_dir("inventory_update")
    inventory = inventory_update(job, inventory_source(job / "project"), sim)
    hostvars = inventory["_meta"]["hostvars"]
    assert hostvars["node-1"]["lambda_name"] == "node-1" and hostvars["node-1"]["lambda_region"]
    assert unsafe_markers(hostvars["node-1"]) == 0
    # The template is kept as text, never rendered.
    assert plain(hostvars["node-2"]["lambda_tags"]["note"]) == template
