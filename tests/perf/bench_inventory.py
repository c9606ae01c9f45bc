# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark of the lambda_cloud inventory plugin against a static YAML inventory.

For each N, the simulator is seeded with N active instances through
``POST /_simulator/state``. Then ``ansible-inventory --list`` is timed with:

* the plugin, uncached (every run makes one ``GET /instances``);
* the plugin with a warm jsonfile cache (no request);
* a static YAML inventory with the same hosts, groups and variables, written
  from the plugin's own output.

Each figure is the median wall-clock time of ``--repeat`` runs. The script
prints the ratios plugin/static, the API request count per uncached run and
the growth of the uncached time from N=1,000 to N=10,000.

Run it from the repository root with the project's virtualenv::

    .venv/bin/python -m tests.perf.bench_inventory [--sizes 100 1000 10000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from tests.integration.support import BIN, COLLECTION, plain
from tests.simulator.client import Simulator

REGIONS = ("us-east-1", "us-west-1", "us-west-2", "us-south-1", "europe-central-1", "asia-northeast-1")
TYPES = ("gpu_1x_a10", "gpu_1x_a100", "gpu_8x_a100", "gpu_1x_h100_sxm5", "gpu_8x_h100_sxm5", "gpu_1x_gh200")


def instances(count: int) -> list[dict[str, Any]]:
    """N active instances spread over regions and types, each with a few tags and an SSH key."""
    return [
        {
            "name": f"node-{index:05d}",
            "status": "active",
            "region": REGIONS[index % len(REGIONS)],
            "instance_type": TYPES[(index // len(REGIONS)) % len(TYPES)],
            "ssh_key_names": ["deploy"],
            "tags": [{"key": "team", "value": f"team-{index % 7}"}, {"key": "cluster", "value": f"c{index % 20}"}],
        }
        for index in range(count)
    ]


def static_inventory(listing: dict[str, Any]) -> dict[str, Any]:
    """The YAML inventory with the same hosts, groups and host variables as an ``--list`` output."""
    hostvars = plain(listing["_meta"]["hostvars"])
    children: dict[str, Any] = {}
    placed: set[str] = set()
    for group in listing["all"]["children"]:
        hosts = listing.get(group, {}).get("hosts", [])
        entries = {}
        for host in hosts:
            # Variables are written once, at the host's first group.
            entries[host] = None if host in placed else hostvars[host]
            placed.add(host)
        children[group] = {"hosts": entries} if entries else {}
    return {"all": {"children": children}}


class Bench:
    def __init__(self, workdir: Path, simulator: Simulator, repeat: int) -> None:
        self.workdir = workdir
        self.sim = simulator
        self.repeat = repeat
        collections = workdir / "collections" / "ansible_collections" / "lambdalabs"
        collections.mkdir(parents=True)
        (collections / "cloud").symlink_to(COLLECTION)
        self.env = dict(os.environ)
        self.env.update(
            {
                "ANSIBLE_COLLECTIONS_PATH": str(workdir / "collections"),
                "LAMBDA_API_URL": simulator.url,
                "LAMBDA_API_KEY": simulator.api_key,
                "ANSIBLE_INVENTORY_UNPARSED_FAILED": "true",
                "ANSIBLE_LOCALHOST_WARNING": "false",
                "ANSIBLE_NOCOLOR": "1",
            }
        )
        self.plugin_file = workdir / "bench.lambda_cloud.yml"
        self.plugin_file.write_text("plugin: lambdalabs.cloud.lambda_cloud\n")
        self.cached_file = workdir / "cached.lambda_cloud.yml"
        self.cached_file.write_text(
            "plugin: lambdalabs.cloud.lambda_cloud\ncache: true\n"
            f"cache_plugin: ansible.builtin.jsonfile\ncache_connection: {workdir / 'cache'}\ncache_timeout: 86400\n"
        )
        self.static_file = workdir / "static.yml"

    def run(self, path: Path, enabled: str, *extra: str) -> tuple[float, str]:
        env = dict(self.env, ANSIBLE_INVENTORY_ENABLED=enabled)
        start = time.perf_counter()
        proc = subprocess.run(
            [str(BIN / "ansible-inventory"), "-i", str(path), "--list", *extra],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        elapsed = time.perf_counter() - start
        if proc.returncode != 0:
            raise SystemExit(f"ansible-inventory failed for {path.name}:\n{proc.stderr[-2000:]}")
        return elapsed, proc.stdout

    def median(self, path: Path, enabled: str) -> float:
        return statistics.median(self.run(path, enabled)[0] for _run in range(self.repeat))

    def measure(self, count: int) -> dict[str, Any]:
        self.sim.reset()
        self.sim.seed(instances=instances(count))
        listing = json.loads(self.run(self.plugin_file, "auto")[1])
        hosts = len(listing["_meta"]["hostvars"])
        self.static_file.write_text(yaml.dump(static_inventory(listing), Dumper=yaml.CSafeDumper, sort_keys=False))
        # Refresh the cache once, then time the cached runs.
        self.run(self.cached_file, "auto", "--flush-cache")
        self.sim.clear_requests()
        plugin = self.median(self.plugin_file, "auto")
        requests = len(self.sim.requests()) / self.repeat
        self.sim.clear_requests()
        cached = self.median(self.cached_file, "auto")
        cached_requests = len(self.sim.requests())
        static = self.median(self.static_file, "yaml")
        return {
            "n": count,
            "hosts": hosts,
            "static_s": static,
            "plugin_s": plugin,
            "cached_s": cached,
            "ratio": plugin / static,
            "cached_ratio": cached / static,
            "requests_per_run": requests,
            "cached_requests": cached_requests,
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10000])
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per figure (median)")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = parser.parse_args()

    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-inventory-") as tmp, Simulator() as simulator:
        bench = Bench(Path(tmp), simulator, args.repeat)
        print(f"ansible-inventory --list, median of {args.repeat} runs; static = YAML inventory (yaml plugin only)")
        header = f"{'N':>6} {'hosts':>6} {'static s':>9} {'plugin s':>9} {'cached s':>9} "
        header += f"{'plugin/static':>13} {'cached/static':>13} {'requests':>9} {'cached req':>10}"
        print(header)
        for count in args.sizes:
            row = bench.measure(count)
            rows.append(row)
            print(
                f"{row['n']:>6} {row['hosts']:>6} {row['static_s']:>9.3f} {row['plugin_s']:>9.3f} "
                f"{row['cached_s']:>9.3f} {row['ratio']:>13.3f} {row['cached_ratio']:>13.3f} "
                f"{row['requests_per_run']:>9.1f} {row['cached_requests']:>10}"
            )
    by_n = {row["n"]: row for row in rows}
    if 1000 in by_n and 10000 in by_n:
        growth = by_n[10000]["plugin_s"] / by_n[1000]["plugin_s"]
        print(f"plugin time N=10,000 / N=1,000: {growth:.2f} (target <= 11)")
    if 1000 in by_n:
        print(f"plugin/static at N=1,000: {by_n[1000]['ratio']:.3f} (target <= 1.25)")
        print(f"cached/static at N=1,000: {by_n[1000]['cached_ratio']:.3f} (target <= 1.10)")
    if args.json:
        print(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
