# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Linux system calls the node fabric needs and Python 3.11 lacks, through ctypes.

mount, umount2, unshare, pivot_root, prctl (parent-death signal, capability bounding set).
Each raises OSError with the errno and the call's arguments on failure.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform
import signal

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_MOVE = 0x2000
MS_REC = 0x4000
MS_PRIVATE = 0x40000
MNT_DETACH = 0x2
CLONE_NEWNS = 0x20000
PR_SET_PDEATHSIG = 1
PR_CAPBSET_DROP = 24

# Capabilities a node's processes do not get, root through sudo included: they would change the machine rather than
# the node (the network, the clock, kernel modules, raw I/O, the kernel log, file handles outside the root, device
# files), or reach past the node's own view (mounts, so no remounting a read-only host directory writable; ptrace).
# sshd and sudo keep what they need (setuid, setgid, chown, chroot, audit, kill).
CAP_DAC_READ_SEARCH = 2
CAP_NET_ADMIN = 12
CAP_SYS_MODULE = 16
CAP_SYS_RAWIO = 17
CAP_SYS_PTRACE = 19
CAP_SYS_ADMIN = 21
CAP_SYS_TIME = 25
CAP_MKNOD = 27
CAP_SYSLOG = 34
DROPPED_CAPABILITIES = (
    CAP_DAC_READ_SEARCH,
    CAP_NET_ADMIN,
    CAP_SYS_MODULE,
    CAP_SYS_RAWIO,
    CAP_SYS_PTRACE,
    CAP_SYS_ADMIN,
    CAP_SYS_TIME,
    CAP_MKNOD,
    CAP_SYSLOG,
)

_PIVOT_ROOT_NUMBERS = {"x86_64": 155, "aarch64": 41, "arm64": 41, "riscv64": 41, "ppc64le": 203, "s390x": 217}

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.mount.argtypes = (ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p)
_libc.umount2.argtypes = (ctypes.c_char_p, ctypes.c_int)
_libc.unshare.argtypes = (ctypes.c_int,)
_libc.prctl.argtypes = (ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong)


def _encode(value: str | None) -> bytes | None:
    return None if value is None else os.fsencode(value)


def _check(result: int, what: str) -> None:
    if result != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"{what}: {os.strerror(error)}")


def mount(source: str | None, target: str, fstype: str | None = None, flags: int = 0, data: str | None = None) -> None:
    result = _libc.mount(_encode(source), _encode(target), _encode(fstype), flags, _encode(data))
    _check(result, f"mount {fstype or 'bind'} {source} on {target} ({data or ''})")


def bind(source: str, target: str, read_only: bool = False, recursive: bool = False) -> None:
    """A bind mount; read-only ones are remounted read-only, as the kernel wants it."""
    mount(source, target, None, MS_BIND | (MS_REC if recursive else 0))
    if read_only:
        mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)


def umount(target: str, flags: int = 0) -> None:
    _check(_libc.umount2(_encode(target), flags), f"umount {target}")


def unshare(flags: int) -> None:
    _check(_libc.unshare(flags), f"unshare {flags:#x}")


def make_private(target: str = "/") -> None:
    """No mount or unmount below ``target`` propagates to or from other mount namespaces."""
    mount(None, target, None, MS_REC | MS_PRIVATE)


def pivot_root(new_root: str) -> None:
    """Make ``new_root`` (a mount point) the root and detach the old one (``pivot_root . .``)."""
    number = _PIVOT_ROOT_NUMBERS.get(platform.machine())
    os.chdir(new_root)
    if number is None:  # an architecture without a known number: a plain chroot does
        os.chroot(".")
        os.chdir("/")
        return
    _check(_libc.syscall(number, b".", b"."), f"pivot_root {new_root}")
    umount(".", MNT_DETACH)
    os.chdir("/")


def set_parent_death_signal(signum: int = signal.SIGKILL) -> None:
    """The kernel sends ``signum`` to this process when the thread that started it ends."""
    _check(_libc.prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0), "prctl(PR_SET_PDEATHSIG)")


def drop_capabilities(capabilities: tuple[int, ...] = DROPPED_CAPABILITIES) -> None:
    """Remove capabilities from the bounding set: programs started afterwards never get them."""
    for capability in capabilities:
        try:
            _check(_libc.prctl(PR_CAPBSET_DROP, capability, 0, 0, 0), f"prctl(PR_CAPBSET_DROP, {capability})")
        except OSError:
            pass  # a kernel without that capability
