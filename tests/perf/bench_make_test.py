# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark of `make test` itself: wall time, CPU time and the integration tests' own time; prints figures.

Run from the repository root, after one `make test` (or `make venv`) so that the virtual environment is warm:

    .venv/bin/python -m tests.perf.bench_make_test [--runs N] [make arguments...]

The figures go to docs/benchmarks-tests.md. Each run is a whole `make test`, with CI=true as in CI (every node test
must run); the CPU time is that of every process `make` waited for, on every core.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time


def one_run(make_args: list[str]) -> dict[str, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    done = subprocess.run(
        ["make", "test", *make_args], env=dict(os.environ, CI="true"), capture_output=True, text=True, check=False
    )
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        # The whole output goes to a file; what failed is named here, wherever make put it in the output.
        with tempfile.NamedTemporaryFile("w", prefix="make-test-", suffix=".log", delete=False) as log:
            log.write(done.stdout + done.stderr)
        failed = [
            line for line in (done.stdout + done.stderr).splitlines() if re.match(r"(FAILED|ERROR) |make.*\*\*\*", line)
        ]
        sys.exit(f"make test failed (exit status {done.returncode}); whole output in {log.name}:\n" + "\n".join(failed))
    found = re.findall(r"=+ (\d+) passed(?:, \d+ \w+)* in ([\d.]+)s", done.stdout)
    integration = max(found, key=lambda item: float(item[1]))  # the longest pytest run: the integration tests
    return {
        "wall": wall,
        "cpu": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
        "integration_tests": int(integration[0]),
        "integration_wall": float(integration[1]),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1)
    options, make_args = parser.parse_known_args()
    print(f"{os.cpu_count()} cores; make test {' '.join(make_args)}".rstrip())
    runs = []
    for number in range(1, options.runs + 1):
        run = one_run(make_args)
        runs.append(run)
        print(
            f"run {number}: {run['wall']:.0f} s wall, {run['cpu']:.0f} s CPU "
            f"({run['cpu'] / run['wall'] / (os.cpu_count() or 1):.0%} of the cores); "
            f"{run['integration_tests']} integration tests in {run['integration_wall']:.0f} s"
        )
    if len(runs) > 1:
        print(f"median: {statistics.median(run['wall'] for run in runs):.0f} s wall")
    return 0


if __name__ == "__main__":
    sys.exit(main())
