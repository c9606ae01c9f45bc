# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A stand-in ``nvidia-smi`` for the simulator's nodes, standard library only.

The node fabric installs this file as ``/usr/bin/nvidia-smi`` in a node's root. It prints what
the real tool prints for the summary table, ``-L``, ``--query-gpu=... --format=csv[,noheader][,nounits]``
and ``-pm``/``--persistence-mode``, for the GPUs described in the node's state file
(``/run/lambda-node/gpus.json``, or ``$LAMBDA_NODE_GPU_STATE``), which the fabric writes.
It stands alone (the fabric copies its source into the node), so it repeats that path and the lock's
name (``gpus.lock``) rather than importing them from fabric_protocol.py.
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
import time
from typing import Any

STATE_FILE = os.environ.get("LAMBDA_NODE_GPU_STATE", "/run/lambda-node/gpus.json")
BAD_ARGUMENTS = "Invalid combination of input arguments. Please run 'nvidia-smi -h' for help."
RULE = "+" + "-" * 41 + "+" + "-" * 24 + "+" + "-" * 22 + "+"
WIDE = "+" + "-" * 89 + "+"

# Other names the real tool accepts for some query fields.
ALIASES = {"gpu_name": "name", "gpu_uuid": "uuid", "gpu_bus_id": "pci.bus_id", "persistence-mode": "persistence_mode"}


class NoMatch(Exception):
    """No visible GPU matches an -i/--id value."""


def field_value(field: str, index: int, gpu: dict[str, Any], state: dict[str, Any]) -> tuple[str, str]:
    """(unit for the header, value with its unit) of one query field for one GPU."""
    used = memory_used(gpu)
    values: dict[str, tuple[str, str]] = {
        "index": ("", str(index)),
        "name": ("", gpu["name"]),
        "uuid": ("", gpu["uuid"]),
        "pci.bus_id": ("", gpu["pci_bus_id"]),
        "serial": ("", gpu["serial"]),
        "count": ("", str(len(visible_gpus(state)))),
        "driver_version": ("", state["driver_version"]),
        "persistence_mode": ("", "Enabled" if gpu["persistence_mode"] else "Disabled"),
        "memory.total": ("MiB", f"{gpu['memory_mib']} MiB"),
        "memory.used": ("MiB", f"{used} MiB"),
        "memory.free": ("MiB", f"{gpu['memory_mib'] - used} MiB"),
        "utilization.gpu": ("%", f"{gpu['utilization']} %"),
        "utilization.memory": ("%", f"{gpu['utilization'] // 2} %"),
        "temperature.gpu": ("", str(temperature(gpu))),
        "power.draw": ("W", f"{power_draw(gpu):.2f} W"),
        "power.limit": ("W", f"{gpu['power_cap_w']:.2f} W"),
        "pstate": ("", "P0"),
        "compute_mode": ("", "Default"),
        "mig.mode.current": ("", "Disabled"),
    }
    if field not in values:
        raise KeyError(field)
    return values[field]


def memory_used(gpu: dict[str, Any]) -> int:
    return 1 + gpu["memory_mib"] * gpu["utilization"] // 200


def temperature(gpu: dict[str, Any]) -> int:
    return 28 + gpu["utilization"] * 4 // 10


def power_draw(gpu: dict[str, Any]) -> float:
    return gpu["power_cap_w"] * (0.1 + 0.8 * gpu["utilization"] / 100)


def visible_gpus(state: dict[str, Any]) -> list[dict[str, Any]]:
    return state["gpus"][: state.get("visible", len(state["gpus"]))]


def selected(state: dict[str, Any], ids: str | None) -> list[tuple[int, dict[str, Any]]]:
    gpus = list(enumerate(visible_gpus(state)))
    if ids is None:
        return gpus
    chosen = []
    for wanted in (part.strip() for part in ids.split(",")):
        match = [(index, gpu) for index, gpu in gpus if wanted in (str(index), gpu["uuid"], gpu["pci_bus_id"])]
        if not match:
            raise NoMatch(f"No devices were found matching {wanted}")
        chosen.extend(match)
    return chosen


def summary(state: dict[str, Any]) -> str:
    driver, cuda = state["driver_version"], state["cuda_version"]
    lines = [
        time.strftime("%a %b %d %H:%M:%S %Y") + "       ",
        WIDE,
        f"| NVIDIA-SMI {driver:<23}Driver Version: {driver:<15}CUDA Version: {cuda:<9}|",
        "|" + "-" * 41 + "+" + "-" * 24 + "+" + "-" * 22 + "|",
        "| GPU  Name                 Persistence-M | Bus-Id          Disp.A | Volatile Uncorr. ECC |",
        "| Fan  Temp   Perf          Pwr:Usage/Cap |           Memory-Usage | GPU-Util  Compute M. |",
        "|                                         |                        |               MIG M. |",
        "|" + "=" * 41 + "+" + "=" * 24 + "+" + "=" * 22 + "|",
    ]
    for index, gpu in enumerate(visible_gpus(state)):
        name = gpu["name"] if len(gpu["name"]) <= 29 else gpu["name"][:26] + "..."
        persistence = "On" if gpu["persistence_mode"] else "Off"
        power = f"{power_draw(gpu):.0f}"
        lines += [
            f"|{index:>4}  {name:<29}{persistence:>4}  |{gpu['pci_bus_id']:>19} Off |{0:>21} |",
            f"| N/A   {temperature(gpu):>2}C    P0{power:>15}W / {gpu['power_cap_w']:>4}W |"
            f"{memory_used(gpu):>8}MiB / {gpu['memory_mib']:>6}MiB |{gpu['utilization']:>7}%      Default |",
            f"|{'':41}|{'':24}|{'Disabled':>21} |",
            RULE,
        ]
    lines += [
        " " * 91,
        WIDE,
        f"| {'Processes:':<88}|",
        "|  GPU   GI   CI        PID   Type   Process name                              GPU Memory |",
        "|        ID   ID                                                               Usage      |",
        "|" + "=" * 89 + "|",
        f"|  {'No running processes found':<87}|",
        WIDE,
    ]
    return "\n".join(lines)


def query(state: dict[str, Any], fields_text: str, format_text: str | None, ids: str | None) -> tuple[int, str]:
    if not format_text:
        return 2, "Please specify the output format with --format=csv. See 'nvidia-smi -h' for help."
    options = [part.strip() for part in format_text.split(",")]
    if options[0] != "csv" or not set(options[1:]) <= {"noheader", "nounits"}:
        return 2, f'"{format_text}" is not a valid format. Use --format=csv[,noheader][,nounits].'
    fields = [ALIASES.get(name.strip(), name.strip()) for name in fields_text.split(",") if name.strip()]
    rows = []
    gpus = selected(state, ids)
    header = []
    for field in fields:
        try:
            unit, _value = field_value(field, 0, state["gpus"][0], state) if state["gpus"] else ("", "")
        except KeyError:
            return 2, f'Field "{field}" is not a valid field to query.\n'
        header.append(f"{field} [{unit}]" if unit else field)
    for index, gpu in gpus:
        values = []
        for field in fields:
            unit, value = field_value(field, index, gpu, state)
            if "nounits" in options and unit:
                value = value[: -len(unit)].rstrip()
            values.append(value)
        rows.append(", ".join(values))
    if "noheader" not in options:
        rows.insert(0, ", ".join(header))
    return 0, "\n".join(rows)


def set_persistence(value: str, ids: str | None) -> tuple[int, str]:
    if value not in ("0", "1", "ENABLED", "DISABLED"):
        return 2, BAD_ARGUMENTS
    enable = value in ("1", "ENABLED")
    word = "Enabled" if enable else "Disabled"
    if os.geteuid() != 0:
        with LockedState() as state:
            first = selected(state, ids)[:1]
        bus = first[0][1]["pci_bus_id"] if first else "(none)"
        return 4, f"Unable to set persistence mode for GPU {bus}: Insufficient Permissions\n" + (
            "Terminating early due to previous errors."
        )
    with LockedState(write=True) as state:
        out = []
        for _index, gpu in selected(state, ids):
            if gpu["persistence_mode"] == enable:
                out.append(f"Persistence mode is already {word} for GPU {gpu['pci_bus_id']}.")
            else:
                gpu["persistence_mode"] = enable
                out.append(f"{word} persistence mode for GPU {gpu['pci_bus_id']}.")
    out.append("All done.")
    return 0, "\n".join(out)


class LockedState:
    """The state file under an exclusive lock; written back at exit when ``write``."""

    def __init__(self, write: bool = False) -> None:
        self.write = write
        self.lock_file = None
        self.state: dict[str, Any] = {}

    def __enter__(self) -> dict[str, Any]:
        lock_path = os.path.join(os.path.dirname(STATE_FILE), "gpus.lock")
        self.lock_file = open(lock_path, "a+" if self.write else "r")
        fcntl.flock(self.lock_file, fcntl.LOCK_EX if self.write else fcntl.LOCK_SH)
        with open(STATE_FILE, encoding="utf-8") as handle:
            self.state = json.load(handle)
        return self.state

    def __exit__(self, exc_type: object, *rest: object) -> None:
        assert self.lock_file is not None
        try:
            if self.write and exc_type is None:
                temporary = STATE_FILE + ".new"
                with open(temporary, "w", encoding="utf-8") as handle:
                    json.dump(self.state, handle)
                os.replace(temporary, STATE_FILE)
        finally:
            self.lock_file.close()


def parse(argv: list[str]) -> dict[str, str | None]:
    """Options as the real tool takes them: ``--name=value``, ``--name value``, ``-x value``."""
    takes_value = {
        "--query-gpu": "query",
        "--format": "format",
        "-i": "id",
        "--id": "id",
        "-pm": "persistence",
        "--persistence-mode": "persistence",
    }
    flags = {"-L": "list", "--list-gpus": "list", "-h": "help", "--help": "help"}
    options: dict[str, str | None] = {}
    args = list(argv)
    while args:
        arg = args.pop(0)
        name, has_value, value = arg.partition("=")
        if name in takes_value:
            if not has_value:
                if not args:
                    raise ValueError(arg)
                value = args.pop(0)
            options[takes_value[name]] = value
        elif arg in flags:
            options[flags[arg]] = ""
        else:
            raise ValueError(arg)
    return options


def main(argv: list[str]) -> int:
    try:
        options = parse(argv)
    except ValueError:
        print(BAD_ARGUMENTS)
        return 2
    if "help" in options:
        print("NVIDIA System Management Interface -- stand-in of the Lambda Cloud simulator.")
        print("Supported: (no option), -L, -i ID, --query-gpu=FIELDS --format=csv[,noheader][,nounits], -pm 0|1")
        return 0
    try:
        if "persistence" in options:
            code, text = set_persistence(str(options["persistence"]).upper(), options.get("id"))
        else:
            with LockedState() as state:
                if not visible_gpus(state):
                    code, text = 6, "No devices were found"
                elif "query" in options:
                    code, text = query(state, str(options["query"]), options.get("format"), options.get("id"))
                elif "list" in options:
                    lines = [
                        f"GPU {index}: {gpu['name']} (UUID: {gpu['uuid']})"
                        for index, gpu in selected(state, options.get("id"))
                    ]
                    code, text = 0, "\n".join(lines)
                else:
                    code, text = 0, summary(state)
    except NoMatch as error:
        code, text = 6, str(error)
    except OSError as error:
        code, text = 9, f"NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver ({error})."
    print(text)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
