# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""On a machine with NVIDIA GPUs: run the gpu_node role locally and check that its facts match nvidia-smi.

Run it from the repository root, with the project's virtualenv, on the GPU machine itself::

    make venv collection-link
    ANSIBLE_COLLECTIONS_PATH=$PWD/.tmp/collections .venv/bin/python -m tests.gpu.check_gpu_node

It prints what nvidia-smi says, what the role found, and one line per check; it exits 0 when every check passes,
1 when one fails, and 2 when the machine has no nvidia-smi. It changes nothing on the machine: the role runs with
its persistence mode left alone and no packages.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

BIN = Path(sys.executable).parent
FIELDS = "index,name,memory.total,driver_version,persistence_mode,uuid,pci.bus_id"


def nvidia_smi() -> list[list[str]] | None:
    try:
        done = subprocess.run(
            ["nvidia-smi", f"--query-gpu={FIELDS}", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError) as error:
        print(f"nvidia-smi cannot run here: {error}")
        return None
    return [[part.strip() for part in line.split(",")] for line in done.stdout.splitlines() if line.strip()]


def role_facts(gpu_count: int) -> dict:
    play = [
        {
            "hosts": "localhost",
            "connection": "local",
            "gather_facts": False,
            "vars": {
                "lambda_gpus": gpu_count,
                "gpu_node_become": False,
                "gpu_node_check_mounts": False,
                "ansible_python_interpreter": sys.executable,
            },
            "roles": ["lambdalabs.cloud.gpu_node"],
            "tasks": [
                {
                    "name": "facts",
                    "ansible.builtin.copy": {
                        "content": "{{ lambda_gpu_facts | to_json }}",
                        "dest": "{{ facts_file }}",
                        "mode": "0600",
                    },
                }
            ],
        }
    ]
    with tempfile.TemporaryDirectory() as work:
        playbook, facts = Path(work) / "check.yml", Path(work) / "facts.json"
        playbook.write_text(yaml.safe_dump(play))
        done = subprocess.run(
            # lambda_gpus as an extra variable: the role reads it from the host's variables, as the inventory sets it.
            [
                str(BIN / "ansible-playbook"),
                "-i",
                "localhost,",
                str(playbook),
                "-e",
                f"facts_file={facts}",
                "-e",
                f"lambda_gpus={gpu_count}",
            ],
            capture_output=True,
            text=True,
            env=dict(os.environ, ANSIBLE_NOCOLOR="1"),
            check=False,
        )
        print(done.stdout[-4000:])
        if done.returncode != 0:
            print(done.stderr[-2000:])
            raise SystemExit(1)
        return json.loads(facts.read_text())


def main() -> int:
    rows = nvidia_smi()
    if rows is None:
        return 2
    print(f"nvidia-smi lists {len(rows)} GPU(s):")
    for row in rows:
        print("  " + ", ".join(row))
    facts = role_facts(len(rows))
    checks = {
        "GPU count": facts["count"] == len(rows) == facts["expected_count"],
        "GPU names": [gpu["name"] for gpu in facts["gpus"]] == [row[1] for row in rows],
        "memory (MiB)": [gpu["memory_mib"] for gpu in facts["gpus"]] == [int(float(row[2])) for row in rows],
        "driver": {gpu["driver_version"] for gpu in facts["gpus"]} == {row[3] for row in rows},
        "persistence mode": [gpu["persistence_mode"] for gpu in facts["gpus"]]
        == [row[4].lower() == "enabled" for row in rows],
        "UUIDs": [gpu["uuid"] for gpu in facts["gpus"]] == [row[5] for row in rows],
        "PCI bus ids": [gpu["pci_bus_id"] for gpu in facts["gpus"]] == [row[6] for row in rows],
        "CUDA version found": bool(facts["cuda_version"]),
    }
    for name, passed in checks.items():
        print(f"{'PASS' if passed else 'FAIL'}: {name}")
    summary = f"{facts['count']}x {facts['model']}, driver {facts['driver_version']}, CUDA {facts['cuda_version']}"
    print(f"role facts: {summary}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
