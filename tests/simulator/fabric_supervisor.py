# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The node fabric's supervisor: one child process of the simulator that starts and stops the nodes.

Run as ``python3 fabric_supervisor.py SIMULATOR_PID``. It asks the kernel to kill it when the simulator
ends (however it ends), moves into a mount namespace of its own and mounts a tmpfs over /run
there for all node state: per node a directory with the upper layers of its overlays, its
configuration and its control files, and per shared file system a directory. Nothing of it is
visible outside; it all vanishes with the process. Each node is ``unshare --uts --mount --ipc
--pid --kill-child`` running node_init.py, with the same parent-death signal, so that killing the
supervisor kills every node and everything in it.

Commands arrive as JSON lines on stdin and events leave as JSON lines on stdout, in the words of
fabric_protocol.py. The end of stdin stops every node and ends the supervisor.
"""

from __future__ import annotations

import fcntl
import functools
import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

import fabric_syscalls as sc
from fabric_memory import MemoryLimit, group_name, remove_stale_groups
from fabric_protocol import (
    BOOT,
    CONFIG_FILE,
    CONTROL_DIR,
    DISK_DIR,
    EVENT,
    GPU_STATE_FILE,
    GPU_STATE_LOCK,
    NETWORK_FILE,
    NODES_DIR,
    OP,
    PRIVATE_NETWORK,
    SEQ,
    Command,
    Event,
    emit,
)

STATE_ROOT = "/run"  # a tmpfs in the supervisor's own mount namespace
NODES = os.path.join(STATE_ROOT, NODES_DIR)
FILE_SYSTEMS = os.path.join(STATE_ROOT, "filesystems")
HERE = os.path.dirname(os.path.abspath(__file__))
NODE_INIT = os.path.join(HERE, "node_init.py")
NVIDIA_SMI = os.path.join(HERE, "node_nvidia_smi.py")
NODE_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
NAMESPACES = ["--uts", "--mount", "--ipc", "--pid", "--fork", "--kill-child=SIGKILL", "--propagation", "private"]


def ubuntu_ids() -> tuple[int, int]:
    """The host's ubuntu user, else the first uid (and the same gid) that the host does not use from 1000 on."""
    used_uids, used_gids = set(), set()
    with open("/etc/passwd", encoding="utf-8") as handle:
        for line in handle:
            parts = line.split(":")
            if len(parts) > 3:
                if parts[0] == "ubuntu":
                    return int(parts[2]), int(parts[3])
                used_uids.add(int(parts[2]))
    with open("/etc/group", encoding="utf-8") as handle:
        used_gids = {int(parts[2]) for parts in (line.split(":") for line in handle) if len(parts) > 2}
    uid = 1000
    while uid in used_uids or uid in used_gids:
        uid += 1
    return uid, uid


def remove_node(node: Node) -> None:
    """What a stopped node leaves: its memory control group, its storage's file system, its directory."""
    if node.memory is not None:
        node.memory.remove()
    try:
        sc.umount(os.path.join(node.directory, DISK_DIR), sc.MNT_DETACH)
    except OSError:
        pass  # never mounted (the start failed before it)
    shutil.rmtree(node.directory, ignore_errors=True)


def start_node_process(memory: MemoryLimit | None) -> None:
    """In a node's first process, before it starts: end with the supervisor, and join the node's memory group."""
    sc.set_parent_death_signal()
    if memory is not None:
        memory.join()


def write_json(path: str, data: Any) -> None:
    temporary = path + ".new"
    with open(temporary, "w", encoding="utf-8") as handle:
        json.dump(data, handle)
    os.replace(temporary, path)


def python_for_nodes() -> str:
    """The interpreter that a node's scripts (nvidia-smi) name in their first line."""
    return "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else os.path.realpath(sys.executable)


@dataclass
class Node:
    """One node as the supervisor tracks it."""

    instance_id: str
    directory: str
    config: dict[str, Any]
    process: subprocess.Popen[bytes] | None = None
    pid: int | None = None
    error: str | None = None
    buffer: bytes = b""
    boots: int = 0  # how many times it was started: events carry it, so that stale ones can be told apart
    memory: MemoryLimit | None = None  # its memory control group, which outlives its restarts


class Supervisor:
    def __init__(self) -> None:
        self.uid, self.gid = ubuntu_ids()
        self.nodes: dict[str, Node] = {}
        self.selector = selectors.DefaultSelector()
        self.selector.register(0, selectors.EVENT_READ, None)
        self.stdin_buffer = b""

    # ------------------------------------------------------------------ commands

    def handle(self, command: dict[str, Any]) -> bool:
        """Carry out one command; False when the supervisor should end."""
        op = command.get(OP)
        node = self.nodes.get(command.get("id", ""))
        if op == Command.START:
            self.start(command["id"], command["config"])
        elif op == Command.RESTART and node is not None:
            self.kill(node)
            self.spawn(node)
        elif op == Command.RESTART:
            emit(Event.ERROR, id=command.get("id"), message="the node was never started, so it cannot restart")
        elif op == Command.STOP and node is not None:
            self.kill(node)
            del self.nodes[node.instance_id]
            remove_node(node)
            emit(Event.STOPPED, id=node.instance_id)
        elif op == Command.GPUS and node is not None:
            self.update_gpus(node, command)
        elif op == Command.NETWORK and node is not None:
            network = os.path.join(node.directory, CONTROL_DIR, NETWORK_FILE)
            write_json(network, {PRIVATE_NETWORK: command["private"]})
            if node.pid is not None:
                os.kill(node.pid, signal.SIGUSR1)
        elif op == Command.DROP_FS:
            shutil.rmtree(os.path.join(FILE_SYSTEMS, os.path.basename(command["fs_id"])), ignore_errors=True)
        elif op == Command.RESET:
            self.stop_all()
            for name in os.listdir(FILE_SYSTEMS):
                shutil.rmtree(os.path.join(FILE_SYSTEMS, name), ignore_errors=True)
        elif op == Command.SHUTDOWN:
            return False
        return True

    def start(self, instance_id: str, config: dict[str, Any]) -> None:
        directory = os.path.join(NODES, os.path.basename(instance_id))
        control = os.path.join(directory, CONTROL_DIR)
        os.makedirs(control, mode=0o755)
        # The node's writable storage: a memory file system of its own size, which outlives the node's restarts.
        disk = os.path.join(directory, DISK_DIR)
        os.mkdir(disk)
        sc.mount("lambda-node-disk", disk, "tmpfs", sc.MS_NOSUID | sc.MS_NODEV, f"size={config['disk_mib']}m,mode=0755")
        mounts = []
        for mount in config.pop("mounts"):
            source = os.path.join(FILE_SYSTEMS, os.path.basename(mount["fs_id"]))
            if not os.path.isdir(source):
                os.mkdir(source)
                os.chown(source, self.uid, self.gid)
                os.chmod(source, 0o775)
            mounts.append({"source": source, "target": mount["target"]})
        write_json(os.path.join(control, GPU_STATE_FILE), config.pop("gpus"))
        open(os.path.join(control, GPU_STATE_LOCK), "w").close()
        write_json(os.path.join(control, NETWORK_FILE), {PRIVATE_NETWORK: True})
        # The stand-in's source travels in the config: a node has a /tmp of its own, so a source tree under /tmp
        # is not to be found from inside it.
        with open(NVIDIA_SMI, encoding="utf-8") as handle:
            nvidia_smi = handle.read()
        config.update(mounts=mounts, uid=self.uid, gid=self.gid, python=python_for_nodes(), nvidia_smi=nvidia_smi)
        write_json(os.path.join(directory, CONFIG_FILE), config)
        node = Node(instance_id, directory, config)
        node.memory = MemoryLimit(group_name(instance_id), config["memory_max_mib"])
        if node.memory.reason:
            print(f"node {instance_id}: no memory limit: {node.memory.reason}", file=sys.stderr)
        self.nodes[instance_id] = node
        self.spawn(node)

    def spawn(self, node: Node) -> None:
        node.error = None
        node.boots += 1
        with open(os.path.join(node.directory, "boot.log"), "ab") as log:
            node.process = subprocess.Popen(
                ["unshare", *NAMESPACES, "--", sys.executable, "-E", NODE_INIT, node.directory],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log,
                env=NODE_ENV,
                preexec_fn=functools.partial(start_node_process, node.memory),  # noqa: PLW1509 - one thread
            )
        assert node.process.stdout is not None
        os.set_blocking(node.process.stdout.fileno(), False)
        self.selector.register(node.process.stdout, selectors.EVENT_READ, node)

    def kill(self, node: Node) -> None:
        """End the node and everything in it; returns once its PID namespace is gone."""
        process = node.process
        if process is None:
            return
        try:
            if node.pid is not None:
                os.kill(node.pid, signal.SIGKILL)  # its PID namespace ends with it
            else:
                process.kill()
        except ProcessLookupError:
            pass
        process.wait()  # unshare ends after its child, and the child after the whole namespace
        self.selector.unregister(process.stdout)
        assert process.stdout is not None
        process.stdout.close()
        node.process, node.pid, node.buffer = None, None, b""

    def stop_all(self) -> None:
        for node in list(self.nodes.values()):
            self.kill(node)
            remove_node(node)
        self.nodes.clear()

    def update_gpus(self, node: Node, command: dict[str, Any]) -> None:
        control = os.path.join(node.directory, CONTROL_DIR)
        with open(os.path.join(control, GPU_STATE_LOCK), "a+", encoding="utf-8") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            path = os.path.join(control, GPU_STATE_FILE)
            with open(path, encoding="utf-8") as handle:
                state = json.load(handle)
            if command.get("utilization") is not None:
                for gpu, value in zip(state["gpus"], command["utilization"]):
                    gpu["utilization"] = value
            if command.get("visible") is not None:
                state["visible"] = command["visible"]
            write_json(path, state)

    # ------------------------------------------------------------------ events of the nodes

    def node_output(self, node: Node) -> None:
        process = node.process
        assert process is not None and process.stdout is not None
        try:
            chunk = os.read(process.stdout.fileno(), 1 << 16)
        except BlockingIOError:
            return
        if chunk:
            node.buffer += chunk
            *lines, node.buffer = node.buffer.split(b"\n")
            for line in lines:
                self.node_event(node, json.loads(line))
            return
        self.selector.unregister(process.stdout)  # the node ended by itself
        process.stdout.close()
        status = process.wait()
        node.process, node.pid = None, None
        error = node.error or f"the node ended unexpectedly (exit status {status})"
        emit(Event.EXITED, id=node.instance_id, status=status, error=error, **{BOOT: node.boots})

    def node_event(self, node: Node, event: dict[str, Any]) -> None:
        kind = event.pop(EVENT)
        if kind == Event.PID:
            node.pid = event["pid"]
            emit(Event.STARTED, id=node.instance_id, pid=node.pid, **{BOOT: node.boots})
        elif kind == Event.ERROR:
            node.error = event["message"]
        else:
            emit(kind, id=node.instance_id, pid=node.pid, **{BOOT: node.boots}, **event)

    # ------------------------------------------------------------------ main loop

    def serve(self) -> None:
        while True:
            for key, _mask in self.selector.select():
                if key.data is not None:
                    self.node_output(key.data)
                    continue
                chunk = os.read(0, 1 << 20)
                if not chunk:
                    return
                self.stdin_buffer += chunk
                *lines, self.stdin_buffer = self.stdin_buffer.split(b"\n")
                for line in lines:
                    if line.strip() and not self.handle_safely(json.loads(line)):
                        return

    def handle_safely(self, command: dict[str, Any]) -> bool:
        try:
            return self.handle(command)
        except (OSError, KeyError, ValueError, TypeError) as error:
            emit(Event.ERROR, id=command.get("id"), op=command.get(OP), message=f"{type(error).__name__}: {error}")
            return True
        finally:
            if SEQ in command:
                emit(Event.DONE, **{SEQ: command[SEQ]})


def main(argv: list[str]) -> int:
    sc.set_parent_death_signal()
    if len(argv) != 2 or os.getppid() != int(argv[1]):
        return 1  # the simulator is already gone
    try:
        sc.unshare(sc.CLONE_NEWNS)
        sc.make_private("/")
        sc.mount("lambda-node-fabric", STATE_ROOT, "tmpfs", sc.MS_NOSUID | sc.MS_NODEV, "mode=0755")
        os.makedirs(NODES)
        os.makedirs(FILE_SYSTEMS)
        supervisor = Supervisor()
        remove_stale_groups()
    except OSError as error:
        emit(Event.FATAL, message=f"cannot set up the node fabric: {error}")
        return 1
    pid = os.getpid()
    emit(Event.HELLO, pid=pid, state_dir=f"/proc/{pid}/root{STATE_ROOT}", uid=supervisor.uid, gid=supervisor.gid)
    try:
        supervisor.serve()
    finally:
        supervisor.stop_all()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
