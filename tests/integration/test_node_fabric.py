# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The simulator's node fabric (``--nodes``): launched instances are real hosts, reached with real ssh.

One simulator with three nodes serves the module (each pytest-xdist worker starts its own); the
tests that restart, terminate or kill start nodes or simulators of their own. Where the fabric
cannot run (not Linux, not root, no sshd), the node tests skip with the reason, except under
CI=true, where they fail.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import re
import shutil
import signal
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.integration.support import BIN, require_node_fabric, ssh_args, wait_for
from tests.simulator import fabric_protocol
from tests.simulator.client import SIMULATOR_DIR, Simulator, node_fabric_unavailable
from tests.simulator.fabric_memory import own_memory_group

# The module's fleet of nodes serves all its tests, which run on one pytest worker (conftest.ONE_WORKER_FILES).
KEY_NAME = "fabric"
FAST = ("--boot-seconds", "0.2", "--terminate-seconds", "0.2")
HOST_FILES = ("/etc/hosts", "/etc/passwd", "/etc/group", "/etc/shadow", "/etc/hostname", "/etc/ssh/sshd_config")
USER_DATA = '#!/bin/bash\necho "user-data-ran on $(hostname) as $(id -u)"\necho run >> /root/user-data-runs\n'


def ssh(key: Path, address: str, command: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """One real ssh run as ubuntu; only loopback addresses are ever contacted."""
    return subprocess.run(
        ssh_command(key, address, command), capture_output=True, text=True, timeout=timeout, check=False
    )


def ssh_command(key: Path, address: str, command: str) -> list[str]:
    assert ipaddress.ip_address(address) in ipaddress.ip_network("127.0.0.0/8"), address
    # Host keys are checked as a user's ssh checks them: trusted on first use, then refused when they change.
    options = ["-F", "/dev/null", "-i", str(key), "-o", "StrictHostKeyChecking=accept-new"]
    options += ["-o", f"UserKnownHostsFile={known_hosts(key)}", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR"]
    return ["ssh", *options, "-o", "ConnectTimeout=10", f"ubuntu@{address}", command]


def known_hosts(key: Path) -> Path:
    """The known_hosts file of the nodes that ``key`` reaches."""
    return key.with_name("known_hosts")


def run(key: Path, address: str, command: str) -> str:
    """The stdout of a command that must succeed on a node."""
    result = ssh(key, address, command)
    assert result.returncode == 0, (address, command, result.stdout, result.stderr)
    return result.stdout.strip()


def refused(key: Path, address: str) -> bool:
    result = ssh(key, address, "true", timeout=30)
    return result.returncode == 255 and "Connection refused" in result.stderr


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("fabric-key") / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path


DISK_MIB = 48  # each node's writable storage in the fleet: small, so that a test can fill it
MEMORY_MAX_MIB = 256  # each node's memory limit in the fleet


def start_nodes_simulator(key: Path, *flags: str) -> Simulator:
    """A --nodes simulator with the key added through the API."""
    sim = Simulator("--nodes", *FAST, *flags).start()
    public_key = key.with_suffix(".pub").read_text()
    status, payload = sim.api("POST", "/ssh-keys", {"name": KEY_NAME, "public_key": public_key})
    assert status == 200, payload
    return sim


def launch(sim: Simulator, **body: Any) -> str:
    request = {"region_name": "us-south-1", "instance_type_name": "gpu_1x_a100", "ssh_key_names": [KEY_NAME]}
    status, payload = sim.api("POST", "/instance-operations/launch", request | body)
    assert status == 200, payload
    return payload["data"]["instance_ids"][0]


@dataclass
class Fleet:
    sim: Simulator
    key: Path
    nodes: dict[str, dict[str, Any]]  # role -> the active instance
    fs_id: str


@pytest.fixture(scope="module")
def fleet(key: Path) -> Iterator[Fleet]:
    """Three nodes: an 8x H100 named trainer-0 and a 1x A100 sharing a file system, a 2x H100 mounting it at /data."""
    require_node_fabric()
    sim = start_nodes_simulator(key, "--node-disk-mib", str(DISK_MIB), "--node-memory-max-mib", str(MEMORY_MAX_MIB))
    try:
        status, payload = sim.api("POST", "/filesystems", {"name": "shared", "region": "us-south-1"})
        assert status == 200, payload
        fs_id = payload["data"]["id"]
        ids = {
            "trainer": launch(
                sim, instance_type_name="gpu_8x_h100_sxm5", hostname="trainer-0", file_system_names=["shared"]
            ),
            "small": launch(sim, instance_type_name="gpu_1x_a100", file_system_names=["shared"]),
            "pair": launch(
                sim,
                instance_type_name="gpu_2x_h100_sxm5",
                file_system_mounts=[{"mount_point": "/data/shared", "file_system_id": fs_id}],
            ),
        }
        nodes = {role: sim.wait_for_status(instance_id, "active", timeout=60) for role, instance_id in ids.items()}
        yield Fleet(sim, key, nodes, fs_id)
    finally:
        sim.stop()


# ---------------------------------------------------------------------- addresses (no fabric needed)


def test_addresses_are_loopback_and_unique_across_simulators(simulator_factory):
    addresses: list[str] = []
    for sim in (simulator_factory("--boot-seconds", "0"), simulator_factory("--boot-seconds", "0")):
        sim.seed(ssh_keys=[{"name": KEY_NAME}])
        body = {"region_name": "us-east-1", "instance_type_name": "gpu_1x_a10", "ssh_key_names": [KEY_NAME]}
        status, payload = sim.api("POST", "/instance-operations/launch", body | {"quantity": 5})
        assert status == 200, payload
        for instance in sim.api("GET", "/instances")[1]["data"]:
            assert instance["ip"].startswith("127.18.") and instance["private_ip"].startswith("127.10.")
            assert instance["hostname"] == instance["ip"].replace(".", "-")
            addresses += [instance["ip"], instance["private_ip"]]
    assert len(addresses) == 20 and len(set(addresses)) == 20


def test_fabric_reason_is_one_line():
    reason = node_fabric_unavailable()
    assert reason is None or (reason and "\n" not in reason)


def test_nodes_flag_where_the_fabric_cannot_run_exits_2_with_one_line(tmp_path):
    command = ["/usr/bin/python3", str(SIMULATOR_DIR), "--nodes", "--port", "0"]
    if os.geteuid() == 0:  # as root the fabric could run: try it as an unprivileged user instead
        if not shutil.which("setpriv") or not os.access("/usr/bin/python3", os.X_OK):
            pytest.skip("needs setpriv and /usr/bin/python3 to run the simulator as another user")
        command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *command]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=tmp_path, check=False)
    if "Permission denied" in result.stderr and "node fabric" not in result.stderr:
        pytest.skip("the checkout is not readable by the unprivileged user")
    assert result.returncode == 2, result
    assert result.stdout == ""
    assert re.fullmatch(r"Cannot start the node fabric \(--nodes\): [^\n]+\n", result.stderr), result.stderr


# ---------------------------------------------------------------------- what a node is


def test_nodes_have_their_own_hostnames_sudo_and_python(fleet):
    hostnames = set()
    for role, instance in fleet.nodes.items():
        assert ipaddress.ip_address(instance["ip"]) in ipaddress.ip_network("127.18.0.0/16")
        assert ipaddress.ip_address(instance["private_ip"]) in ipaddress.ip_network("127.10.0.0/16")
        out = run(fleet.key, instance["ip"], "hostname; id -un; sudo -n id -u; python3 -c 'print(6 * 7)'")
        assert out.split("\n") == [instance["hostname"], "ubuntu", "0", "42"], (role, out)
        assert run(fleet.key, instance["private_ip"], "hostname") == instance["hostname"]
        hostnames.add(instance["hostname"])
    assert len(hostnames) == 3
    assert fleet.nodes["trainer"]["hostname"] == "trainer-0"
    assert fleet.nodes["small"]["hostname"] == fleet.nodes["small"]["ip"].replace(".", "-")
    view = {node["instance_id"]: node for node in fleet.sim.nodes()}
    for instance in fleet.nodes.values():
        node = view[instance["id"]]
        assert node["ready"] and node["state"] == "ready" and node["ip"] == instance["ip"]
        assert node["hostname"] == instance["hostname"] and node["private_ip"] == instance["private_ip"]
        assert os.path.isfile(os.path.join(node["root_dir"], "etc/hostname"))
        assert node["boot_seconds"] is not None and node["boots"] == 1


def test_file_systems_are_shared_between_nodes(fleet):
    name = f"from-trainer-{uuid.uuid4().hex[:8]}"
    trainer, small, pair = (fleet.nodes[role]["ip"] for role in ("trainer", "small", "pair"))
    run(fleet.key, trainer, f"echo written-by-trainer > /lambda/nfs/shared/{name}")
    assert run(fleet.key, small, f"cat /lambda/nfs/shared/{name}") == "written-by-trainer"
    assert run(fleet.key, pair, f"cat /data/shared/{name}; stat -c %U /data/shared/{name}") == (
        "written-by-trainer\nubuntu"
    )
    run(fleet.key, pair, f"echo answer > /data/shared/{name}.answer")
    assert run(fleet.key, trainer, f"cat /lambda/nfs/shared/{name}.answer") == "answer"
    assert not os.path.exists(f"/lambda/nfs/shared/{name}") and not os.path.exists(f"/data/shared/{name}")


def _hash(path: str) -> str | None:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except FileNotFoundError:
        return None


def test_what_a_play_writes_stays_on_its_node(fleet):
    before = {path: _hash(path) for path in HOST_FILES}
    opt_before = os.path.exists("/opt/x")
    marker = uuid.uuid4().hex[:8]
    for role, instance in fleet.nodes.items():
        run(
            fleet.key,
            instance["ip"],
            f"echo '127.0.0.1 {role}-{marker}' | sudo tee -a /etc/hosts >/dev/null && "
            f"sudo mkdir -p /opt/x && echo {role}-{marker} | sudo tee /opt/x/owner >/dev/null",
        )
    for role, instance in fleet.nodes.items():
        hosts = run(fleet.key, instance["ip"], f"grep {marker} /etc/hosts; cat /opt/x/owner")
        assert hosts.split("\n") == [f"127.0.0.1 {role}-{marker}", f"{role}-{marker}"]
    assert {path: _hash(path) for path in HOST_FILES} == before
    assert os.path.exists("/opt/x") == opt_before
    with open("/etc/passwd", encoding="utf-8") as handle:
        host_users = [line.split(":")[0] for line in handle]
    assert host_users.count("ubuntu") <= 1  # a host's own ubuntu user is used, never a new one
    assert not os.path.exists("/run/nodes") and not os.path.exists("/run/filesystems")


# What root on a node, through sudo, must not be able to do: each is (title, command that must fail).
ESCAPES = [
    ("remount a host directory writable", "sudo mount -o remount,rw,bind /usr"),
    ("mount anything", "sudo mount -t tmpfs none /mnt"),
    ("set the clock", "sudo date -s '2001-01-01'"),
    ("load a kernel module", "sudo modprobe dummy"),
    ("change the network", "sudo ip link add probe0 type dummy"),
    ("make a device file", "sudo mknod /tmp/probe-dev b 7 0"),
    ("rename the host", "sudo hostname escaped"),
]
# Capabilities (bit numbers) no process of a node has, root's included.
WITHOUT = {"net_admin": 12, "sys_module": 16, "sys_rawio": 17, "sys_ptrace": 19, "sys_admin": 21, "sys_time": 25}
WITHOUT["mknod"] = 27


def test_root_on_a_node_cannot_reach_past_the_node(fleet):
    instance = fleet.nodes["small"]
    state_dir = fleet.sim.control("GET", "/nodes")["state_dir"]
    bounding = int(run(fleet.key, instance["ip"], "sudo grep CapBnd /proc/self/status").split()[1], 16)
    assert {name for name, bit in WITHOUT.items() if bounding & (1 << bit)} == set(), hex(bounding)
    for title, command in ESCAPES:
        result = ssh(fleet.key, instance["ip"], command)
        assert result.returncode != 0, (title, result.stdout, result.stderr)
    assert run(fleet.key, instance["ip"], "hostname") == instance["hostname"]
    # Its init holds no descriptor of the fabric's state (root could follow /proc/1/fd to every node's files), and
    # root cannot read the init's descriptors anyway (no ptrace over a process with more capabilities).
    listed = ssh(fleet.key, instance["ip"], "sudo ls -l /proc/1/fd/")
    descriptors = listed.stdout + listed.stderr
    assert state_dir not in descriptors and "/nodes/" not in descriptors, descriptors
    probe = ssh(fleet.key, instance["ip"], "sudo sh -c 'for fd in /proc/1/fd/*; do ls \"$fd/..\" 2>/dev/null; done'")
    others = [node["instance_id"] for node in fleet.sim.nodes() if node["instance_id"] != instance["id"]]
    assert not any(other in probe.stdout for other in others), probe.stdout
    # Nor does it see the machine's processes: its own PID namespace.
    assert "pytest" not in run(fleet.key, instance["ip"], "ps -eo cmd")


def test_a_node_that_fills_its_disk_gets_no_space_there_and_nothing_else_is_touched(fleet, tmp_path):
    small, pair = fleet.nodes["small"]["ip"], fleet.nodes["pair"]["ip"]
    # The system's files (an overlay's upper layer) and /tmp share the node's storage: --node-disk-mib of memory.
    for target in ("/tmp/fill", "/var/fill"):
        filled = ssh(fleet.key, small, f"sudo dd if=/dev/zero of={target} bs=1M count={DISK_MIB * 2} status=none")
        assert filled.returncode != 0 and "No space left on device" in filled.stderr, (target, filled.stderr)
        assert run(fleet.key, small, "df --output=size -BM /tmp | tail -1").strip() == f"{DISK_MIB}M"
        run(fleet.key, small, f"sudo rm -f {target}")
    # The other nodes and the machine go on writing; the node itself again once the file is gone.
    assert run(fleet.key, pair, "dd if=/dev/zero of=/tmp/ok bs=1M count=8 status=none && stat -c %s /tmp/ok") == str(
        8 << 20
    )
    (tmp_path / "host").write_bytes(b"x" * (8 << 20))
    assert run(fleet.key, small, "echo written > /tmp/after && cat /tmp/after") == "written"


def test_a_launch_that_would_leave_the_machine_short_of_memory_is_refused_naming_why(key):
    require_node_fabric()
    sim = start_nodes_simulator(key, "--node-memory-mib", str(1 << 30))
    try:
        request = {"region_name": "us-south-1", "instance_type_name": "gpu_1x_a100", "ssh_key_names": [KEY_NAME]}
        status, payload = sim.api("POST", "/instance-operations/launch", request)
        assert status == 400 and payload["error"]["code"] == "instance-operations/launch/node-memory", payload
        message = payload["error"]["message"]
        assert "cannot start 1 more node(s)" in message and "MiB of its" in message and "--node-memory-mib" in message
        assert sim.api("GET", "/instances")[1]["data"] == [] and sim.nodes() == []
    finally:
        sim.stop()


def memory_parent() -> str:
    found = own_memory_group()
    assert found is not None, "no memory control group on this machine"
    return found[0]


def oom_kills(group: str) -> int:
    """How many processes the OOM killer ended in a memory group (cgroup v1's memory.oom_control, v2's events)."""
    for name in ("memory.oom_control", "memory.events"):
        path = os.path.join(group, name)
        if os.path.exists(path):
            with open(path, encoding="ascii") as counters:
                return next((int(line.split()[1]) for line in counters if line.startswith("oom_kill ")), 0)
    return 0


def test_a_node_past_its_memory_limit_loses_its_largest_process_and_nothing_else_does(fleet):
    small, pair = fleet.nodes["small"], fleet.nodes["pair"]
    # Every process of a node is in its memory group, with --node-memory-max-mib as its limit.
    group = os.path.join(memory_parent(), f"lambda-node-{fleet.sim.control('GET', '/nodes')['supervisor_pid']}")
    assert os.path.isdir(f"{group}-{small['id']}") and "lambda-node-" in run(
        fleet.key, small["ip"], "cat /proc/self/cgroup"
    )
    hog = ssh(fleet.key, small["ip"], f"python3 -c \"b = 'x' * ({MEMORY_MAX_MIB * 2} << 20); print('allocated')\"")
    assert hog.returncode != 0 and "allocated" not in hog.stdout, (hog.returncode, hog.stdout, hog.stderr)
    # The kernel's OOM killer ended it, in the node's group (ssh says 255 for a command killed by a signal).
    assert oom_kills(f"{group}-{small['id']}") >= 1
    # The node goes on; so does another node, with half its limit in use, and this machine.
    assert run(fleet.key, small["ip"], "echo alive") == "alive"
    half = f"python3 -c \"b = 'x' * ({MEMORY_MAX_MIB // 2} << 20); print(len(b))\""
    assert run(fleet.key, pair["ip"], half) == str(MEMORY_MAX_MIB // 2 << 20)


def query(key: Path, address: str, fields: str, options: str = "csv,noheader,nounits") -> list[list[str]]:
    out = run(key, address, f"nvidia-smi --query-gpu={fields} --format={options}")
    return [line.split(", ") for line in out.split("\n")]


def outputs(key: Path, address: str, *commands: str) -> list[str]:
    """The outputs of several commands run in one ssh session (each must succeed)."""
    separator = "=====next====="
    out = run(key, address, f"; echo {separator}; ".join(f"{command} || exit 9" for command in commands))
    return [part.strip("\n") for part in out.split(separator)]


def test_nvidia_smi_shows_the_instance_types_gpus(fleet):
    trainer, small = fleet.nodes["trainer"]["ip"], fleet.nodes["small"]["ip"]
    fields = "index,name,memory.total,count,driver_version,persistence_mode,pci.bus_id,uuid"
    command = f"nvidia-smi --query-gpu={fields} --format=csv,noheader,nounits"
    csv, table, listing = outputs(fleet.key, trainer, command, "nvidia-smi", "nvidia-smi -L")
    rows = [line.split(", ") for line in csv.split("\n")]
    assert len(rows) == 8 and [row[0] for row in rows] == [str(index) for index in range(8)]
    assert {tuple(row[1:6]) for row in rows} == {("NVIDIA H100 80GB HBM3", "81559", "8", "550.127.05", "Disabled")}
    assert len({row[6] for row in rows}) == 8 and all(row[7].startswith("GPU-") for row in rows)
    assert re.search(r"NVIDIA-SMI 550\.127\.05 +Driver Version: 550\.127\.05 +CUDA Version: 12\.\d", table)
    assert table.count("NVIDIA H100 80GB HBM3") == 8 and "No running processes found" in table
    lines = listing.split("\n")
    assert len(lines) == 8 and re.fullmatch(r"GPU 0: NVIDIA H100 80GB HBM3 \(UUID: GPU-[0-9a-f-]{36}\)", lines[0])

    one, with_header, enabled, shown, again, _disabled, shown_after = outputs(
        fleet.key,
        small,
        "nvidia-smi --query-gpu=name,memory.total,count --format=csv,noheader,nounits",
        "nvidia-smi --query-gpu=index,memory.used,utilization.gpu --format=csv",
        "sudo nvidia-smi --persistence-mode=1",
        "nvidia-smi --query-gpu=persistence_mode --format=csv,noheader",
        "sudo nvidia-smi -pm 1",
        "sudo nvidia-smi -pm 0",
        "nvidia-smi --query-gpu=persistence_mode --format=csv,noheader",
    )
    assert one == "NVIDIA A100-PCIE-40GB, 40960, 1"
    assert with_header.split("\n") == ["index, memory.used [MiB], utilization.gpu [%]", "0, 1 MiB, 0 %"]
    assert enabled.split("\n") == ["Enabled persistence mode for GPU 00000000:18:00.0.", "All done."]
    assert shown == "Enabled" and shown_after == "Disabled"
    assert again.startswith("Persistence mode is already Enabled for GPU 00000000:18:00.0.")
    denied = ssh(fleet.key, small, "nvidia-smi -pm 1")
    assert denied.returncode == 4 and "Insufficient Permissions" in denied.stdout


def test_control_api_sets_gpu_utilization_and_count(fleet):
    trainer = fleet.nodes["trainer"]
    load = [10, 20, 30, 40, 50, 60, 70, 80]
    try:
        node = fleet.sim.set_node(trainer["id"], gpu_utilization=load)
        assert node["gpu_utilization"] == load and node["gpu_count"] == 8
        assert [row[1] for row in query(fleet.key, trainer["ip"], "index,utilization.gpu")] == [str(v) for v in load]
        fleet.sim.set_node(trainer["id"], gpu_count=7, gpu_utilization=95)
        rows = query(fleet.key, trainer["ip"], "index,utilization.gpu,count")
        assert rows == [[str(index), "95", "7"] for index in range(7)]
        assert len(run(fleet.key, trainer["ip"], "nvidia-smi -L").split("\n")) == 7
    finally:
        fleet.sim.set_node(trainer["id"], gpu_count=8, gpu_utilization=0)
    assert query(fleet.key, trainer["ip"], "count") == [["8"]] * 8


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"gpu_utilization": 101}, 400, "gpu_utilization"),
        ({"gpu_utilization": [1, 2]}, 400, "list of 8"),
        ({"gpu_utilization": True}, 400, "gpu_utilization"),
        ({"gpu_count": 9}, 400, "from 0 to 8"),
        ({"gpu_count": "2"}, 400, "gpu_count"),
        ({"private_network": "no"}, 400, "boolean"),
        ({"color": "red"}, 400, "color"),
        ({}, 400, "at least one"),
        ([], 400, "object"),
    ],
)
def test_control_api_rejects_bad_node_changes(fleet, body, status, message):
    url = f"{fleet.sim.root}/_simulator/nodes/{fleet.nodes['trainer']['id']}"
    answer, payload, _headers = fleet.sim.http("POST", url, body)
    assert answer == status and message in payload["error"]["message"], payload


def test_control_api_unknown_node_is_404(fleet):
    url = f"{fleet.sim.root}/_simulator/nodes/{'0' * 32}"
    answer, payload, _headers = fleet.sim.http("POST", url, {"gpu_count": 1})
    assert answer == 404 and "No node" in payload["error"]["message"]


def test_private_network_off_refuses_the_private_address(fleet):
    pair = fleet.nodes["pair"]
    try:
        assert fleet.sim.set_node(pair["id"], private_network=False)["private_network"] is False
        wait_for(lambda: refused(fleet.key, pair["private_ip"]), what="the private address to refuse ssh")
        assert run(fleet.key, pair["ip"], "hostname") == pair["hostname"]
    finally:
        fleet.sim.set_node(pair["id"], private_network=True)
    wait_for(lambda: ssh(fleet.key, pair["private_ip"], "true").returncode == 0, what="the private address back")


def test_ansible_manages_the_nodes_through_the_inventory_plugin(fleet, tmp_path):
    """The documented workflow: the inventory plugin gives ansible_host (the ip) and ansible_user (ubuntu)."""
    (tmp_path / "nodes.lambda_cloud.yml").write_text("plugin: lambdalabs.cloud.lambda_cloud\nhostnames: [hostname]\n")
    play = [
        {
            "hosts": "lambda",
            "gather_facts": False,
            "become": True,
            "tasks": [
                {"ansible.builtin.ping": {}},
                {"ansible.builtin.copy": {"dest": "/etc/motd", "content": "{{ inventory_hostname }}\n"}},
                {"ansible.builtin.command": "nvidia-smi --query-gpu=count --format=csv,noheader", "register": "smi"},
                {"ansible.builtin.assert": {"that": ["smi.stdout_lines[0] | int == lambda_gpus"]}},
            ],
        }
    ]
    (tmp_path / "site.yml").write_text(json.dumps(play))
    env = (
        dict(os.environ)
        | fleet.sim.env
        | {
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_PIPELINING": "True",
            "ANSIBLE_SSH_ARGS": ssh_args(known_hosts(fleet.key)),
            "ANSIBLE_SSH_CONTROL_PATH_DIR": str(tmp_path / "cp"),
        }
    )
    command = [str(BIN / "ansible-playbook"), "-i", "nodes.lambda_cloud.yml", "--private-key", str(fleet.key)]
    command.append("site.yml")
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "no hosts matched" not in result.stdout, result.stderr[-3000:]
    for instance in fleet.nodes.values():
        assert re.search(rf"{instance['hostname']} +: ok=4 +changed=\d+ +unreachable=0 +failed=0", result.stdout)
        assert run(fleet.key, instance["ip"], "cat /etc/motd") == instance["hostname"]


# ---------------------------------------------------------------------- lifecycle


def test_user_data_runs_once_and_restart_keeps_the_root(fleet):
    sim, key = fleet.sim, fleet.key
    instance = sim.wait_for_status(launch(sim, user_data=USER_DATA), "active", timeout=60)
    address = instance["ip"]
    wait_for(lambda: ssh(key, address, "test -f /var/lib/cloud/instance/boot-finished").returncode == 0, what="boot")
    log = run(key, address, "sudo cat /var/log/cloud-init-output.log")
    assert f"user-data-ran on {instance['hostname']} as 0" in log
    run(key, address, "echo kept > ~/kept && sudo touch /opt/restart-marker")
    first_pid = sim.node(instance["id"])["pid"]
    session = subprocess.Popen(
        ssh_command(key, address, "echo open; sleep 300"),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert session.stdout is not None and session.stdout.readline() == "open\n"
        status, payload = sim.api("POST", "/instance-operations/restart", {"instance_ids": [instance["id"]]})
        assert status == 200, payload
        assert session.wait(timeout=20) != 0  # the connection dropped with the node
    finally:
        session.kill()
        session.wait()
    sim.wait_for_status(instance["id"], "active", timeout=60)
    out = run(key, address, "cat ~/kept; ls /opt/restart-marker; sudo cat /root/user-data-runs; hostname")
    assert out.split("\n") == ["kept", "/opt/restart-marker", "run", instance["hostname"]]
    assert run(key, address, "sudo cat /var/log/cloud-init-output.log").count("user-data-ran") == 1
    node = sim.node(instance["id"])
    assert node["boots"] == 2 and node["pid"] != first_pid


def test_reset_stops_every_node(key):
    require_node_fabric()
    sim = start_nodes_simulator(key)
    try:
        instance = sim.wait_for_status(launch(sim), "active", timeout=60)
        sim.reset()
        assert sim.nodes() == [] and sim.state()["instances"] == []
        assert refused(key, instance["ip"])
    finally:
        sim.stop()


def test_terminate_refuses_ssh(fleet):
    sim, key = fleet.sim, fleet.key
    instance = sim.wait_for_status(launch(sim), "active", timeout=60)
    assert run(key, instance["ip"], "hostname") == instance["hostname"]
    status, payload = sim.api("POST", "/instance-operations/terminate", {"instance_ids": [instance["id"]]})
    assert status == 200, payload
    sim.wait_for_status(instance["id"], "terminated", timeout=30)
    assert refused(key, instance["ip"]) and refused(key, instance["private_ip"])


def test_a_freed_address_goes_to_the_next_node_with_a_new_host_key(fleet):
    """As on Lambda Cloud: a terminated node's address goes to the next node, whose host key is its own, so a
    known_hosts that trusted the old node refuses the new one until the old entry is removed."""
    sim, key = fleet.sim, fleet.key

    def settled() -> bool:  # no earlier test's node still on its way out, holding an address
        return all(item["status"] in ("booting", "active") for item in sim.state()["instances"])

    def recorded(address: str) -> str:
        found = subprocess.run(
            ["ssh-keygen", "-F", address, "-f", str(known_hosts(key))], capture_output=True, check=False
        )
        return found.stdout.decode()

    def forget(address: str) -> None:  # what the cluster role's teardown does with the controller's known_hosts
        subprocess.run(["ssh-keygen", "-R", address, "-f", str(known_hosts(key))], capture_output=True, check=True)

    wait_for(settled, timeout=30, what="earlier nodes to be gone")
    old = sim.wait_for_status(launch(sim), "active", timeout=60)
    forget(old["ip"])  # an earlier test's node may have had this address: the point of this test
    assert run(key, old["ip"], "hostname") == old["hostname"]
    old_key = recorded(old["ip"])
    assert "ssh-ed25519" in old_key
    assert sim.api("POST", "/instance-operations/terminate", {"instance_ids": [old["id"]]})[0] == 200
    wait_for(settled, timeout=30, what="the old node to be gone")
    new = sim.wait_for_status(launch(sim), "active", timeout=60)
    assert (new["ip"], new["private_ip"]) == (old["ip"], old["private_ip"]) and new["id"] != old["id"]
    changed = ssh(key, new["ip"], "true")
    assert changed.returncode == 255 and "Host key verification failed" in changed.stderr, changed.stderr
    forget(new["ip"])
    assert run(key, new["ip"], "hostname") == new["hostname"]
    assert "ssh-ed25519" in recorded(new["ip"]) and recorded(new["ip"]) != old_key


# ---------------------------------------------------------------------- nothing left behind


def _ns_links(pid: int, kinds: tuple[str, ...]) -> set[str]:
    return {os.readlink(f"/proc/{pid}/ns/{kind}") for kind in kinds}


@pytest.fixture
def pin():
    """Open namespaces (``mnt:[N]`` -> the pid to open each through) and keep them open until the test ends: a
    namespace that the test holds is not freed, so the kernel cannot give its number to another test's node while the
    test looks for it."""
    opened = []

    def open_all(sources: dict[str, int]) -> None:
        for link, pid in sources.items():
            opened.append(os.open(f"/proc/{pid}/ns/{link.partition(':')[0]}", os.O_RDONLY))

    yield open_all
    for fd in opened:
        os.close(fd)


def _processes_in(namespaces: set[str]) -> dict[int, str]:
    """Processes (pid -> command), other than this one, that are in any of these namespaces."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            links = {os.readlink(f"/proc/{entry}/ns/{kind}") for kind in ("mnt", "uts", "ipc", "pid")}
            if links & namespaces:
                found[int(entry)] = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue  # gone meanwhile, or a zombie
    return found


def _holders(namespaces: set[str]) -> dict[int, str]:
    """Processes, other than this one, that hold any of these namespaces through an open descriptor (pid -> the
    namespace)."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            for fd in os.listdir(f"/proc/{entry}/fd"):
                target = os.readlink(f"/proc/{entry}/fd/{fd}")
                if target in namespaces:
                    found[int(entry)] = target
        except OSError:
            continue  # gone meanwhile
    return found


def _started(pid: int) -> str | None:
    """When a process started (field 22 of /proc/<pid>/stat), which tells it from a later one with the same pid."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[19]
    except (OSError, IndexError):
        return None


def _describe(pids: set[int]) -> str:
    """What each of these processes is: its state (Z: a zombie), its parent and its command."""
    lines = []
    for pid in sorted(pids):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            lines.append(f"\n  {pid}: state {fields[0]}, parent {fields[1]}, {command[:200] or '(no command)'}")
        except OSError:
            lines.append(f"\n  {pid}: gone")
    return ": still there:" + "".join(lines) if lines else ""


def _alive(started: dict[int, str | None]) -> set[int]:
    """The processes (pid -> start time) that still exist, zombies included; a reused pid is another process."""
    return {pid for pid, when in started.items() if when is not None and _started(pid) == when}


def _new_mounts(before: set[str]) -> set[str]:
    """The machine's mounts that were not there ``before``. Only new mounts would be the fabric's: others come and go
    beside it (podman's storage, after `make ee`, unmounts itself when its last container has ended)."""
    return _mounts() - before


def _mounts() -> set[str]:
    with open("/proc/self/mountinfo", encoding="utf-8") as handle:
        return {" ".join(line.split()[3:]) for line in handle}  # without the mount ids, which are reused


@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL"])
def test_nothing_is_left_after_the_simulator_ends(key, how, pin):
    require_node_fabric()
    mounts_before = _mounts()
    sim = start_nodes_simulator(key)
    try:
        status, payload = sim.api("POST", "/filesystems", {"name": "scratch", "region": "us-south-1"})
        assert status == 200, payload
        ids = [launch(sim, file_system_names=["scratch"]) for _index in range(2)]
        instances = [sim.wait_for_status(instance_id, "active", timeout=60) for instance_id in ids]
        view = sim.control("GET", "/nodes")
        supervisor = view["supervisor_pid"]
        sources = {link: supervisor for link in _ns_links(supervisor, ("mnt",))}
        for node in view["nodes"]:
            sources.update((link, node["pid"]) for link in _ns_links(node["pid"], ("mnt", "uts", "ipc", "pid")))
        namespaces = set(sources)
        pin(sources)
        assert namespaces.isdisjoint(_ns_links(os.getpid(), ("mnt", "uts", "ipc", "pid")))
        processes = _processes_in(namespaces)
        assert sum("sshd" in command for command in processes.values()) >= 2, processes
        pids = {pid: _started(pid) for pid in set(processes) | {supervisor} | {node["pid"] for node in view["nodes"]}}
        assert not _new_mounts(mounts_before)  # every mount of the fabric is in its own namespaces
        state_dir = view["state_dir"]
        assert os.path.isdir(state_dir)
        # Each node's memory control group, under the simulator's own.
        groups = {os.path.join(memory_parent(), f"lambda-node-{supervisor}-{instance_id}") for instance_id in ids}
        assert all(os.path.isdir(group) for group in groups), groups
    finally:
        if how == "SIGKILL" and sim.process is not None:
            sim.process.kill()
            sim.process.wait()
        assert sim.stop() == (0 if how == "SIGTERM" else -signal.SIGKILL)
    # An orphan is reaped by the machine's init, which may take a moment.
    # On a machine as busy as make test makes it, that moment can be long.
    wait_for(
        lambda: not _alive(pids) and not _processes_in(namespaces),
        timeout=90,
        what="the node processes to end",
        details=lambda: _describe(_alive(pids) | set(_processes_in(namespaces))),
    )
    # Nothing but this test holds the nodes' namespaces: once it lets go, the kernel frees them.
    assert not _holders(namespaces)
    assert not _new_mounts(mounts_before)
    assert not os.path.exists(state_dir)
    if how == "SIGKILL":
        # Nothing was left to remove the empty memory groups: the next node fabric to start removes them (another
        # test's, started meanwhile, may have done it already).
        Simulator("--nodes", *FAST).start().stop()
    assert not any(os.path.exists(group) for group in groups), groups
    for instance in instances:
        assert refused(key, instance["ip"]) and refused(key, instance["private_ip"])


def test_the_stand_in_nvidia_smi_reads_the_files_the_fabric_writes():
    """node_nvidia_smi.py is copied into each node on its own, so it spells the paths itself: they must stay the
    fabric's."""
    source = (SIMULATOR_DIR / "node_nvidia_smi.py").read_text()
    state = f"{fabric_protocol.NODE_CONTROL_DIR}/{fabric_protocol.GPU_STATE_FILE}"
    assert f'"LAMBDA_NODE_GPU_STATE", "{state}"' in source
    assert f'"{fabric_protocol.GPU_STATE_LOCK}"' in source
