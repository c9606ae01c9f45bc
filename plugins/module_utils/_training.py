# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A cluster ready to train: ranks, the hostfile, the torchrun environment, /etc/hosts, the readiness checks and the
smoke test's verdict. Pure functions behind the ``lambdalabs.cloud.training_*`` filters."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ansible_collections.lambdalabs.cloud.plugins.module_utils._api import natural_key

MARKER = "lambdalabs.cloud training_cluster"


def _shared_dir(host_vars: Mapping[str, Any], root: str) -> str | None:
    """Where the node's first file system is mounted: its reported mount point, else <root>/<name>."""
    mounts = [m.get("mount_point") for m in host_vars.get("lambda_file_system_mounts") or [] if isinstance(m, Mapping)]
    if mounts and mounts[0]:
        return mounts[0]
    names = host_vars.get("lambda_file_system_names") or []
    return f"{root.rstrip('/')}/{names[0]}" if names else None


def training_plan(
    hostvars: Mapping[str, Mapping[str, Any]],
    hosts: list[str],
    master_port: int = 29500,
    mount_root: str = "/lambda/nfs",
    shared_dir: str | None = None,
) -> dict[str, Any]:
    """Ranks in natural name order (the first node is the head), the hostfile, /etc/hosts lines, the shared directory.

    ``hostvars`` are the nodes' host variables (the inventory plugin's ``lambda_*``). A problem with them, such as a
    node without a private address, is returned as ``error``, one line.
    """
    members, problems = [], []
    for rank, host in enumerate(sorted(hosts, key=natural_key)):
        host_vars = hostvars.get(host) or {}
        private_ip = host_vars.get("lambda_private_ip")
        gpus = host_vars.get("lambda_gpus")
        if not private_ip:
            problems.append(f"{host} has no private IP address (lambda_private_ip)")
        members.append(
            {
                "name": host,
                "rank": rank,
                "private_ip": private_ip,
                "gpus": int(gpus or 0),
                "shared_dir": _shared_dir(host_vars, mount_root),
            }
        )
    shared = shared_dir or (members[0]["shared_dir"] if members else None)
    if not shared_dir and any(member["shared_dir"] != shared for member in members):
        where = ", ".join(f"{m['name']} has {m['shared_dir'] or 'none'}" for m in members)
        problems.append(f"the nodes do not share their first file system: {where}")
    return {
        "error": "; ".join(problems) + "." if problems else None,
        "members": members,
        "head": members[0]["name"] if members else None,
        "master_addr": members[0]["private_ip"] if members else None,
        "master_port": int(master_port),
        "nnodes": len(members),
        "shared_dir": shared,
        "hostfile": "".join(f"{m['name']} slots={max(m['gpus'], 1)}\n" for m in members),
        "hosts": "\n".join(f"{m['private_ip']} {m['name']}" for m in members if m["private_ip"]),
    }


def training_env(
    plan: Mapping[str, Any], host: str, interface: str | None, extra: Mapping[str, Any] | None = None
) -> str:
    """The /etc/lambda-cluster/env file of one node: ``source`` it before ``torchrun``."""
    member = next(m for m in plan["members"] if m["name"] == host)
    values: dict[str, Any] = {
        "MASTER_ADDR": plan["master_addr"],
        "MASTER_PORT": plan["master_port"],
        "NNODES": plan["nnodes"],
        "NODE_RANK": member["rank"],
        "NPROC_PER_NODE": max(member["gpus"], 1),
    }
    if interface:
        values.update(NCCL_SOCKET_IFNAME=interface, GLOO_SOCKET_IFNAME=interface)
    values.update({"NCCL_DEBUG": "WARN", "OMP_NUM_THREADS": 1})
    values.update(extra or {})
    lines = [f"# Written by {MARKER}; source it before torchrun."]
    lines += [f"export {key}={json.dumps(str(value))}" for key, value in values.items()]
    return "\n".join(lines) + "\n"


def readiness_problems(
    plan: Mapping[str, Any], checks: Mapping[str, Mapping[str, Any]], token: str | None = None
) -> list[str]:
    """One line per problem, each naming the node: unreachable private addresses, the next node not reached by name
    over SSH, GPUs missing, a file system that is not shared.

    ``checks`` maps the nodes checked to what each found: ``reachable`` (address -> bool), ``ssh`` (the registered
    result of ``ssh <next node> hostname`` run as ``user``; skipped or absent to skip that check), ``gpu`` (the gpu
    facts, or None to skip that check) and ``shared`` (what it read from the token file written on the head node).
    """
    problems = []
    members = plan["members"]
    for member in members:
        if member["name"] not in checks:
            continue
        found = checks[member["name"]] or {}
        for address, ok in sorted((found.get("reachable") or {}).items()):
            if not ok:
                other = next((m["name"] for m in members if m["private_ip"] == address.rsplit(":", 1)[0]), "?")
                problems.append(f"{member['name']} cannot reach {other} at its private address {address} (SSH).")
        ssh = found.get("ssh") or {}
        if ssh.get("rc", 0) != 0:
            following = members[(member["rank"] + 1) % len(members)]["name"]
            problems.append(
                f"{member['name']} cannot ssh to {following} by name as {found.get('user')}: "
                f"{str(ssh.get('stderr') or '').strip()[:200]}"
            )
        gpu = found.get("gpu")
        if gpu is not None and gpu.get("count") != member["gpus"]:
            problems.append(
                f"{member['name']} shows {gpu.get('count')} GPU(s) but its instance type has {member['gpus']}."
            )
        if token is not None and found.get("shared") != token:
            problems.append(
                f"{member['name']} does not see the file written on {plan['head']} in {plan['shared_dir']}: the file "
                "system is not shared."
            )
    return problems


def readiness_lines(
    plan: Mapping[str, Any], checks: Mapping[str, Mapping[str, Any]], token: str | None = None
) -> list[str]:
    """One line per node checked that has no problem, saying what was checked: its rank, the nodes it reached, the
    next node reached by name over SSH, the shared file system, its GPUs (same ``checks`` as ``readiness_problems``).
    """
    members = plan["members"]
    lines = []
    for member in members:
        found = checks.get(member["name"])
        if found is None or readiness_problems(plan, {member["name"]: found}, token):
            continue
        seen = ["reaches every node"]
        if (found.get("ssh") or {}).get("rc") is not None:
            seen.append(f"{members[(member['rank'] + 1) % len(members)]['name']} by name over SSH")
        if token is not None:
            seen.append("sees the shared file system")
        if found.get("gpu") is not None:
            seen.append(f"{found['gpu'].get('count')} GPU(s)")
        lines.append(f"{member['name']} (rank {member['rank']} of {plan['nnodes']}): {', '.join(seen)}.")
    return lines


SMOKE_PYTORCH = ("auto", "image", "venv")


def smoke_python(found: Mapping[str, Any], mode: Any = "auto", venv: str = "") -> dict[str, Any]:
    """The Python the smoke test runs with: the image's (Lambda Stack's PyTorch, imported by ``python3`` on every
    node), or a virtualenv's it installs first. ``found`` maps each node to the registered result of
    ``python3 -c 'import torch; print(torch.__version__)'`` (None or skipped where it was not looked for)."""
    if mode not in SMOKE_PYTORCH:
        return {"error": f"training_cluster_smoke_pytorch must be auto, image or venv, got {mode!r}."}
    missing = sorted((host for host, result in found.items() if not result or result.get("rc") != 0), key=natural_key)
    if mode == "image" and missing:
        where = ", ".join(missing)
        return {"error": f"training_cluster_smoke_pytorch is image, but python3 cannot import torch on {where}."}
    if mode == "venv" or missing or not found:
        return {"error": None, "python": f"{venv}/bin/python", "install": True, "source": f"the virtualenv {venv}"}
    versions = sorted({str(result.get("stdout", "")).strip() for result in found.values()})
    return {
        "error": None,
        "python": "python3",
        "install": False,
        "source": f"the image's PyTorch {', '.join(versions)}",
    }


# What pip or venv print when the packages' sources cannot be read, or hold none of the packages asked for.
_NO_SOURCE = (
    "Could not find a version that satisfies",
    "No matching distribution found",
    "Failed to establish a new connection",
    "Temporary failure in name resolution",
    "Network is unreachable",
    "Could not fetch URL",
    "ResolutionImpossible",
    "from versions: none",
)
# Less free space than this where the virtualenv goes is taken as the cause of a failed install: python3 -m venv
# hides the error of the pip it installs (ensurepip), and PyTorch's CPU build alone takes several hundred MiB.
LOW_SPACE_MIB = 256


def _free_mib(free: Any) -> int | None:
    """The MiB that ``df --output=avail -BM`` printed (its registered result), or None."""
    if not isinstance(free, Mapping) or free.get("rc") != 0:
        return None
    words = str(free.get("stdout") or "").split()
    value = words[-1].rstrip("M") if words else ""
    return int(value) if value.isdigit() else None


def smoke_install_failure(result: Mapping[str, Any], host: str, packages: Any = (), free: Any = None) -> str:
    """One line for a failed install of the smoke test's PyTorch on ``host``: the node and the cause, from the
    registered result of the pip task (its message and pip's output) and of ``df --output=avail -BM`` where the
    virtualenv goes (``free``), never a traceback."""
    text = "\n".join(str(result.get(key) or "") for key in ("msg", "stderr", "stdout"))
    wanted = ", ".join(str(p) for p in packages) if isinstance(packages, (list, tuple)) else str(packages or "")
    free_mib = _free_mib(free)
    no_source = any(sign in text for sign in _NO_SOURCE)
    if "No space left on device" in text or (not no_source and free_mib is not None and free_mib < LOW_SPACE_MIB):
        left = "" if free_mib is None else f" ({free_mib} MiB free where the virtualenv goes)"
        cause = (
            f"no space left on device on the node{left}. Free space there, or point training_cluster_smoke_venv at "
            "a larger disk."
        )
    elif no_source:
        cause = (
            f"pip could not get {wanted or 'the packages'} from its package sources (none reachable, or none holds "
            "them). training_cluster_smoke_pip_extra_args chooses the sources; an image with PyTorch needs none."
        )
    else:
        lines = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith((" ", "\t"))]
        last = next((line for line in reversed(lines) if not line.startswith("Traceback")), "no reason given")
        cause = "".join(char if char.isprintable() else " " for char in last)[:300]
    return f"{host}: installing PyTorch for the smoke test failed: {cause}"


def smoke_verdict(plan: Mapping[str, Any], outputs: Mapping[str, Any]) -> dict[str, Any]:
    """The all_reduce smoke test's verdict from each node's output (a JSON line the script prints).

    Every rank adds rank + 1; the sum must be n(n+1)/2 on every rank.
    """
    expected = plan["nnodes"] * (plan["nnodes"] + 1) / 2
    results, problems = {}, []
    for member in plan["members"]:
        text = str(outputs.get(member["name"]) or "")
        line = next((row for row in reversed(text.splitlines()) if row.startswith("{")), None)
        try:
            result = json.loads(line) if line else None
        except ValueError:
            result = None
        if not isinstance(result, dict):
            problems.append(f"{member['name']} printed no result: {text.strip()[-200:] or 'no output'}")
            continue
        results[member["name"]] = result
        if result.get("sum") != expected:
            problems.append(f"{member['name']} (rank {result.get('rank')}) got {result.get('sum')}, not {expected:g}")
    seconds = max((r.get("seconds", 0) for r in results.values()), default=None)
    backend = next((r.get("backend") for r in results.values()), None)
    ok = not problems and len(results) == plan["nnodes"]
    if ok:
        summary = f"all_reduce across {plan['nnodes']} node(s) with {backend}: sum {expected:g} on every rank, "
        summary += f"in {seconds:.2f} s."
    else:
        summary = "all_reduce failed: " + "; ".join(problems) + "."
    return {
        "ok": ok,
        "expected": expected,
        "backend": backend,
        "seconds": seconds,
        "results": results,
        "summary": summary,
    }


def known_hosts(plan: Mapping[str, Any], host_keys: Mapping[str, str]) -> str:
    """``ssh_known_hosts`` lines for every node, by name and private address, from each node's public host key."""
    lines = []
    for member in plan["members"]:
        key = " ".join(str(host_keys.get(member["name"]) or "").split()[:2])
        if key:
            names = ",".join(name for name in (member["name"], member["private_ip"]) if name)
            lines.append(f"{names} {key}")
    return "\n".join(lines)


def ssh_config(plan: Mapping[str, Any], identity: str, user: str) -> str:
    """The ssh client configuration that lets ``user`` reach every node by name with the cluster key."""
    names = " ".join(member["name"] for member in plan["members"])
    return f"Host {names}\n    User {user}\n    IdentityFile {identity}\n    StrictHostKeyChecking yes"
