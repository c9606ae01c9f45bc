"""Fixtures of the integration tests: the simulator as a subprocess, and real ansible-playbook and ansible-inventory
processes against it.

``simulator`` gives a freshly reset simulator (one per pytest worker, started with ``--boot-seconds 1
--terminate-seconds 1``); ``simulator_factory`` starts extra ones with custom flags. The client class lives in
``tests/simulator/client.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

from tests.simulator.client import DEFAULT_API_KEY, Simulator

HERE = Path(__file__).resolve().parent
COLLECTION = HERE.parents[1]
# The directory that holds ansible_collections/lambdalabs/cloud (a link to this checkout), as the Makefile makes it.
COLLECTIONS_ROOT = Path(os.environ.get("ANSIBLE_COLLECTIONS_PATH", str(COLLECTION / ".tmp" / "collections")))


@pytest.fixture(scope="session")
def simulator_server() -> Iterator[Simulator]:
    """One simulator for the whole session, with short lifecycle phases."""
    simulator = Simulator("--boot-seconds", "1", "--terminate-seconds", "1").start()
    try:
        yield simulator
    finally:
        simulator.stop()


@pytest.fixture
def simulator(simulator_server: Simulator) -> Simulator:
    """The session simulator, reset to an empty account before the test."""
    simulator_server.reset()
    return simulator_server


@pytest.fixture
def simulator_factory() -> Iterator[Callable[..., Simulator]]:
    """Start extra simulators: ``simulator_factory("--launch-interval", "5", api_key="k")``; stopped at teardown."""
    started: list[Simulator] = []

    def start(*args: str, api_key: str = DEFAULT_API_KEY) -> Simulator:
        simulator = Simulator(*args, api_key=api_key).start()
        started.append(simulator)
        return simulator

    yield start
    for simulator in started:
        simulator.stop()


BIN = Path(sys.executable).parent


@dataclass
class Run:
    """One finished ansible-playbook (or ansible-inventory) process."""

    rc: int
    stdout: str
    stderr: str
    results: list[dict[str, Any]] = field(default_factory=list)

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def task(self, name: str) -> dict[str, Any]:
        """The recorded result of the last task with this name."""
        matches = [entry for entry in self.results if entry["task"] == name]
        assert matches, f"task {name!r} did not run; ran: {[e['task'] for e in self.results]}\n{self.output[-3000:]}"
        return matches[-1]["result"] | {"_status": matches[-1]["status"]}

    def assert_ok(self) -> None:
        """No task failed (also none whose failure was ignored) and the run succeeded."""
        failed = [entry for entry in self.results if entry["status"] in ("failed", "unreachable")]
        assert self.rc == 0 and not failed, (failed, self.output[-3000:])

    def failure(self, name: str, *expected: str) -> dict[str, Any]:
        """The result of a task that failed cleanly: one line of our own (containing ``expected``), no crash."""
        result = self.task(name)
        assert_clean_failure(result, *expected)
        return result

    def tasks(self, name: str) -> list[dict[str, Any]]:
        return [entry["result"] | {"_status": entry["status"]} for entry in self.results if entry["task"] == name]


def ansible_env(sim, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "LAMBDA_API_URL": sim.url,
            "LAMBDA_API_KEY": sim.api_key,
            "ANSIBLE_CALLBACKS_ENABLED": "record_results",
            "ANSIBLE_CALLBACK_PLUGINS": str(HERE / "callback_plugins"),
            "ANSIBLE_HOST_KEY_CHECKING": "False",
            "ANSIBLE_RETRY_FILES_ENABLED": "False",
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_FORCE_COLOR": "0",
            "ANSIBLE_LOCALHOST_WARNING": "False",
            "ANSIBLE_INVENTORY_UNPARSED_WARNING": "False",
            "PYTHONWARNINGS": "ignore",
        }
    )
    env.update(extra or {})
    return env


class Ansible:
    """Runs playbooks against one simulator; each run records its task results."""

    def __init__(self, sim, tmp_path: Path) -> None:
        self.sim = sim
        self.tmp_path = tmp_path
        self._count = 0

    def playbook(
        self,
        tasks: list[dict[str, Any]] | None = None,
        *,
        plays: list[dict[str, Any]] | None = None,
        args: list[str] | None = None,
        env: dict[str, str] | None = None,
        check: bool = False,
        diff: bool = False,
        verbosity: int = 0,
        extra_vars: dict[str, Any] | None = None,
        inventory: str | None = None,
        timeout: float = 300,
    ) -> Run:
        """Run ``tasks`` on localhost (or the given ``plays``) and return the recorded results."""
        self._count += 1
        if plays is None:
            plays = [{"name": "test", "hosts": "localhost", "gather_facts": False, "tasks": tasks or []}]
        playbook = self.tmp_path / f"playbook{self._count}.yml"
        playbook.write_text(yaml.safe_dump(plays, sort_keys=False))
        record = self.tmp_path / f"results{self._count}.jsonl"
        command = [str(BIN / "ansible-playbook"), str(playbook)]
        command += ["-i", inventory or "localhost,", "-c", "local"]
        command += ["-e", "ansible_python_interpreter=" + sys.executable]
        if extra_vars:
            command += ["-e", json.dumps(extra_vars)]
        if check:
            command.append("--check")
        if diff:
            command.append("--diff")
        if verbosity:
            command.append("-" + "v" * verbosity)
        command += args or []
        proc = subprocess.run(
            command,
            env=ansible_env(self.sim, (env or {}) | {"RECORD_RESULTS_FILE": str(record)}),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        results = []
        if record.exists():
            results = [json.loads(line) for line in record.read_text().splitlines() if line.strip()]
        return Run(proc.returncode, proc.stdout, proc.stderr, results)

    def command(self, argv: list[str], env: dict[str, str] | None = None, timeout: float = 300) -> Run:
        """Run another ansible command (ansible-inventory, ansible-doc, ...) from the virtualenv."""
        proc = subprocess.run(
            [str(BIN / argv[0]), *argv[1:]],
            env=ansible_env(self.sim, env),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd=self.tmp_path,
        )
        return Run(proc.returncode, proc.stdout, proc.stderr)

    def module(self, name: str, args: dict[str, Any], env: dict[str, str] | None = None, timeout: float = 300) -> dict:
        """Run one module of the collection the way Ansible does on the controller, without a playbook around it.

        The module reads its arguments from a file and talks to the simulator over real HTTP; the result is the
        JSON it prints. It is much faster than a playbook, for tests that run a module many times.
        """
        self._count += 1
        args_file = self.tmp_path / f"args{self._count}.json"
        args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
        source = COLLECTION / "plugins" / "modules" / f"{name}.py"
        proc = subprocess.run(
            [sys.executable, str(source), str(args_file)],
            env=ansible_env(self.sim, (env or {}) | {"PYTHONPATH": str(COLLECTIONS_ROOT)}),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        try:
            result = json.loads(proc.stdout)
        except ValueError:
            raise AssertionError(f"{name} printed no JSON (rc {proc.returncode}): {proc.stdout}{proc.stderr}") from None
        return result | {"_rc": proc.returncode, "_stderr": proc.stderr}


@pytest.fixture
def ansible(simulator, tmp_path) -> Ansible:
    return Ansible(simulator, tmp_path)


def assert_clean_failure(result: dict[str, Any], *expected: str) -> None:
    """A failed task whose msg is one line of our own (containing ``expected``), not a crash."""
    assert result["_status"] == "failed", result
    msg = result.get("msg", "")
    assert msg and "\n" not in msg, msg
    # ansible-core reports an unhandled exception as "Module failed: ..." with its traceback.
    assert not msg.startswith("Module failed"), msg
    assert "Traceback" not in str(result.get("exception", "")) and "module_stderr" not in result, result
    for text in expected:
        assert text in msg, (text, msg)
