# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark of what the integration tests pay for each Ansible process and task: the CPU time of an
``ansible-playbook`` run with one ``debug`` task, of each further ``debug`` task, of each module task the collection
runs against the simulator, and of one ``ansible-inventory`` run.

Run it from the repository root after ``make venv collection-link``::

    ANSIBLE_COLLECTIONS_PATH=$PWD/.tmp/collections .venv/bin/python -m tests.perf.bench_ansible_costs [--runs 5]

It prints one line per figure (the median of the runs): the CPU time of the processes Ansible starts, not the
simulator's. docs/benchmarks-tests.md records them. Modules run with the real Python here, as a user's do
(LAMBDA_TESTS_FORK_MODULES=0); the integration tests fork them from the module runner, whose CPU these figures
would not count.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path

import yaml

from tests.integration.support import Ansible
from tests.simulator.client import Simulator

DEBUG = {"ansible.builtin.debug": {"msg": "hello"}}
INFO = {"lambdalabs.cloud.lambda_instance_type_info": {}}


def children_cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def median_cpu(runs: int, work: Callable[[], object]) -> float:
    """The median CPU time that ``work`` spends in the processes it starts."""
    spent = []
    for _run in range(runs):
        before = children_cpu()
        work()
        spent.append(children_cpu() - before)
    return statistics.median(spent)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    options = parser.parse_args()
    os.environ["LAMBDA_TESTS_FORK_MODULES"] = "0"
    with Simulator() as sim, tempfile.TemporaryDirectory() as scratch:
        ansible = Ansible(sim, Path(scratch))

        def playbook(tasks: list[dict]) -> None:
            ansible.playbook(tasks).assert_ok()

        one_debug = median_cpu(options.runs, lambda: playbook([DEBUG]))
        eleven_debug = median_cpu(options.runs, lambda: playbook([DEBUG] * 11))
        one_module = median_cpu(options.runs, lambda: playbook([INFO]))
        eleven_modules = median_cpu(options.runs, lambda: playbook([INFO] * 11))
        source = Path(scratch) / "bench.lambda_cloud.yml"
        source.write_text(yaml.safe_dump({"plugin": "lambdalabs.cloud.lambda_cloud"}))
        inventory = median_cpu(
            options.runs, lambda: ansible.command(["ansible-inventory", "-i", str(source), "--list"]).assert_ok()
        )
    print(f"ansible-playbook with one debug task: {one_debug:.2f} s CPU")
    print(f"each further debug task: {(eleven_debug - one_debug) / 10:.3f} s CPU")
    print(f"each further module task (lambda_instance_type_info): {(eleven_modules - one_module) / 10:.3f} s CPU")
    print(f"the first module task of a run, building the module's archive too: {one_module - one_debug:.2f} s CPU")
    print(f"ansible-inventory with the lambda_cloud plugin: {inventory:.2f} s CPU")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
