# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the integration tests share: running ansible-playbook, ansible-inventory and modules against the simulator.

Besides: the account's SSH key (PUBLIC_KEY) and its live instances (live()), the tasks and playbooks of the
collection as a play lists them (task(), import_playbook()), and the three SSH nodes of the node-cluster files
(node_cluster()). The fixtures built on these live in conftest.py; test modules import the helpers from here.
"""

from __future__ import annotations

import atexit
import fcntl
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml

from tests.simulator.client import Simulator, node_fabric_unavailable

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
COLLECTION = HERE.parents[1]
# Lambda Stack's stand-in that `make lambda-stack` builds: the nodes' python3 imports PyTorch from it.
LAMBDA_STACK = COLLECTION / ".tmp" / "lambda-stack"
# The simulator's nodes share the machine's network namespace, and a torchrun master listens on its port (29500) on
# every address: two clusters' jobs at once would meet each other's rendezvous. Tests that run torch take this lock.
TORCH_LOCK = Path(tempfile.gettempdir()) / "lambdalabs-cloud-torch.lock"
# The directory that holds ansible_collections/lambdalabs/cloud (a link to this checkout), as the Makefile makes it.
COLLECTIONS_ROOT = Path(os.environ.get("ANSIBLE_COLLECTIONS_PATH", str(COLLECTION / ".tmp" / "collections")))

# The public key of the SSH key "deploy" that the tests put in the account (the ``account`` fixture), and another
# key of other key material.
PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICN+lJwsONkwrdsSnQsu1ydUkIuIg5oOC+Eslvmtt60T deploy"
OTHER_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl other"
# The statuses of an instance that is there (launched and not yet terminated).
LIVE = ("booting", "active", "unhealthy")


def add_deploy_key(sim: Simulator) -> Simulator:
    """The SSH key "deploy" (PUBLIC_KEY) in the simulator's account."""
    sim.seed(ssh_keys=[{"name": "deploy", "public_key": PUBLIC_KEY}])
    return sim


def live(sim: Simulator, name: str | None = None, *, prefix: str = "") -> list[dict[str, Any]]:
    """The account's instances in a LIVE status, ordered by name: all of them, those called ``name``, or those whose
    name starts with ``prefix``."""
    found = [i for i in sim.state()["instances"] if i["status"] in LIVE and (i.get("name") or "").startswith(prefix)]
    return sorted((i for i in found if name is None or i.get("name") == name), key=lambda i: i.get("name") or "")


def wait_for(
    condition: Callable[[], Any], timeout: float = 20, what: str = "condition", details: Callable[[], str] = str
) -> Any:
    """Poll ``condition`` every 0.1 s until it is true (returned), or fail after ``timeout`` seconds, saying what
    was waited for and ``details()``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}{details()}")
        time.sleep(0.1)


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on (a moment ago)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def task(title: str, module: str, /, *, register: str = "out", **args: Any) -> dict[str, Any]:
    """A task of the collection's ``module`` with ``args``, registered as ``register``; a failure does not end the play
    (``Run.task`` reads it)."""
    return {"name": title, f"lambdalabs.cloud.{module}": args, "register": register, "ignore_errors": True}


def import_playbook(name: str) -> list[dict[str, Any]]:
    """The plays of the collection's playbook ``name`` (``lambdalabs.cloud.<name>``)."""
    return [{"ansible.builtin.import_playbook": f"lambdalabs.cloud.{name}"}]


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


def role_tasks(run: Run, name: str) -> list[dict[str, Any]]:
    """The results of the tasks called ``name``, inside a role (``<role> : <name>``) or not, with their status and
    host."""
    return [
        e["result"] | {"_status": e["status"], "_host": e["host"]}
        for e in run.results
        if e["task"] == name or e["task"].endswith(f" : {name}")
    ]


def role_task(run: Run, name: str) -> dict[str, Any]:
    """The result of the last task called ``name``, inside a role or not."""
    matches = role_tasks(run, name)
    assert matches, f"task {name!r} did not run; ran: {[e['task'] for e in run.results]}\n{run.output[-3000:]}"
    return matches[-1]


# Ansible's processes get a home of their own in the system temp directory, so that the tests write nothing into
# the real one (~/.ansible/tmp, ssh's known_hosts, control sockets).
HOME = Path(tempfile.mkdtemp(prefix="lambdalabs-cloud-home-"))
atexit.register(shutil.rmtree, HOME, ignore_errors=True)
# Ansible's processes poll each other every 10 ms, not every 1 ms (internal_poll_interval, a setting of the ini file
# only): the runs here are automation, and the default costs CPU for every second that a task waits.
(HOME / ".ansible.cfg").write_text("[defaults]\ninternal_poll_interval = 0.01\n")


def ssh_args(known_hosts: Path, persist: str = "10s", master: str = "auto") -> str:
    """Ansible's ssh to the simulator's nodes: no user configuration, short-lived masters, and host keys checked as
    a user's are with the collection's settings: trusted on first use into ``known_hosts`` (a file of the test's
    own, as the simulator gives freed addresses to new nodes), refused when they change."""
    options = f"-F /dev/null -o UserKnownHostsFile={known_hosts} -o StrictHostKeyChecking=accept-new"
    return f"{options} -o ControlMaster={master} -o ControlPersist={persist}"


def require_node_fabric() -> None:
    """Skip with the one-line reason when the node fabric cannot run here; fail instead under CI=true."""
    reason = node_fabric_unavailable()
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"the node fabric must run under CI=true: {reason}", pytrace=False)
    pytest.skip(reason)


def ansible_env(sim, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "HOME": str(HOME),
            "ANSIBLE_SSH_ARGS": ssh_args(HOME / "known_hosts"),
            "ANSIBLE_PIPELINING": "True",
            "LAMBDA_API_URL": sim.url,
            "LAMBDA_API_KEY": sim.api_key,
            "ANSIBLE_CALLBACKS_ENABLED": "record_results",
            "ANSIBLE_CALLBACK_PLUGINS": str(HERE / "callback_plugins"),
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


class ModuleRunner:
    """The worker's tests/integration/module_runner.py server, started on first use and stopped when pytest ends: it
    runs each module in a process of its own, forked from one that has already imported ansible-core's module
    code."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._server: subprocess.Popen | None = None
        self._socket = HOME / "module-runner.sock"
        self._interpreter: str | None = None
        self._log = HOME / "module-runner.log"

    def _start(self) -> None:
        with self._lock:
            if self._server is not None:
                return
            with self._log.open("w") as log:
                server = subprocess.Popen(
                    [sys.executable, str(HERE / "module_runner.py"), str(self._socket)],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=log,
                    text=True,
                )
            ready = server.stdout.readline()
            assert ready == "ready\n", f"module_runner.py did not start: {ready}{self._log.read_text()}"
            atexit.register(server.terminate)
            self._server = server

    def interpreter(self) -> str:
        """The Python for Ansible's modules on the controller: forked_python.py with this server's socket, written
        once per pytest worker where the simulator's nodes see it too (they have the machine's directories but a
        /tmp of their own; there it finds no server and runs the real Python). LAMBDA_TESTS_FORK_MODULES=0: the
        real Python."""
        if os.environ.get("LAMBDA_TESTS_FORK_MODULES") == "0":
            return sys.executable
        self._start()
        with self._lock:
            if self._interpreter is None:
                folder = COLLECTION / ".tmp" / "forked-python"
                folder.mkdir(parents=True, exist_ok=True)
                path = folder / f"python-{os.getpid()}"
                source = (HERE / "forked_python.py").read_text()
                source = source.replace("@REAL_PYTHON@", sys.executable).replace("@SOCKET@", str(self._socket))
                path.write_text(f"#!{sys.executable} -IS\n{source}")
                path.chmod(0o755)
                atexit.register(path.unlink, missing_ok=True)
                self._interpreter = str(path)
        return self._interpreter

    def run(self, argv: list[str], env: dict[str, str], timeout: float) -> dict[str, Any]:
        """``argv`` (python, module, args file) in a fork of the server: {"rc", "stdout", "stderr"}."""
        self._start()
        request = json.dumps({"argv": argv, "env": env, "timeout": timeout}).encode() + b"\n"
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(timeout + 30)
            conn.connect(str(self._socket))
            conn.sendall(request)
            answer = b"".join(iter(lambda: conn.recv(65536), b""))
        assert answer, f"module_runner.py gave no answer: {self._log.read_text()}"
        return json.loads(answer)


MODULE_RUNNER = ModuleRunner()


def recorded(record: Path) -> list[dict[str, Any]]:
    """The task results the record_results callback wrote."""
    if not record.exists():
        return []
    return [json.loads(line) for line in record.read_text().splitlines() if line.strip()]


@dataclass
class Started:
    """An ansible-playbook process running in the background."""

    process: subprocess.Popen
    record: Path

    def results(self) -> list[dict[str, Any]]:
        return recorded(self.record)

    def wait(self, timeout: float = 300) -> Run:
        stdout, stderr = self.process.communicate(timeout=timeout)
        return Run(self.process.returncode, stdout, stderr, recorded(self.record))


class Ansible:
    """Runs playbooks against one simulator; each run records its task results."""

    def __init__(self, sim, tmp_path: Path) -> None:
        self.sim = sim
        self.tmp_path = tmp_path
        # The known_hosts of this test's runs, which the cluster role and the reap playbooks clean up too.
        self.known_hosts = tmp_path / "known_hosts"
        self._count = 0

    def playbook(self, tasks: list[dict[str, Any]] | None = None, *, timeout: float = 300, **options: Any) -> Run:
        """Run ``tasks`` on localhost (or the given ``plays``) and return the recorded results."""
        command, env, record = self._playbook_command(tasks, **options)
        proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout, check=False)
        return Run(proc.returncode, proc.stdout, proc.stderr, recorded(record))

    def start_playbook(self, tasks: list[dict[str, Any]] | None = None, **options: Any) -> Started:
        """Start a playbook as ``playbook`` runs it, in the background (its own process group)."""
        command, env, record = self._playbook_command(tasks, **options)
        proc = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
        )
        return Started(proc, record)

    def _playbook_command(
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
    ) -> tuple[list[str], dict[str, str], Path]:
        self._count += 1
        if plays is None:
            plays = [{"name": "test", "hosts": "localhost", "gather_facts": False, "tasks": tasks or []}]
        playbook = self.tmp_path / f"playbook{self._count}.yml"
        playbook.write_text(yaml.safe_dump(plays, sort_keys=False))
        record = self.tmp_path / f"results{self._count}.jsonl"
        command = [str(BIN / "ansible-playbook"), str(playbook)]
        command += ["-i", inventory or "localhost,", "-c", "local"]
        if extra_vars:
            command += ["-e", json.dumps(extra_vars)]
        if check:
            command.append("--check")
        if diff:
            command.append("--diff")
        if verbosity:
            command.append("-" + "v" * verbosity)
        command += args or []
        # The controller's own Python (requests) for hosts without an interpreter of their own, through the module
        # runner (MODULE_RUNNER.interpreter); never an extra variable, which would also send it to SSH nodes, whose
        # /tmp is not the controller's.
        environment = ansible_env(
            self.sim,
            {"ANSIBLE_PYTHON_INTERPRETER": MODULE_RUNNER.interpreter(), "ANSIBLE_SSH_ARGS": ssh_args(self.known_hosts)}
            | (env or {})
            | {"RECORD_RESULTS_FILE": str(record)},
        )
        return command, environment, record

    def command(self, argv: list[str], env: dict[str, str] | None = None, timeout: float = 300) -> Run:
        """Run another ansible command (ansible-inventory, ansible-doc, ...) from the virtualenv."""
        proc = subprocess.run(
            [str(BIN / argv[0]), *argv[1:]],
            env=ansible_env(self.sim, {"ANSIBLE_SSH_ARGS": ssh_args(self.known_hosts)} | (env or {})),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd=self.tmp_path,
        )
        return Run(proc.returncode, proc.stdout, proc.stderr)

    def module(self, name: str, args: dict[str, Any], env: dict[str, str] | None = None, timeout: float = 300) -> dict:
        """Run one module of the collection the way Ansible does on the controller, without a playbook around it.

        The module runs in a process of its own (a fork of MODULE_RUNNER), reads its arguments from a file and talks
        to the simulator over real HTTP; the result is the JSON it prints. It is much faster than a playbook, for
        tests that run a module many times.
        """
        self._count += 1
        args_file = self.tmp_path / f"args{self._count}.json"
        args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
        source = COLLECTION / "plugins" / "modules" / f"{name}.py"
        env = ansible_env(self.sim, (env or {}) | {"PYTHONPATH": str(COLLECTIONS_ROOT)})
        done = MODULE_RUNNER.run([sys.executable, str(source), str(args_file)], env, timeout)
        try:
            result = json.loads(done["stdout"])
        except ValueError:
            raise AssertionError(
                f"{name} printed no JSON (rc {done['rc']}): {done['stdout']}{done['stderr']}"
            ) from None
        return result | {"_rc": done["rc"], "_stderr": done["stderr"]}


def provision_node_cluster(
    ansible: Ansible, tmp_path: Path, name: str, role_vars: dict[str, Any] | None = None, **defaults: Any
) -> tuple[Path, Run]:
    """Three SSH nodes of cluster ``name``, through the provision playbook, with the key that lambda_ssh_key
    generated (its private key file is returned) and file system ``data``; ``defaults`` add to the nodes'
    lambda_cluster_defaults."""
    key = tmp_path / "cluster-key"
    # lambda_ssh_key generates the key pair and writes the private key; the file system is only setup, made by the API.
    made = ansible.module("lambda_ssh_key", {"name": "cluster", "private_key_path": str(key)})
    assert made["_rc"] == 0 and made["changed"], made
    status, answer = ansible.sim.api("POST", "/filesystems", {"name": "data", "region": "us-east-1"})
    assert status == 200, answer
    variables = {
        "lambda_cluster_name": name,
        "lambda_cluster_nodes": {"count": 3},
        "lambda_cluster_defaults": {
            "instance_type": ["gpu_1x_a10"],
            "region": ["us-east-1"],
            "ssh_key_name": "cluster",
            "file_system_names": ["data"],
            **defaults,
        },
        "lambda_cluster_launch_interval": 0,
        **(role_vars or {}),
    }
    run = ansible.playbook(plays=import_playbook("provision"), extra_vars=variables)
    run.assert_ok()
    return key, run


def node_inventory(tmp_path: Path, key: Path, **group_vars: Any) -> Path:
    """An inventory directory: the lambda_cloud plugin, grouping by the cluster tag, and the nodes' SSH key."""
    inventory = tmp_path / "inventory"
    (inventory / "group_vars").mkdir(parents=True)
    plugin = {"plugin": "lambdalabs.cloud.lambda_cloud"}
    plugin["keyed_groups"] = [{"key": "lambda_tags.cluster", "prefix": "lambda_cluster"}]
    (inventory / "nodes.lambda_cloud.yml").write_text(yaml.safe_dump(plugin))
    group_vars = {"ansible_ssh_private_key_file": str(key), **group_vars}
    (inventory / "group_vars" / "lambda.yml").write_text(yaml.safe_dump(group_vars))
    return inventory


@dataclass
class NodeCluster:
    """Three SSH nodes of a simulator started with --nodes, provisioned as cluster ``name``, and an inventory that
    reaches them as the group ``lambda_cluster_<name>``."""

    sim: Simulator
    ansible: Ansible
    name: str
    key: Path
    inventory: Path
    nodes: dict[str, dict[str, Any]]  # the active instances by name, in name order
    provisioned: Run
    play_args: list[str] = field(default_factory=list)

    @property
    def group(self) -> str:
        return f"lambda_cluster_{self.name}"

    def adhoc(self, *args: str, become: bool = False) -> subprocess.CompletedProcess[str]:
        """``ansible <group> -o <args>`` over SSH."""
        command = [str(BIN / "ansible"), "-i", str(self.inventory), self.group, "-o", *args]
        if become:
            command.append("--become")
        return subprocess.run(
            command,
            env=ansible_env(self.sim, {"ANSIBLE_SSH_ARGS": ssh_args(self.ansible.known_hosts)}),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    def on_nodes(self, command: str, become: bool = False) -> dict[str, str]:
        """What ``command`` printed on each node (every node must answer)."""
        done = self.adhoc("-m", "ansible.builtin.command", "-a", command, become=become)
        found = per_host(done.stdout)
        assert len(found) == len(self.nodes), done.stdout + done.stderr
        return found

    def play(self, name: str, **extra_vars: Any) -> Run:
        """The collection's playbook ``name`` on the nodes' inventory over SSH, with ``play_args``."""
        return self.ansible.playbook(timeout=900, **self._play_options(name, extra_vars))

    def start_play(self, name: str, **extra_vars: Any) -> Started:
        """``play``, in the background."""
        return self.ansible.start_playbook(**self._play_options(name, extra_vars))

    def _play_options(self, name: str, extra_vars: dict[str, Any]) -> dict[str, Any]:
        return {
            "plays": import_playbook(name),
            "inventory": str(self.inventory),
            "extra_vars": extra_vars,
            "args": ["-c", "ssh", *self.play_args],
        }


NodeClusterType = TypeVar("NodeClusterType", bound=NodeCluster)


@contextmanager
def node_cluster(
    tmp_path_factory: pytest.TempPathFactory,
    name: str,
    cluster_type: type[NodeClusterType] = NodeCluster,
    *,
    inventory_vars: dict[str, Any] | None = None,
    play_args: list[str] | None = None,
    role_vars: dict[str, Any] | None = None,
    **defaults: Any,
) -> Iterator[NodeClusterType]:
    """A NodeCluster (or ``cluster_type``) for a module-scoped fixture: its simulator (with --nodes) stops on exit.
    ``defaults`` add to the nodes' lambda_cluster_defaults, ``inventory_vars`` to the inventory's group variables,
    ``role_vars`` to the cluster role's variables.
    Skips (fails under CI=true) where the node fabric cannot run."""
    require_node_fabric()
    tmp_path = tmp_path_factory.mktemp(f"cluster-{name}")
    stack = ["--lambda-stack", str(LAMBDA_STACK)] if (LAMBDA_STACK / ".installed").exists() else []
    sim = Simulator("--nodes", "--boot-seconds", "0.3", "--terminate-seconds", "0.3", *stack).start()
    try:
        ansible = Ansible(sim, tmp_path)
        key, run = provision_node_cluster(ansible, tmp_path, name, role_vars, **defaults)
        inventory = node_inventory(tmp_path, key, **(inventory_vars or {}))
        active = sorted((i for i in sim.state()["instances"] if i["status"] == "active"), key=lambda i: i["name"])
        nodes = {node["name"]: node for node in active}
        yield cluster_type(sim, ansible, name, key, inventory, nodes, run, play_args or [])
    finally:
        sim.stop()


def per_host(output: str) -> dict[str, str]:
    """The output of ``ansible -o`` running a command: host -> what the command printed (newlines restored)."""
    found = {}
    for line in output.splitlines():
        match = re.match(r"^(\S+) \| \w+ \| rc=\d+ \| \(stdout\) (.*)$", line)
        if match:
            found[match.group(1)] = match.group(2).replace("\\n", "\n")
    return found


def refused_sources(output: str, sources: list[str]) -> dict[str, str]:
    """What an ansible-inventory run said about each refused source, in order: source -> its messages, with whitespace
    and every source's path taken out (before ansible-core 2.19 warnings are wrapped at 80 columns; a path would bring
    its directory names into every message). Ansible ends what it says about a source it could not use with "Unable
    to parse <source> as an inventory source"; a source missing there fails the test. From 2.19, Ansible shows a
    warning it has already shown only once: sources refused with the very same message cannot share a run."""
    unwrapped = "".join(output.split())
    said, start = {}, 0
    for source in sources:
        marker = f"Unabletoparse{source}asaninventorysource"
        end = unwrapped.find(marker, start)
        assert end != -1, (source, output[-3000:])
        text = unwrapped[start:end]
        for path in sources:
            text = text.replace(path, "")
        said[source] = text
        start = end + len(marker)
    return said


def plain(value: Any) -> Any:
    """ansible-inventory's JSON without the markers of untrusted strings ({"__ansible_unsafe": ...})."""
    if isinstance(value, dict):
        if set(value) == {"__ansible_unsafe"}:
            return value["__ansible_unsafe"]
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value


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


@contextmanager
def torch_on_nodes() -> Iterator[None]:
    """Hold TORCH_LOCK while a test runs torch on the simulator's nodes (one pytest worker at a time)."""
    with TORCH_LOCK.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
