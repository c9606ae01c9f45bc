# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Event-Driven Ansible: the lambda_instances event source and the collection's rulebooks, run by ansible-rulebook
against the simulator."""

from __future__ import annotations

import ast
import contextlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.support import BIN, COLLECTION, add_deploy_key, ansible_env, import_playbook, live, wait_for

LAUNCH = "/api/v1/instance-operations/launch"
TERMINATE = "/api/v1/instance-operations/terminate"
RULEBOOKS = COLLECTION / "extensions" / "eda" / "rulebooks"


def require_rulebook() -> None:
    if not (BIN / "ansible-rulebook").exists():
        if BIN != COLLECTION / ".venv" / "bin":
            pytest.skip("this support-matrix environment has no ansible-rulebook; make test runs these tests")
        pytest.fail("ansible-rulebook is not installed (requirements-test.txt has it)")
    if shutil.which("java") is None:
        pytest.fail("ansible-rulebook needs Java 17 (make system-deps installs openjdk-17-jre-headless)")


class Rulebook:
    """ansible-rulebook running a rulebook against the simulator, its output in a file."""

    def __init__(self, sim, tmp_path: Path, rulebook: str | Path, **variables: Any) -> None:
        require_rulebook()
        localhost = {"ansible_connection": "local", "ansible_python_interpreter": str(BIN / "python")}
        (tmp_path / "inventory.yml").write_text(yaml.safe_dump({"all": {"hosts": {"localhost": localhost}}}))
        (tmp_path / "vars.yml").write_text(yaml.safe_dump({"lambda_instances_interval": 1, **variables}))
        self.output = tmp_path / "rulebook.log"
        env = ansible_env(sim) | {"LAMBDA_API_URL": sim.url, "LAMBDA_API_KEY": sim.api_key}
        # ansible-rulebook runs ansible-galaxy and ansible-playbook.
        env["PATH"] = f"{BIN}:{env.get('PATH', os.defpath)}"
        command = [str(BIN / "ansible-rulebook"), "--rulebook", str(rulebook), "-i", "inventory.yml"]
        command += ["--vars", "vars.yml", "--env-vars", "LAMBDA_API_KEY,LAMBDA_API_URL", "--print-events"]
        with open(self.output, "w", encoding="utf-8") as log:
            self.process = subprocess.Popen(
                command, cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def text(self) -> str:
        return self.output.read_text(errors="replace")

    def events(self) -> list[dict[str, Any]]:
        """The events ansible-rulebook printed (--print-events), in order: after an ``[event]`` or ``[received
        event]`` banner (and an ``Event:`` line), a Python dict up to the closing row of stars."""
        found, block = [], None
        for line in self.text().splitlines():
            if "[event]" in line or "[received event]" in line:
                block = []
            elif block is not None and line.startswith("*" * 20):
                found.append(ast.literal_eval("\n".join(block)))
                block = None
            elif block is not None and (block or line.startswith("{")):
                block.append(line)
        return found

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        """End ansible-rulebook and every process it started: ansible-runner starts each playbook in a session of
        its own, which the rulebook's process group does not reach."""
        family = {self.process.pid} | descendants(self.process.pid)
        for pid in family:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            pass
        for pid in family:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.process.wait()


def descendants(pid: int) -> set[int]:
    """Every process below ``pid``, from /proc (children of children included)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                stat = Path(f"/proc/{entry}/stat").read_text()
                parents[int(entry)] = int(stat.rpartition(")")[2].split()[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


@pytest.fixture
def rulebooks():
    started: list[Rulebook] = []

    def start(*args: Any, **kwargs: Any) -> Rulebook:
        started.append(Rulebook(*args, **kwargs))
        return started[-1]

    yield start
    for rulebook in started:
        rulebook.stop()


def print_rulebook(tmp_path: Path) -> Path:
    """A rulebook that only prints the source's events."""
    path = tmp_path / "print.yml"
    source = {"lambdalabs.cloud.lambda_instances": {"interval": 1, "max_backoff": 4}}
    rule = {"name": "print", "condition": "event.type is defined", "action": {"none": {}}}
    path.write_text(yaml.safe_dump([{"name": "print", "hosts": "all", "sources": [source], "rules": [rule]}]))
    return path


def seed_status(sim, instance_id: str, status: str) -> None:
    instance = next(i for i in sim.state()["instances"] if i["id"] == instance_id)
    sim.seed(instances=[instance | {"status": status}])


def polls(sim) -> int:
    """How many times the instances were read since the request log was cleared."""
    return len(sim.requests("GET", "/api/v1/instances"))


def started(rulebook: Rulebook, sim) -> None:
    """Wait until the source has read the instances twice: its first poll learns what exists."""
    wait_for(lambda: polls(sim) >= 2, timeout=60, what="the source's polls", details=lambda: rulebook.text()[-2000:])
    assert rulebook.alive(), rulebook.text()[-3000:]


# ------------------------------------------------------------------ failure paths first
def test_a_bad_interval_stops_the_rulebook_with_a_line_naming_it(account, tmp_path, rulebooks):
    path = tmp_path / "bad.yml"
    source = {"lambdalabs.cloud.lambda_instances": {"interval": 0.1}}
    rule = {"name": "print", "condition": "event.type is defined", "action": {"none": {}}}
    path.write_text(yaml.safe_dump([{"name": "bad", "hosts": "all", "sources": [source], "rules": [rule]}]))
    rulebook = rulebooks(account, tmp_path, path)
    rulebook.process.wait(60)
    assert "lambda_instances: interval must be from 1 to 86400 seconds, got 0.1." in rulebook.text()
    assert account.requests() == []


def test_a_30_second_outage_stops_nothing_and_loses_or_repeats_no_event(account, tmp_path, rulebooks):
    account.seed(instances=[{"name": "a-1", "tags": [{"key": "cluster", "value": "a"}]}, {"name": "b-1"}])
    ids = {i["name"]: i["id"] for i in account.state()["instances"]}
    account.clear_requests()
    rulebook = rulebooks(account, tmp_path, print_rulebook(tmp_path))
    started(rulebook, account)
    account.fault(path="/api/v1/instances", status=503, code="global/unavailable", count=100000)
    account.clear_requests()  # from here on, the polls of the outage only
    outage = time.monotonic()
    # During the outage: a node turns unhealthy, one is launched, one is gone (preempted).
    time.sleep(5)
    seed_status(account, ids["a-1"], "unhealthy")
    account.seed(instances=[{"name": "c-1", "tags": [{"key": "cluster", "value": "c"}]}])
    time.sleep(max(0.0, 30 - (time.monotonic() - outage)))
    polls = account.requests("GET", "/api/v1/instances")
    failed = len(polls)
    account.clear_faults()
    assert rulebook.alive(), rulebook.text()[-3000:]
    wait_for(
        lambda: any(e["type"] == "launched" for e in rulebook.events()), timeout=60, what="the events after the outage"
    )
    time.sleep(3)  # a few more polls: nothing more may come
    events = [(e["type"], e["instance"]["name"]) for e in rulebook.events()]
    assert sorted(events) == [("active", "c-1"), ("launched", "c-1"), ("unhealthy", "a-1")], events
    assert rulebook.alive()
    # The source backed off during the outage: far fewer than a poll a second (about 10 with 1, 2, then 4 s between
    # them, against 30 without backing off), and every answer a 503 (or none yet, for a poll under way at the end).
    assert {poll["status"] for poll in polls} <= {503, None}, polls
    assert failed < 15, failed
    assert "poll" in rulebook.text() and account.api_key not in rulebook.text()


# ------------------------------------------------------------------ self-heal and reap
def test_self_heal_replaces_an_unhealthy_node_once(ansible, account, tmp_path, rulebooks):
    variables = {
        "lambda_cluster_name": "heal",
        "lambda_cluster_nodes": {"count": 3},
        "lambda_cluster_defaults": {"instance_type": ["gpu_1x_a100_sxm4"], "region": ["us-east-1"]},
        "lambda_cluster_launch_interval": 0,
        "lambda_cluster_wait_for_ssh": False,
        "lambda_cluster_ttl_hours": 5,
    }
    add_deploy_key(account)
    variables["lambda_cluster_defaults"]["ssh_key_name"] = "deploy"
    ansible.playbook(plays=import_playbook("provision"), extra_vars=variables).assert_ok()
    before = {i["name"]: i for i in live(account)}
    assert sorted(before) == ["heal-1", "heal-2", "heal-3"]
    account.clear_requests()
    rulebook = rulebooks(account, tmp_path, RULEBOOKS / "self_heal.yml", heal_wait_for_ssh=False)
    started(rulebook, account)

    seed_status(account, before["heal-2"]["id"], "unhealthy")
    broke = time.monotonic()

    def healed() -> bool:
        now = {i["name"]: i for i in live(account)}
        return (
            sorted(now) == ["heal-1", "heal-2", "heal-3"]
            and all(i["status"] == "active" for i in now.values())
            and (now["heal-2"]["id"] != before["heal-2"]["id"])
        )

    wait_for(healed, timeout=60, what="heal-2 to be replaced", details=lambda: rulebook.text()[-3000:])
    took = time.monotonic() - broke
    after = {i["name"]: i for i in live(account)}
    assert len(account.requests("POST", LAUNCH)) == 1  # exactly one new instance
    assert after["heal-2"]["instance_type"]["name"] == "gpu_1x_a100_sxm4"
    tags = {t["key"]: t["value"] for t in after["heal-2"]["tags"]}
    old = {t["key"]: t["value"] for t in before["heal-2"]["tags"]}
    assert tags["expires-at"] == old["expires-at"] and tags["cluster"] == "heal"  # the cluster's expiry
    assert {after[n]["id"] for n in ("heal-1", "heal-3")} == {before[n]["id"] for n in ("heal-1", "heal-3")}
    assert took < 60

    # Once that heal has ended, a second unhealthy event for the same node: nothing more is launched.
    wait_for(lambda: "PLAY RECAP" in rulebook.text(), timeout=60, what="the heal playbook to end")
    assert "failed=0" in rulebook.text().split("PLAY RECAP")[1].splitlines()[1], rulebook.text()[-3000:]
    account.seed(instances=[before["heal-2"] | {"status": "unhealthy"}])
    wait_for(
        lambda: rulebook.text().count("has a replacement already") >= 1,
        timeout=60,
        what="the second heal to run",
        details=lambda: rulebook.text()[-3000:],
    )
    assert len(account.requests("POST", LAUNCH)) == 1
    assert account.api_key not in rulebook.text()


def test_reap_expired_terminates_an_instance_once_its_expiry_passes(account, tmp_path, rulebooks):
    account.seed(instances=[{"name": "kept", "tags": [{"key": "expires-at", "value": "2999-01-01T00:00:00Z"}]}])
    account.clear_requests()
    rulebook = rulebooks(account, tmp_path, RULEBOOKS / "reap_expired.yml")
    started(rulebook, account)
    # Launched once the source runs, so that its expiry passes while the source watches (the start of the rulebook
    # and its Java may take longer than the 8 s).
    expires = time.time() + 8
    soon = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(expires))
    account.seed(instances=[{"name": "short", "tags": [{"key": "expires-at", "value": soon}]}])
    wait_for(
        lambda: [i["name"] for i in live(account)] == ["kept"],
        timeout=75,
        what="the expired instance to be terminated",
        details=lambda: rulebook.text()[-3000:],
    )
    assert time.time() - expires < 60
    assert len(account.requests("POST", TERMINATE)) == 1
