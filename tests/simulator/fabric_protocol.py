# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The words of the node fabric: what the simulator, the supervisor and each node's init say to each other.

The simulator (fabric_client.py) writes commands to the supervisor's stdin, the supervisor (fabric_supervisor.py)
writes events to its stdout, and each node's init (node_init.py) writes events to the supervisor, which passes
them on with the node's id: one JSON object a line, ``{"op": COMMAND, ...}`` or ``{"event": EVENT, ...}``.

Standard library only and free of the simulator's other modules: the supervisor and the nodes' init import it too.
"""

from __future__ import annotations

import json
import os
from typing import Any

OP = "op"  # the key of a command's name
EVENT = "event"  # the key of an event's name
SEQ = "seq"  # the key of a command's number, which its ``done`` event carries back
BOOT = "boot"  # the key of the boot (generation) of a node that an event is about


class Command:
    """From the simulator to the supervisor. Those with a ``seq`` are answered with ``done`` once carried out."""

    START = "start"  # id, config: start a new node
    RESTART = "restart"  # id: end the node's processes and boot it again, with its files
    STOP = "stop"  # id: end the node and remove its files
    GPUS = "gpus"  # id, utilization, visible: change what the node's nvidia-smi shows
    NETWORK = "network"  # id, private: sshd on the private address as well, or not
    DROP_FS = "drop_fs"  # fs_id: remove the directory of a deleted file system
    RESET = "reset"  # stop every node and remove every file system
    SHUTDOWN = "shutdown"  # stop every node and end


class Event:
    """From the supervisor to the simulator; ``ready``, ``network`` and ``error`` also from a node's init."""

    HELLO = "hello"  # pid, state_dir, uid, gid: the supervisor runs
    FATAL = "fatal"  # message: the supervisor could not start
    PID = "pid"  # pid: a node's init, as the machine sees it (node to supervisor only)
    STARTED = "started"  # id, pid, boot: a node's init runs
    READY = "ready"  # id, addresses, first_boot: the node's sshd accepts connections
    NETWORK = "network"  # id, addresses: the node's sshd listens on the addresses it should
    EXITED = "exited"  # id, status, error: a node ended by itself
    STOPPED = "stopped"  # id: a node was stopped and its files removed
    ERROR = "error"  # id, message: a command failed, or a node's init failed
    DONE = "done"  # seq: the command that carried this number is carried out


class NodeState:
    """A node's state as the simulator tracks it (``GET /_simulator/nodes`` shows it)."""

    STARTING = "starting"
    READY = "ready"
    FAILED = "failed"
    STOPPING = "stopping"
    STOPPED = "stopped"


class BootState:
    """What the fabric answers when the account asks whether a booting instance's node is up."""

    READY = "ready"
    WAITING = "waiting"
    FAILED = "failed"


# The files the supervisor writes in a node's directory and the node's init reads.
CONFIG_FILE = "config.json"  # the node's configuration: hostname, addresses, key, user data, mounts
DISK_DIR = "disk"  # the node's writable storage: a size-limited memory file system (its overlays' layers, /tmp)
CONTROL_DIR = "control"  # the settings that change while the node runs; the node sees it at NODE_CONTROL_DIR
NETWORK_FILE = "network.json"  # in CONTROL_DIR: {PRIVATE_NETWORK: bool}
PRIVATE_NETWORK = "private_network"  # the key of NETWORK_FILE: whether the private address answers
GPU_STATE_FILE = "gpus.json"  # in CONTROL_DIR: what nvidia-smi shows (node_nvidia_smi.py reads it)
GPU_STATE_LOCK = "gpus.lock"  # in CONTROL_DIR: held while GPU_STATE_FILE is read or changed
NODE_CONTROL_DIR = "/run/lambda-node"
NODES_DIR = "nodes"  # in the fabric's state directory: one directory a node, by instance id


def command_line(op: str, **fields: Any) -> bytes:
    """One command, as the supervisor reads it."""
    return (json.dumps({OP: op, **fields}) + "\n").encode("utf-8")


def emit(event: str, **fields: Any) -> None:
    """Write one event to stdout, unbuffered: the supervisor's to the simulator, a node's to the supervisor."""
    os.write(1, (json.dumps({EVENT: event, **fields}) + "\n").encode("utf-8"))
