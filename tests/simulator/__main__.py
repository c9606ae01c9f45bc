# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Offline Lambda Cloud API (v1.8.3) simulator, standard library only.

Run ``python3 tests/simulator --port 8080`` and point clients at
``http://127.0.0.1:8080/api/v1`` with the API key ``sim-api-key``.
The first line written to stdout gives the address actually bound.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import sys
import threading
from typing import Any

# Running ``python3 tests/simulator`` puts this directory first on sys.path; make
# the sibling modules importable when the file is run any other way too.
_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

from fabric_client import (  # noqa: E402  pylint: disable=wrong-import-position
    DEFAULT_DISK_MIB,
    DEFAULT_MEMORY_MAX_MIB,
    DEFAULT_NODE_MEMORY_MIB,
    MEMORY_FLOOR_PERCENT,
    FabricUnavailable,
    NodeFabric,
)
from sim_server import Settings, Simulator, SimulatorServer  # noqa: E402  pylint: disable=wrong-import-position


def non_negative_float(text: str) -> float:
    value = float(text)
    if value < 0 or math.isnan(value) or math.isinf(value):
        raise argparse.ArgumentTypeError(f"must be a non-negative number: {text!r}")
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer: {text!r}")
    return value


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer: {text!r}")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python3 tests/simulator",
        description="Offline simulator of the Lambda Cloud API v1.8.3 for tests and demos.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    parser.add_argument("--port", type=int, default=8080, help="port to listen on; 0 picks a free one")
    parser.add_argument("--api-key", default="sim-api-key", help="the API key accepted (default: %(default)s)")
    parser.add_argument(
        "--boot-seconds", type=non_negative_float, default=5.0, help="booting time of instances (default: 5)"
    )
    parser.add_argument(
        "--terminate-seconds", type=non_negative_float, default=2.0, help="terminating time of instances (default: 2)"
    )
    parser.add_argument(
        "--launch-interval",
        type=non_negative_float,
        default=0.0,
        help="minimum seconds between two launches, else 429 (default: 0, off)",
    )
    parser.add_argument(
        "--rate-limit",
        type=non_negative_int,
        default=0,
        help="maximum API requests per second, else 429 (default: 0, off)",
    )
    parser.add_argument(
        "--no-idempotency",
        action="store_true",
        help="ignore the Idempotency-Key header of launches, as the real API may (default: honour it)",
    )
    parser.add_argument("--state", metavar="FILE", help="load the account from FILE and save it there on changes")
    add_node_arguments(parser)
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    return parser.parse_args(argv)


def add_node_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of the node fabric (--nodes)."""
    parser.add_argument(
        "--nodes",
        action="store_true",
        help="make every launched instance a real host with sshd on its address (Linux, root, openssh-server)",
    )
    parser.add_argument(
        "--lambda-stack",
        metavar="DIR",
        help="with --nodes: Python packages (pip install --target DIR torch numpy) that every node's python3 imports, "
        "read-only, as Lambda Stack's PyTorch is on Lambda's images",
    )
    parser.add_argument(
        "--node-disk-mib",
        type=positive_int,
        default=DEFAULT_DISK_MIB,
        help=f"with --nodes: the size of each node's writable storage (its changes to the system, /tmp), kept in "
        f"memory; a node that fills it gets 'No space left on device' (default: {DEFAULT_DISK_MIB})",
    )
    parser.add_argument(
        "--node-memory-mib",
        type=positive_int,
        default=DEFAULT_NODE_MEMORY_MIB,
        help=f"with --nodes: the memory counted for each new node; a launch that would leave less than "
        f"{MEMORY_FLOOR_PERCENT}%% of the machine's memory available is refused (default: {DEFAULT_NODE_MEMORY_MIB})",
    )
    parser.add_argument(
        "--node-memory-max-mib",
        type=positive_int,
        default=DEFAULT_MEMORY_MAX_MIB,
        help="with --nodes: each node's memory limit (its processes and the files it keeps in memory), where the "
        f"machine allows a memory control group per node (default: {DEFAULT_MEMORY_MAX_MIB})",
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    settings = Settings(
        api_key=args.api_key,
        boot_seconds=args.boot_seconds,
        terminate_seconds=args.terminate_seconds,
        launch_interval=args.launch_interval,
        rate_limit=args.rate_limit,
        idempotency=not args.no_idempotency,
        state_file=args.state,
        verbose=args.verbose,
    )
    fabric = None
    if args.nodes:
        try:
            fabric = NodeFabric(
                lambda_stack=args.lambda_stack,
                disk_mib=args.node_disk_mib,
                memory_mib=args.node_memory_mib,
                memory_max_mib=args.node_memory_max_mib,
            )
        except FabricUnavailable as error:
            print(f"Cannot start the node fabric (--nodes): {error}", file=sys.stderr)
            return 2
    try:
        return serve(args, settings, fabric)
    finally:
        if fabric is not None:
            fabric.close()


def serve(args: argparse.Namespace, settings: Settings, fabric: NodeFabric | None) -> int:
    try:
        simulator = Simulator(settings, fabric)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        print(f"Cannot load the state file {args.state}: {error}", file=sys.stderr)
        return 2
    try:
        server = SimulatorServer((args.host, args.port), simulator)
    except OSError as error:
        print(f"Cannot listen on {args.host}:{args.port}: {error}", file=sys.stderr)
        return 2

    stop = threading.Event()

    def request_stop(_signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)

    host, port = server.server_address[:2]
    shown_host = f"[{host}]" if ":" in str(host) else host
    print(f"Lambda Cloud simulator listening on http://{shown_host}:{port}/api/v1", flush=True)

    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
    thread.start()
    while not stop.wait(0.5):
        pass
    server.shutdown()
    server.server_close()
    with simulator.lock:
        simulator.save()
        simulator.account.addresses.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
