# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The first process of a simulated node: PID 1 of its own PID, mount, UTS and IPC namespaces.

The fabric supervisor starts it as ``unshare --uts --mount --ipc --pid --kill-child ... node_init.py NODE_DIR``.
It sets the hostname, assembles the node's root from overlays of the host's directories (the
upper layers in NODE_DIR), pivots into it, runs the first-boot setup once, starts sshd on the
node's addresses, reports ``ready`` and runs the launch's user data once. Then it reaps orphans,
restarts sshd when the control directory changes the private network (SIGUSR1), and ends
everything in the node on a SIGTERM from outside it. It reports to the supervisor in JSON lines on stdout.
"""

from __future__ import annotations

import grp
import json
import os
import signal
import socket
import subprocess
import sys
import time
import traceback
from typing import Any

import fabric_syscalls as sc
import node_setup
from fabric_protocol import (
    CONFIG_FILE,
    CONTROL_DIR,
    DISK_DIR,
    NETWORK_FILE,
    NODE_CONTROL_DIR,
    PRIVATE_NETWORK,
    Event,
    emit,
)
from node_setup import ENV

SPECIAL = ("proc", "sys", "dev", "tmp", "run")
SKIPPED = ("lost+found",)
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
STAGING = "/run/lambda-fs"  # shared file systems wait here until the first boot made their owner
SIGNALS = {signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1}  # SIGHUP: ignored
READY_TIMEOUT = 20.0
RUN_MIB = 64  # the node's /run (sshd's and the control files)
OUTPUT_LOG = "/var/log/cloud-init-output.log"
BOOT_FINISHED = "/var/lib/cloud/instance/boot-finished"
USER_SCRIPT = "/var/lib/cloud/instance/scripts/part-001"
PER_BOOT = "/var/lib/cloud/scripts/per-boot"  # cloud-init's scripts_per_boot: run at every boot, as root


def unblock_signals() -> None:
    """In a child before exec: the signals this init waits for are blocked; its programs get them back."""
    signal.pthread_sigmask(signal.SIG_SETMASK, set())


# ---------------------------------------------------------------------- the root


def assemble_root(node_dir: str, config: dict[str, Any]) -> str:
    """The node's root at NODE_DIR/root: host directories as overlays, fresh /tmp, /run, /dev, /proc."""
    root = os.path.join(node_dir, "root")
    os.makedirs(root, exist_ok=True)
    sc.bind(root, root)
    for name in sorted(os.listdir("/")):
        source, target = "/" + name, os.path.join(root, name)
        if name in SKIPPED:
            continue
        if os.path.islink(source):
            if not os.path.lexists(target):
                os.symlink(os.readlink(source), target)
        elif name in SPECIAL:
            os.makedirs(target, exist_ok=True)
        elif os.path.isdir(source):
            os.makedirs(target, exist_ok=True)
            overlay_or_bind(source, target, node_dir, name)
        elif os.path.isfile(source):
            if not os.path.exists(target):
                open(target, "a").close()
            sc.bind(source, target, read_only=True)
    mount_proc(os.path.join(root, "proc"))
    sc.bind("/sys", os.path.join(root, "sys"), read_only=True)
    mount_dev(os.path.join(root, "dev"), config["disk_mib"])
    # /tmp is part of the node's storage (its size limit); /run holds only the node's runtime files.
    tmp = os.path.join(node_dir, DISK_DIR, "tmp")
    os.makedirs(tmp, exist_ok=True)
    os.chmod(tmp, 0o1777)
    sc.bind(tmp, os.path.join(root, "tmp"))
    run = os.path.join(root, "run")
    sc.mount("tmpfs", run, "tmpfs", sc.MS_NOSUID | sc.MS_NODEV, f"size={RUN_MIB}m,mode=0755")
    control = os.path.basename(NODE_CONTROL_DIR)
    for directory, mode in (("sshd", 0o755), ("lock", 0o1777), (control, 0o755), (os.path.basename(STAGING), 0o700)):
        os.mkdir(os.path.join(run, directory))
        os.chmod(os.path.join(run, directory), mode)
    sc.bind(os.path.join(node_dir, CONTROL_DIR), os.path.join(run, control))
    if config.get("lambda_stack"):
        # Lambda Stack's stand-in: packages the node's python3 imports (its site directory under /usr/local).
        site = os.path.join(root, local_site_packages().lstrip("/"))
        os.makedirs(site, exist_ok=True)
        sc.bind(config["lambda_stack"], site, read_only=True)
    for index, mount in enumerate(config["mounts"]):
        staging = os.path.join(run, os.path.basename(STAGING), str(index))
        os.mkdir(staging)
        sc.bind(mount["source"], staging)
    return root


def local_site_packages() -> str:
    """The /usr/local site directory of the system python3 that the node's programs run, which it imports from."""
    found = subprocess.run(
        ["/usr/bin/python3", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return f"/usr/local/lib/python{found}/dist-packages"


def overlay_or_bind(source: str, target: str, node_dir: str, name: str) -> None:
    """An overlay with the host directory below and the node's own layer above; read-only bind if impossible."""
    upper, work = (os.path.join(node_dir, DISK_DIR, layer, name) for layer in ("upper", "work"))
    if not any(char in source for char in ",:\\"):
        os.makedirs(upper, exist_ok=True)
        os.makedirs(work, exist_ok=True)
        try:
            sc.mount("overlay", target, "overlay", 0, f"lowerdir={source},upperdir={upper},workdir={work}")
            return
        except OSError as error:
            print(f"overlay of {source} failed ({error}); read-only bind instead", file=sys.stderr)
    sc.bind(source, target, read_only=True)


def mount_proc(target: str) -> None:
    """The node's own /proc; the kernel settings under it stay read-only (they are the machine's)."""
    sc.mount("proc", target, "proc", sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC)
    for name in ("sys", "sysrq-trigger", "irq", "bus"):
        path = os.path.join(target, name)
        if os.path.exists(path):
            sc.bind(path, path, read_only=True)


def mount_dev(target: str, shm_mib: int) -> None:
    sc.mount("tmpfs", target, "tmpfs", sc.MS_NOSUID, "mode=0755")
    for name in DEVICES:
        path = os.path.join(target, name)
        open(path, "a").close()
        sc.bind("/dev/" + name, path)
    os.mkdir(os.path.join(target, "pts"))
    try:
        tty_gid = grp.getgrnam("tty").gr_gid
    except KeyError:
        tty_gid = 5
    options = f"newinstance,ptmxmode=0666,mode=0620,gid={tty_gid}"
    sc.mount("devpts", os.path.join(target, "pts"), "devpts", sc.MS_NOSUID | sc.MS_NOEXEC, options)
    os.mkdir(os.path.join(target, "shm"))
    sc.mount("tmpfs", os.path.join(target, "shm"), "tmpfs", sc.MS_NOSUID | sc.MS_NODEV, f"size={shm_mib}m,mode=1777")
    links = {"ptmx": "pts/ptmx", "fd": "/proc/self/fd", "stdin": "/proc/self/fd/0"}
    links |= {"stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2"}
    for name, destination in links.items():
        os.symlink(destination, os.path.join(target, name))


def mount_file_systems(config: dict[str, Any], uid: int, gid: int) -> None:
    """Move the staged shared file systems to their mount points (created for the ubuntu user)."""
    for index, mount in enumerate(config["mounts"]):
        point = mount["target"]
        if not os.path.isdir(point):
            os.makedirs(point)
            if point.startswith(node_setup.HOME + "/"):
                os.chown(point, uid, gid)
        sc.mount(os.path.join(STAGING, str(index)), point, None, sc.MS_MOVE)
        os.rmdir(os.path.join(STAGING, str(index)))


# ---------------------------------------------------------------------- the running node


class Node:
    """The node's processes, as seen by its init."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.sshd: subprocess.Popen[bytes] | None = None
        self.user_data: subprocess.Popen[bytes] | None = None
        self.addresses: list[str] = []

    def wanted_addresses(self) -> list[str]:
        network = {PRIVATE_NETWORK: True}
        try:
            with open(os.path.join(NODE_CONTROL_DIR, NETWORK_FILE), encoding="utf-8") as handle:
                network.update(json.load(handle))
        except (OSError, ValueError):
            pass
        return [self.config["ip"]] + ([self.config["private_ip"]] if network[PRIVATE_NETWORK] else [])

    def start_sshd(self) -> None:
        self.addresses = self.wanted_addresses()
        wait_until(lambda: all(port_free(address) for address in self.addresses), 10.0)
        command = ["/usr/sbin/sshd", "-D", "-e", "-f", node_setup.SSHD_CONFIG]
        for address in self.addresses:
            command += ["-o", f"ListenAddress={address}:22"]
        with open("/var/log/sshd.log", "ab") as log:
            self.sshd = spawn(command, log)
        sshd = self.sshd

        def listening() -> bool:
            if sshd.poll() is not None:
                raise RuntimeError(f"sshd exited with status {sshd.returncode}: {log_tail('/var/log/sshd.log')}")
            return all(accepts(address) for address in self.addresses)

        if not wait_until(listening, READY_TIMEOUT):
            raise RuntimeError(f"sshd did not accept connections within {READY_TIMEOUT:g}s")

    def stop_sshd(self) -> None:
        if self.sshd is not None and self.sshd.returncode is None:
            self.sshd.terminate()
            try:
                os.waitpid(self.sshd.pid, 0)
            except ChildProcessError:
                pass  # reaped already
        self.sshd = None

    def reload_network(self) -> None:
        if self.wanted_addresses() != self.addresses:
            self.stop_sshd()
            self.start_sshd()
        emit(Event.NETWORK, addresses=self.addresses)

    def run_user_data(self) -> None:
        """The launch's user data, once, at first boot, as cloud-init's scripts-user does it."""
        user_data = self.config.get("user_data") or ""
        with open(OUTPUT_LOG, "ab") as log:
            os.chmod(OUTPUT_LOG, 0o640)
            log.write(f"Cloud-init v. simulator running 'modules:final' at {time.ctime()}.\n".encode())
            if not user_data.startswith("#!"):
                if user_data:
                    log.write(b"The user data is not a shell script; the simulator runs only scripts.\n")
                self.finish_boot()
                return
            node_setup.write(USER_SCRIPT, user_data, 0o700)
            log.flush()
            self.user_data = spawn([USER_SCRIPT], log)

    def run_per_boot(self) -> None:
        """The executables in cloud-init's per-boot directory, at every boot, in the order of their names, as
        cloud-init's scripts-per-boot runs them (they run on; orphans are reaped)."""
        try:
            names = sorted(os.listdir(PER_BOOT))
        except OSError:
            return
        with open(OUTPUT_LOG, "ab") as log:
            for name in names:
                path = os.path.join(PER_BOOT, name)
                if os.path.isfile(path) and os.access(path, os.X_OK):
                    log.write(f"Running per-boot script {path}\n".encode())
                    log.flush()
                    spawn([path], log)

    def finish_boot(self) -> None:
        with open(OUTPUT_LOG, "ab") as log:
            log.write(f"Cloud-init v. simulator finished at {time.ctime()}.\n".encode())
        node_setup.write(BOOT_FINISHED, f"{time.time()}\n")

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            for process in (self.sshd, self.user_data):
                if process is not None and process.pid == pid:
                    process.returncode = os.waitstatus_to_exitcode(status)
            if self.user_data is not None and self.user_data.pid == pid:
                self.user_data = None
                self.finish_boot()

    def serve(self) -> None:
        while True:
            info = signal.sigwaitinfo(SIGNALS)
            if info.si_signo == signal.SIGCHLD:
                self.reap()
            elif info.si_signo == signal.SIGUSR1:
                self.reload_network()
            elif info.si_signo in (signal.SIGTERM, signal.SIGINT) and info.si_pid == 0:
                # From outside the node (a sender in the node would have a PID here): end the node.
                os.kill(-1, signal.SIGKILL)  # every other process of this PID namespace
                return


def spawn(command: list[str], log: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
        env=ENV,
        cwd="/",
        preexec_fn=unblock_signals,  # noqa: PLW1509 - this init has a single thread
        close_fds=True,
    )


def wait_until(condition: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def port_free(address: str) -> bool:
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((address, 22))
    except OSError:
        return False
    finally:
        probe.close()
    return True


def accepts(address: str) -> bool:
    try:
        with socket.create_connection((address, 22), timeout=0.5):
            return True
    except OSError:
        return False


def log_tail(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return " ".join(handle.read()[-400:].split())
    except OSError:
        return ""


def boot(node_dir: str) -> Node:
    with open(os.path.join(node_dir, CONFIG_FILE), encoding="utf-8") as handle:
        config = json.load(handle)
    emit(Event.PID, pid=int(os.readlink("/proc/self")))  # the host's /proc is still mounted: the host's PID
    socket.sethostname(config["hostname"])
    root = assemble_root(node_dir, config)
    node_dir_fd = os.open(node_dir, os.O_RDONLY | os.O_DIRECTORY)
    sc.pivot_root(root)
    sc.drop_capabilities()
    try:
        os.stat("booted", dir_fd=node_dir_fd)
        first_boot = False
    except FileNotFoundError:
        first_boot = True
    if first_boot:
        uid, gid = node_setup.first_boot(config)
    else:
        uid, gid = node_setup.user_ids(config["uid"], config["gid"])
    mount_file_systems(config, uid, gid)
    if first_boot:
        os.close(os.open("booted", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=node_dir_fd))
    # No descriptor of this init (which root in the node can follow through /proc/1/fd) leads to the fabric's state.
    os.close(node_dir_fd)
    node = Node(config)
    node.start_sshd()
    emit(Event.READY, addresses=node.addresses, first_boot=first_boot)
    node.run_per_boot()
    if first_boot:
        node.run_user_data()
    return node


def main(argv: list[str]) -> int:
    signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
    for signum in SIGNALS - {signal.SIGCHLD}:  # a PID namespace's init gets only signals it handles
        signal.signal(signum, lambda *_args: None)
    try:
        node = boot(argv[1])
    except Exception as error:
        traceback.print_exc()
        emit(Event.ERROR, message=f"{type(error).__name__}: {error}")
        return 1
    node.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
