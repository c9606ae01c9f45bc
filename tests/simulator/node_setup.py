# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What cloud-init does at a simulated node's first boot, run inside the node's own root.

Hostname files, a fresh machine id and cloud-init state, the ``ubuntu`` user with the launch's
key and passwordless sudo, the node's own SSH host key and sshd configuration, the stand-in
``nvidia-smi``, and with Lambda Stack's stand-in its ``torchrun``. Every file written here lands in the node's
overlay, never on the host.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from typing import Any

USER = "ubuntu"
HOME = "/home/ubuntu"
SSHD_CONFIG = "/etc/ssh/sshd_config"
HOST_KEY = "/etc/ssh/ssh_host_ed25519_key"
SUDOERS = "/etc/sudoers.d/90-cloud-init-users"
NVIDIA_SMI = "/usr/bin/nvidia-smi"
# Lambda Stack's torchrun, for the system python3 that imports the stand-in's PyTorch.
TORCHRUN = "/usr/bin/torchrun"
TORCHRUN_SCRIPT = """#!/usr/bin/python3
# Lambda Stack's torchrun on a simulated node (the Lambda Cloud simulator's node fabric).
import sys

from torch.distributed.run import main

sys.exit(main())
"""
CLOUD_STATE = ("/var/lib/cloud", "/var/log/cloud-init.log", "/var/log/cloud-init-output.log")
ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "HOME": "/root"}

SSHD_SETTINGS = """\
# Written at this node's first boot by the Lambda Cloud simulator's node fabric.
# The listen addresses come from the command line (the node's public and private address).
Port 22
HostKey {host_key}
PidFile /run/sshd.pid
PermitRootLogin prohibit-password
PubkeyAuthentication yes
AuthorizedKeysFile .ssh/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
UseDNS no
X11Forwarding no
PrintMotd no
AcceptEnv LANG LC_*
MaxStartups 200:30:400
MaxSessions 100
Subsystem sftp internal-sftp
"""


def first_boot(config: dict[str, Any]) -> tuple[int, int]:
    """Everything a node needs before its sshd starts for the first time; the ubuntu user's (uid, gid)."""
    hostname = config["hostname"]
    for path in CLOUD_STATE:
        remove(path)
    write("/etc/hostname", hostname + "\n")
    write("/etc/hosts", f"127.0.0.1 localhost\n{config['ip']} {hostname}\n")
    write("/etc/machine-id", uuid.uuid4().hex + "\n", 0o444)
    uid, gid = add_user(config["uid"], config["gid"])
    authorize(config["public_key"], uid, gid)
    write(SUDOERS, f"# Created by the Lambda Cloud simulator\n{USER} ALL=(ALL) NOPASSWD:ALL\n", 0o440)
    host_key(hostname)
    write(SSHD_CONFIG, SSHD_SETTINGS.format(host_key=HOST_KEY), 0o644)
    # -IS: no site packages, no environment; the stand-in needs the standard library only, and starts faster.
    write(NVIDIA_SMI, f"#!{config['python']} -IS\n" + config["nvidia_smi"], 0o755)
    if config.get("lambda_stack"):
        write(TORCHRUN, TORCHRUN_SCRIPT, 0o755)
    os.makedirs("/var/lib/cloud/instance/scripts", mode=0o755, exist_ok=True)
    return uid, gid


def remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        os.unlink(path)


def write(path: str, text: str, mode: int | None = None) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    if mode is not None:
        os.chmod(path, mode)


def entries(path: str) -> list[list[str]]:
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as handle:
        return [line.rstrip("\n").split(":") for line in handle if line.strip()]


def _rewrite(path: str, entries: list[list[str]]) -> None:
    if os.path.exists(path):  # keeps the file's mode and owner (shadow files are not world-readable)
        with open(path, "w", encoding="utf-8") as handle:
            handle.writelines(":".join(entry) + "\n" for entry in entries)


def add_user(uid: int, gid: int) -> tuple[int, int]:
    """The ``ubuntu`` user (in the sudo and adm groups) with a home from /etc/skel; its (uid, gid)."""
    passwd = entries("/etc/passwd")
    existing = next((entry for entry in passwd if entry[0] == USER), None)
    if existing is not None:
        uid, gid = int(existing[2]), int(existing[3])
    else:
        passwd.append([USER, "x", str(uid), str(gid), "Ubuntu", HOME, "/bin/bash"])
        _rewrite("/etc/passwd", passwd)
        shadow = entries("/etc/shadow")
        shadow.append([USER, "*", str(int(time.time() // 86400)), "0", "99999", "7", "", "", ""])
        _rewrite("/etc/shadow", shadow)
    groups = entries("/etc/group")
    gshadow = entries("/etc/gshadow")
    if not any(entry[0] == USER for entry in groups):
        groups.append([USER, "x", str(gid), ""])
        gshadow.append([USER, "!", "", ""])
    for table in (groups, gshadow):
        for entry in table:
            if entry[0] in ("sudo", "adm") and len(entry) >= 4:
                members = [name for name in entry[-1].split(",") if name]
                if USER not in members:
                    entry[-1] = ",".join([*members, USER])
    _rewrite("/etc/group", groups)
    _rewrite("/etc/gshadow", gshadow)
    if not os.path.isdir(HOME):
        if os.path.isdir("/etc/skel"):
            shutil.copytree("/etc/skel", HOME, symlinks=True)
        else:
            os.makedirs(HOME)
    os.chmod(HOME, 0o750)
    for directory, names, files in os.walk(HOME):
        for name in [directory, *(os.path.join(directory, entry) for entry in names + files)]:
            os.lchown(name, uid, gid)
    return uid, gid


def user_ids(uid: int, gid: int) -> tuple[int, int]:
    """The ubuntu user's (uid, gid) as the node's /etc/passwd has them; the given ones if it has none."""
    for entry in entries("/etc/passwd"):
        if entry[0] == USER:
            return int(entry[2]), int(entry[3])
    return uid, gid


def authorize(public_key: str, uid: int, gid: int) -> None:
    ssh_dir = os.path.join(HOME, ".ssh")
    os.makedirs(ssh_dir, mode=0o700, exist_ok=True)
    keys = os.path.join(ssh_dir, "authorized_keys")
    write(keys, public_key.strip() + "\n", 0o600)
    for path in (ssh_dir, keys):
        os.chown(path, uid, gid)


def host_key(hostname: str) -> None:
    """A host key of the node's own (the host's keys, seen through the overlay, are removed)."""
    for name in os.listdir("/etc/ssh") if os.path.isdir("/etc/ssh") else ():
        if name.startswith("ssh_host_"):
            os.unlink(os.path.join("/etc/ssh", name))
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"root@{hostname}", "-f", HOST_KEY],
        check=True,
        env=ENV,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
    )
