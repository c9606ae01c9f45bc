# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading a GPU node for gpu_node_info: its options, and the facts made from what the node printed.

The node is read in one of two ways, with the same facts as the result. The module runs nvidia-smi and reads the
mount table in Python on the node. When a task asks only for the GPUs, the hostname and the mounts, the action plugin
instead runs one POSIX shell script over the connection (no Python on the node, so much less CPU per node) and
splits its output with :func:`split_read`. Both hand the outputs to :func:`node_facts`.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Mapping
from typing import Any

from ansible_collections.lambdalabs.cloud.plugins.module_utils._gpu import QUERY_FIELDS, gpu_facts
from ansible_collections.lambdalabs.cloud.plugins.module_utils._mounts import mount_facts

ARGUMENT_SPEC: dict[str, dict[str, Any]] = {
    # Used by the action plugin, on the controller: the wait for the connection and the checks of the facts.
    "connect_timeout": {"type": "float", "default": 0},
    "instance_type": {"type": "str"},
    "require_gpu": {"type": "bool", "default": False},
    "check_gpu_count": {"type": "bool", "default": False},
    "check_mounts": {"type": "bool", "default": False},
    "progress_seconds": {"type": "float", "default": 30},
    # Used on the node.
    "nvidia_smi": {"type": "str", "default": "nvidia-smi"},
    "expected_gpus": {"type": "int"},
    "file_system_names": {"type": "list", "elements": "str", "default": []},
    "file_system_mounts": {"type": "list", "elements": "dict", "default": []},
    "mount_root": {"type": "path", "default": "/lambda/nfs"},
    "utilization_samples": {"type": "int", "default": 0},
    "utilization_interval": {"type": "float", "default": 1},
    "private_address": {"type": "str"},
    "reach": {"type": "list", "elements": "str", "default": []},
}
# The arguments of one utilization sample.
UTILIZATION_ARGS = ("--query-gpu=utilization.gpu", "--format=csv,noheader,nounits")
# The arguments of the GPU query.
QUERY_ARGS = (f"--query-gpu={','.join(QUERY_FIELDS)}", "--format=csv,noheader,nounits")
# Every command on the node is stopped after this long (coreutils' timeout, where the node has it).
COMMAND_SECONDS = 60
_SECTION = re.compile(r"^(@@[0-9a-f]{16}) (\w+)(?: (-?\d+))?$")


def needs_module(params: Mapping[str, Any]) -> bool:
    """Whether the task asks for more than the shell read gives (utilization samples, an interface, reachability), or
    for a mount root that only the node can expand (``~``, ``$VAR``)."""
    root = str(params.get("mount_root") or "")
    asked = [params.get(option) for option in ("utilization_samples", "private_address", "reach")]
    return any(asked) or "~" in root or "$" in root


def read_script(nvidia_smi: str, marker: str) -> str:
    """A POSIX shell script that prints, in sections headed by ``marker``: the GPU query and its exit status, plain
    nvidia-smi (for the CUDA version) when the query worked, the hostname and the mount table.

    Each section header goes to stdout and to stderr, so that a command's errors can be told apart.
    """
    query = " ".join(shlex.quote(arg) for arg in QUERY_ARGS)
    return "\n".join(
        [
            f"M={shlex.quote(marker)}; smi={shlex.quote(nvidia_smi)}",
            "PATH=${PATH:-/usr/bin:/bin}:/usr/local/sbin:/usr/sbin:/sbin",
            'section() { printf \'\\n%s %s\\n\' "$M" "$*"; printf \'\\n%s %s\\n\' "$M" "$*" >&2; }',
            # Every command reads nothing: the script itself arrives on the shell's standard input.
            "limit() { if command -v timeout >/dev/null 2>&1; then "
            f'timeout --kill-after=5 {COMMAND_SECONDS} "$@" </dev/null; else "$@" </dev/null; fi; }}',
            # A name is looked up in PATH as a file (not as a shell builtin or function), as the module does.
            'case $smi in */*) p=$smi ;; *) p=; IFS=:; for d in $PATH; do if [ -f "$d/$smi" ] && [ -x "$d/$smi" ]; '
            "then p=$d/$smi; break; fi; done; unset IFS ;; esac",
            "section query",
            f'if [ -n "$p" ] && [ -f "$p" ] && [ -x "$p" ]; then limit "$p" {query}; rc=$?; else rc=2; fi',
            'section status "$rc"',
            'if [ "$rc" -eq 0 ]; then section summary; limit "$p"; fi',
            "section hostname; uname -n </dev/null",
            "section mountinfo; cat /proc/self/mountinfo </dev/null",
            'section mounts "$?"',
            "section end",
            "exit 0",
            "",
        ]
    )


def _sections(text: str, marker: str) -> dict[str, tuple[str, int | None]]:
    found: dict[str, tuple[str, int | None]] = {}
    name, number, lines = None, None, []
    for line in str(text or "").replace("\r\n", "\n").split("\n"):
        match = _SECTION.match(line)
        if match and match.group(1) == marker:
            if name is not None:
                found[name] = ("\n".join(lines[:-1]) if lines and lines[-1] == "" else "\n".join(lines), number)
            name, number, lines = match.group(2), match.group(3), []
            number = int(number) if number is not None else None
        elif name is not None:
            lines.append(line)
    if name is not None:
        found[name] = ("\n".join(lines), number)
    return found


def split_read(stdout: str, stderr: str, marker: str) -> dict[str, Any]:
    """What :func:`read_script` printed: ``query`` (rc, stdout, stderr), ``summary`` (or None), ``hostname`` and
    ``mountinfo``. Raises ValueError when the script did not run to its end."""
    out, err = _sections(stdout, marker), _sections(stderr, marker)
    if "end" not in out or "status" not in out:
        shown = " ".join(f"{stderr} {stdout}".split())[:300]
        raise ValueError(f"the node did not run the shell commands that read it: {shown or 'no output'}")
    rc = out["status"][1]
    return {
        "query": {"rc": rc, "stdout": out["query"][0], "stderr": err.get("query", ("", None))[0]},
        "summary": {"stdout": out["summary"][0]} if "summary" in out else None,
        "hostname": out["hostname"][0].strip(),
        # None where the mount table could not be read, as the module reports it.
        "mountinfo": out["mountinfo"][0] if out.get("mounts", ("", 1))[1] == 0 else None,
    }


def node_facts(
    params: Mapping[str, Any],
    query: Mapping[str, Any],
    summary: Mapping[str, Any] | None,
    hostname: str,
    mountinfo: str | None,
    ismount: Callable[[str], bool] | None = None,
) -> dict[str, Any]:
    """The ``gpu``, ``hostname`` and ``mounts`` of the result, from what the node printed. Without a mount table
    (``mountinfo`` None), ``ismount`` tells whether a path is mounted."""
    smi = params.get("nvidia_smi") or "nvidia-smi"
    mounts = (params.get("file_system_names"), params.get("file_system_mounts"), params["mount_root"])
    return {
        "gpu": gpu_facts(query, summary, params.get("expected_gpus"), smi),
        "hostname": hostname,
        "mounts": mount_facts(*mounts, mountinfo, ismount),
    }
