# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The simulator's side of the node fabric (``--nodes``): every launched instance a real SSH host.

:class:`NodeFabric` starts the supervisor (fabric_supervisor.py) as a child process, tells it to start,
restart and stop nodes as the account's instances go through their lifecycle, tracks what it
reports (a node is ready once its sshd accepts connections), and serves ``/_simulator/nodes``.
The account calls its hooks while holding the simulator's lock; they only queue a line for the
supervisor (a writer thread sends it) or read what a reader thread recorded, so they never wait
for a node or for the supervisor.
"""

from __future__ import annotations

import json
import os
import queue
import select
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from fabric_check import fabric_unavailable, machine_memory_mib
from fabric_protocol import BOOT, EVENT, NODES_DIR, SEQ, BootState, Command, Event, NodeState, command_line
from sim_catalogue import GPU_MODELS
from sim_hooks import InstanceHooks
from sim_validation import ApiError, check_keys, expect_object, invalid, type_name

SUPERVISOR_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fabric_supervisor.py")
HELLO_TIMEOUT = 20.0
NETWORK_TIMEOUT = 10.0
RESET_TIMEOUT = 30.0
# Each node's writable storage (its overlay layers and /tmp), a memory file system of this many MiB.
DEFAULT_DISK_MIB = 4096
# The memory a new node is counted at (its init, sshd, a login: about 10 MB idle; a play's Python on it more).
DEFAULT_NODE_MEMORY_MIB = 256
# Each node's memory limit, where the machine allows a memory control group per node: its processes and its files.
DEFAULT_MEMORY_MAX_MIB = 8192
# A launch that would leave less of the machine's memory available than this share is refused.
MEMORY_FLOOR_PERCENT = 20
DRIVER_VERSION = "550.127.05"
CUDA_VERSION = "12.4"
PCI_BUSES = ("18", "2A", "3A", "5D", "9A", "AB", "BA", "DB")
_GPU_NAMESPACE = uuid.UUID("0b5f3c1e-6d2a-4f7b-9c8e-1a2b3c4d5e6f")
NODE_KEYS = ("gpu_utilization", "gpu_count", "private_network")


class FabricUnavailable(RuntimeError):
    """The node fabric cannot run here; the message says why, in one line."""


def gpu_state(instance_id: str, instance_type: dict[str, Any]) -> dict[str, Any]:
    """The stand-in nvidia-smi's state for a new node of this instance type."""
    count = int(instance_type.get("specs", {}).get("gpus", 0))
    description = instance_type.get("gpu_description", "")
    name, memory, power = GPU_MODELS.get(description, (f"NVIDIA {description.split(' (')[0]}".strip(), 24576, 300))
    gpus = []
    for index in range(count):
        unique = uuid.uuid5(_GPU_NAMESPACE, f"{instance_id}/{index}")
        gpus.append(
            {
                "name": name,
                "memory_mib": memory,
                "power_cap_w": power,
                "uuid": f"GPU-{unique}",
                "serial": str(1650000000000 + unique.int % 10**9),
                "pci_bus_id": f"00000000:{PCI_BUSES[index % len(PCI_BUSES)]}:00.0",
                "utilization": 0,
                "persistence_mode": False,
            }
        )
    return {"driver_version": DRIVER_VERSION, "cuda_version": CUDA_VERSION, "visible": count, "gpus": gpus}


@dataclass
class NodeRecord:
    """What the simulator knows about one node."""

    instance_id: str
    hostname: str
    ip: str
    private_ip: str
    gpus: int
    state: str = NodeState.STARTING
    pid: int | None = None
    error: str | None = None
    boots: int = 0
    generation: int = 1  # the start of the node that counts; events of earlier starts are stale
    private_network: bool = True
    gpu_count: int = 0
    gpu_utilization: list[int] = field(default_factory=list)
    started_at: float = field(default_factory=time.monotonic)
    boot_seconds: float | None = None
    network_applied: threading.Event = field(default_factory=threading.Event)


class NodeFabric(InstanceHooks):
    """The supervisor process and the nodes it runs; see the module documentation."""

    def __init__(
        self,
        lambda_stack: str | None = None,
        disk_mib: int = DEFAULT_DISK_MIB,
        memory_mib: int = DEFAULT_NODE_MEMORY_MIB,
        memory_max_mib: int = DEFAULT_MEMORY_MAX_MIB,
    ) -> None:
        self.disk_mib, self.memory_mib, self.memory_max_mib = disk_mib, memory_mib, memory_max_mib
        reason = fabric_unavailable()
        if reason:
            raise FabricUnavailable(reason)
        if lambda_stack is not None and not os.path.isdir(lambda_stack):
            raise FabricUnavailable(f"--lambda-stack {lambda_stack}: no such directory")
        self.lambda_stack = os.path.abspath(lambda_stack) if lambda_stack else None
        self.lock = threading.Lock()
        self.nodes: dict[str, NodeRecord] = {}
        self.acknowledged = threading.Condition()  # guards sent and done: command numbers
        self.sent = self.done = 0
        self.alive = True
        # Started from the main thread: the supervisor's parent-death signal follows that thread.
        self.process = subprocess.Popen(
            [sys.executable, "-E", SUPERVISOR_SCRIPT, str(os.getpid())],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=None,
            start_new_session=True,  # a Ctrl-C in the terminal reaches the simulator only
        )
        assert self.process.stdin is not None and self.process.stdout is not None
        ready = select.select([self.process.stdout], [], [], HELLO_TIMEOUT)[0]
        line = self.process.stdout.readline() if ready else b""
        hello = json.loads(line) if line.startswith(b"{") else {}
        if hello.get(EVENT) != Event.HELLO:
            self.close()
            raise FabricUnavailable(hello.get("message") or "the node fabric's supervisor did not start")
        self.supervisor_pid = int(hello["pid"])
        self.state_dir = str(hello["state_dir"])
        self.outbox: queue.Queue[bytes | None] = queue.Queue()
        self.reader = threading.Thread(target=self._read_events, name="node-fabric-events", daemon=True)
        self.reader.start()
        self.writer = threading.Thread(target=self._write_commands, name="node-fabric-commands", daemon=True)
        self.writer.start()

    # ------------------------------------------------------------------ talking to the supervisor

    def _send(self, op: str, **fields: Any) -> None:
        self.outbox.put(command_line(op, **fields))

    def _call(self, op: str, timeout: float, **fields: Any) -> None:
        """Send a command and wait until the supervisor has carried it out (or ``timeout``)."""
        with self.acknowledged:
            self.sent += 1
            number = self.sent
            self._send(op, **{SEQ: number}, **fields)
            self.acknowledged.wait_for(lambda: self.done >= number or not self.alive, timeout)

    def _write_commands(self) -> None:
        stdin = self.process.stdin
        assert stdin is not None
        while True:
            line = self.outbox.get()
            try:
                if line is None:
                    stdin.close()
                    return
                stdin.write(line)
                if self.outbox.empty():
                    stdin.flush()
            except (OSError, ValueError):
                pass  # the supervisor is gone; the reader thread marks the nodes failed

    def _read_events(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            with self.lock:
                self._apply(event)
        with self.acknowledged:
            self.alive = False  # nothing will answer any more
            self.acknowledged.notify_all()
        with self.lock:
            for record in self.nodes.values():
                if record.state in (NodeState.STARTING, NodeState.READY):
                    record.state, record.error = NodeState.FAILED, "the node fabric's supervisor ended"
                elif record.state == NodeState.STOPPING:
                    record.state = NodeState.STOPPED

    def _apply(self, event: dict[str, Any]) -> None:
        kind = event.get(EVENT)
        if kind == Event.DONE:
            with self.acknowledged:
                self.done = max(self.done, int(event[SEQ]))
                self.acknowledged.notify_all()
        record = self.nodes.get(event.get("id") or "")
        if kind == Event.ERROR and record is None:
            print(f"node fabric: {event.get('message')}", file=sys.stderr)
        if record is None or event.get(BOOT, record.generation) != record.generation:
            return
        if kind in (Event.NETWORK, Event.EXITED, Event.ERROR, Event.STOPPED):
            record.network_applied.set()
        if kind == Event.STARTED:
            record.pid = event.get("pid")
        elif kind == Event.READY and record.state == NodeState.STARTING:
            record.state, record.error = NodeState.READY, None
            record.boots += 1
            record.boot_seconds = round(time.monotonic() - record.started_at, 3)
        elif kind in (Event.EXITED, Event.ERROR) and record.state in (NodeState.STARTING, NodeState.READY):
            record.state, record.pid = NodeState.FAILED, None
            record.error = event.get("error") or event.get("message")
            print(f"node {record.instance_id}: {record.error}", file=sys.stderr)
        elif kind == Event.STOPPED:
            record.state, record.pid = NodeState.STOPPED, None

    def close(self) -> None:
        """Stop every node and the supervisor (it also dies with this process, however that ends)."""
        process = self.process
        if process.poll() is None:
            if hasattr(self, "writer"):
                self._send(Command.SHUTDOWN)
                self.outbox.put(None)
                self.writer.join(15)
            else:
                assert process.stdin is not None
                process.stdin.close()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    # ------------------------------------------------------------------ the account's hooks

    def launched(self, instance_id: str, node: dict[str, Any]) -> None:
        gpus = gpu_state(instance_id, node["instance_type"])
        record = NodeRecord(instance_id, node["hostname"], node["ip"], node["private_ip"], len(gpus["gpus"]))
        record.gpu_count = record.gpus
        record.gpu_utilization = [0] * record.gpus
        config = {
            "id": instance_id,
            "hostname": node["hostname"],
            "ip": node["ip"],
            "private_ip": node["private_ip"],
            "public_key": node["public_key"],
            "user_data": node.get("user_data"),
            "mounts": node["mounts"],
            "gpus": gpus,
            "lambda_stack": self.lambda_stack,
            "disk_mib": self.disk_mib,
            "memory_max_mib": self.memory_max_mib,
        }
        with self.lock:
            self.nodes[instance_id] = record
        self._send(Command.START, id=instance_id, config=config)

    def launch_refusal(self, count: int) -> str | None:
        """Why ``count`` more nodes must not start: the machine's memory, shared by every node (None: they may)."""
        total, available = machine_memory_mib()
        need, floor = count * self.memory_mib, total * MEMORY_FLOOR_PERCENT // 100
        if available - need >= floor:
            return None
        return (
            f"The simulator's node fabric cannot start {count} more node(s): the machine has {available} MiB of its "
            f"{total} MiB memory available, a node is counted at {self.memory_mib} MiB (--node-memory-mib), and "
            f"less than {MEMORY_FLOOR_PERCENT}% ({floor} MiB) would be left for the machine."
        )

    def restarted(self, instance_id: str) -> None:
        with self.lock:
            record = self.nodes.get(instance_id)
            if record is None or record.state in (NodeState.STOPPING, NodeState.STOPPED):
                return
            record.state, record.pid, record.started_at = NodeState.STARTING, None, time.monotonic()
            record.generation += 1
        self._send(Command.RESTART, id=instance_id)

    def terminated(self, instance_id: str) -> None:
        with self.lock:
            record = self.nodes.get(instance_id)
            if record is None or record.state in (NodeState.STOPPING, NodeState.STOPPED):
                return
            record.state = NodeState.STOPPING
        self._send(Command.STOP, id=instance_id)

    def boot_state(self, instance_id: str) -> str:
        with self.lock:
            record = self.nodes.get(instance_id)
            if record is None:
                return BootState.READY  # not a node (seeded or loaded from a state file)
            if record.state == NodeState.READY:
                return BootState.READY
            return BootState.FAILED if record.state == NodeState.FAILED else BootState.WAITING

    def stopped(self, instance_id: str) -> bool:
        with self.lock:
            record = self.nodes.get(instance_id)
            return record is None or record.state in (NodeState.STOPPED, NodeState.FAILED)

    def gone(self, instance_id: str) -> None:
        with self.lock:
            record = self.nodes.get(instance_id)
            if record is not None and record.state in (NodeState.STOPPED, NodeState.FAILED):
                del self.nodes[instance_id]

    def reset(self) -> None:
        """Stop every node; returns once they are gone, so that a reset leaves no node answering."""
        with self.lock:
            self.nodes.clear()
        self._call(Command.RESET, RESET_TIMEOUT)

    def file_system_deleted(self, fs_id: str) -> None:
        self._send(Command.DROP_FS, fs_id=fs_id)

    # ------------------------------------------------------------------ control API

    def view(self, names: dict[str, str | None]) -> dict[str, Any]:
        """``GET /_simulator/nodes``; ``names`` maps instance ids to their current names."""
        with self.lock:
            nodes = [self._node_view(record, names.get(record.instance_id)) for record in self.nodes.values()]
        return {
            "enabled": True,
            "supervisor_pid": self.supervisor_pid,
            "state_dir": self.state_dir,
            "nodes": nodes,
        }

    def _node_view(self, record: NodeRecord, name: str | None) -> dict[str, Any]:
        return {
            "instance_id": record.instance_id,
            "name": name,
            "hostname": record.hostname,
            "ip": record.ip,
            "private_ip": record.private_ip,
            "state": record.state,
            "ready": record.state == NodeState.READY,
            "pid": record.pid,
            "root_dir": f"/proc/{record.pid}/root" if record.pid else None,
            "state_dir": f"{self.state_dir}/{NODES_DIR}/{record.instance_id}",
            "boots": record.boots,
            "boot_seconds": record.boot_seconds,
            "error": record.error,
            "private_network": record.private_network,
            "gpus": record.gpus,
            "gpu_count": record.gpu_count,
            "gpu_utilization": list(record.gpu_utilization),
        }

    def configure(self, instance_id: str, body: Any, name: str | None) -> dict[str, Any]:
        """``POST /_simulator/nodes/<instance_id>``: GPU utilization and count, private network."""
        obj = expect_object(body)
        check_keys(obj, NODE_KEYS)
        if not obj:
            raise invalid(f"Give at least one of: {', '.join(NODE_KEYS)}.")
        with self.lock:
            record = self.nodes.get(instance_id)
            if record is None:
                raise ApiError(
                    404,
                    "global/object-does-not-exist",
                    f"No node for instance {instance_id!r}.",
                    "List the nodes with GET /_simulator/nodes; only instances launched with --nodes are nodes.",
                )
            if record.state in (NodeState.STOPPING, NodeState.STOPPED):
                raise invalid(f"Instance {instance_id} is terminated; its node is gone.")
            utilization = self._parse_utilization(obj.get("gpu_utilization"), record.gpus)
            count = obj.get("gpu_count")
            if count is not None and (
                isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= record.gpus
            ):
                raise invalid(f"Field 'gpu_count' must be an integer from 0 to {record.gpus}, not {count!r}.")
            private = obj.get("private_network")
            if "private_network" in obj and not isinstance(private, bool):
                raise invalid(f"Field 'private_network' must be a boolean, not {type_name(private)}.")
            if utilization is not None:
                record.gpu_utilization = utilization
            if count is not None:
                record.gpu_count = count
            applied = None
            if isinstance(private, bool):
                record.private_network = private
                if record.state == NodeState.READY:  # a booting node reads the setting when its sshd starts
                    applied = record.network_applied
                    applied.clear()
            view = self._node_view(record, name)
        if utilization is not None or count is not None:  # written to the node's state file on return
            self._call(Command.GPUS, NETWORK_TIMEOUT, id=instance_id, utilization=utilization, visible=count)
        if isinstance(private, bool):
            self._send(Command.NETWORK, id=instance_id, private=private)
        if applied is not None:
            applied.wait(NETWORK_TIMEOUT)  # the node's sshd listens on the new addresses when this returns
        return view

    @staticmethod
    def _parse_utilization(value: Any, gpus: int) -> list[int] | None:
        if value is None:
            return None

        def percent(item: Any) -> bool:
            return not isinstance(item, bool) and isinstance(item, int) and 0 <= item <= 100

        if percent(value):
            return [value] * gpus
        if isinstance(value, list) and len(value) == gpus and all(percent(item) for item in value):
            return list(value)
        raise invalid(
            f"Field 'gpu_utilization' must be an integer from 0 to 100, or a list of {gpus} of them "
            f"(one per GPU), not {json.dumps(value)[:80]}."
        )
