# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""GPU nodes: nvidia-smi's output as facts and utilization samples, and what is wrong with a node, in sentences."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

# The fields the gpu_node role asks nvidia-smi --query-gpu for, in this order.
QUERY_FIELDS = ("index", "name", "memory.total", "driver_version", "persistence_mode", "uuid", "pci.bus_id")
_CUDA = re.compile(r"CUDA Version *: *([0-9][0-9.]*)")


def _int(text: str) -> int:
    try:
        return int(float(text))
    except ValueError:
        return 0


def parse_gpus(stdout: Any) -> list[dict[str, Any]]:
    """The GPUs of ``nvidia-smi --query-gpu=<QUERY_FIELDS> --format=csv,noheader,nounits``; other lines are skipped."""
    gpus = []
    for line in str(stdout or "").splitlines():
        field = [part.strip() for part in line.split(",")]
        if len(field) != len(QUERY_FIELDS) or not field[0].isdigit():
            continue
        gpus.append(
            {
                "index": int(field[0]),
                "name": field[1],
                "memory_mib": _int(field[2]),
                "driver_version": field[3],
                "persistence_mode": field[4].lower() == "enabled",
                "uuid": field[5],
                "pci_bus_id": field[6],
            }
        )
    return gpus


def gpu_facts(
    query: Mapping[str, Any], summary: Mapping[str, Any] | None, expected: Any = None, command: str = "nvidia-smi"
) -> dict[str, Any]:
    """``lambda_gpu_facts`` from the registered results of the query and of plain nvidia-smi."""
    rc = query.get("rc", 1)
    gpus = parse_gpus(query.get("stdout")) if rc == 0 else []
    cuda = _CUDA.search(str((summary or {}).get("stdout") or ""))
    output = " ".join(f"{query.get('stderr') or ''} {query.get('stdout') or ''}".split())
    if gpus:
        error = None
    elif output:
        error = output
    elif rc == 2 or query.get("msg", "").startswith("[Errno 2]"):
        error = f"{command} was not found"
    else:
        error = f"{command} listed no GPU (exit status {rc})"
    expected_count = None if expected in (None, "") else int(expected)
    return {
        "present": bool(gpus),
        "count": len(gpus),
        "model": gpus[0]["name"] if gpus else None,
        "models": list(dict.fromkeys(gpu["name"] for gpu in gpus)),
        "memory_mib": gpus[0]["memory_mib"] if gpus else None,
        "memory_total_mib": sum(gpu["memory_mib"] for gpu in gpus),
        "driver_version": gpus[0]["driver_version"] if gpus else None,
        "cuda_version": cuda.group(1) if cuda else None,
        "persistence_mode": all(gpu["persistence_mode"] for gpu in gpus) if gpus else None,
        "expected_count": expected_count,
        "gpus": gpus,
        "error": error,
    }


def with_persistence(facts: Mapping[str, Any], mode: bool) -> dict[str, Any]:
    """The facts after the persistence mode of every GPU was set to ``mode``."""
    gpus = [dict(gpu, persistence_mode=mode) for gpu in facts.get("gpus") or []]
    return dict(facts, gpus=gpus, persistence_mode=mode if gpus else None)


def parse_utilization(stdout: Any) -> list[int]:
    """The utilization of each GPU, in percent, from ``nvidia-smi --query-gpu=utilization.gpu --format=csv,...``."""
    found = []
    for line in str(stdout or "").splitlines():
        text = line.strip().rstrip("%").strip()
        if text.isdigit():
            found.append(int(text))
    return found


def node_problems(
    host: str,
    info: Mapping[str, Any],
    instance_type: Any = None,
    require_gpu: bool = True,
    check_count: bool = True,
    check_mounts: bool = True,
) -> list[str]:
    """What is wrong with a GPU node, one sentence each, from the result of the gpu_node_info module."""
    gpu, mounts = info.get("gpu") or {}, info.get("mounts") or {}
    problems = []
    if require_gpu and not gpu.get("present"):
        problems.append(
            f"{host} has no working GPU: {str(gpu.get('error') or 'nvidia-smi listed none')[:300]}. Check the NVIDIA "
            "driver (Lambda Stack images include it), or set gpu_node_require_gpu=false for hosts without a GPU."
        )
    expected = gpu.get("expected_count")
    if check_count and gpu.get("present") and expected is not None and gpu.get("count") != expected:
        problems.append(
            f"{host} shows {gpu.get('count')} GPU(s) but its instance type {instance_type or ''} has {expected}. A GPU "
            "may have fallen off the bus (see dmesg and nvidia-smi -q); contact Lambda support, or replace the node."
        )
    if check_mounts and mounts.get("problem"):
        problems.append(
            f"{host}: {mounts['problem']} Check the node's network to the file system, or restart the instance."
        )
    return problems


def node_summary(host: str, info: Mapping[str, Any]) -> str:
    """One line on a GPU node, from the result of the gpu_node_info module: its GPUs (or why it has none) and its
    hostname."""
    gpu = info.get("gpu") or {}
    if gpu.get("present"):
        shown = (
            f"{gpu.get('count')}x {gpu.get('model')}, {gpu.get('memory_mib')} MiB each, driver "
            f"{gpu.get('driver_version')}, CUDA {gpu.get('cuda_version') or 'unknown'}."
        )
    else:
        shown = f"no working GPU ({str(gpu.get('error') or 'nvidia-smi listed none')[:200]})."
    return f"{host}: {shown} Hostname {info.get('hostname')}."
