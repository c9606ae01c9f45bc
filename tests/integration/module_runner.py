# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Runs the collection's modules for the integration tests, each run in a process of its own, forked from a server
that has already imported ansible-core's module code and requests.

``python <module> <args file>`` spends about 0.15 s of CPU starting Python and importing
``ansible.module_utils.basic`` and requests, and the fault matrix and the bad-input tables run modules hundreds of
times. Here each run is a fork of one process that made those imports once. The module itself is imported fresh in
the fork, reads its arguments from the file, talks to the simulator over real HTTP, prints its result and exits
with its status, as it does under ``python <module> <args file>``.

    python module_runner.py SOCKET

serves until it is terminated. Each run is one connection to the Unix socket ``SOCKET``: the request is one JSON
line ``{"argv": [python, module, args file], "env": {...}, "timeout": seconds}``, the answer one JSON line
``{"rc": status, "stdout": text, "stderr": text}``; a run past its timeout is killed, with rc -9.
"""

from __future__ import annotations

import importlib
import json
import os
import runpy
import signal
import socketserver
import sys
import tempfile
import traceback

# The imports every run would make: done once, here, before any fork.
for _name in ("ansible.module_utils.basic", "requests"):
    importlib.import_module(_name)


def _exit_status(exc: SystemExit) -> int:
    """The status Python exits with for this SystemExit (printing a message that is not a status, as Python does)."""
    if exc.code is None or isinstance(exc.code, int):
        return exc.code or 0
    print(exc.code, file=sys.stderr)
    return 1


def _run_in_child(argv: list[str], env: dict[str, str], out: int, err: int) -> None:
    """In the forked child: become ``python MODULE ARGS_FILE`` and never return."""
    status = 1
    try:
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
        os.dup2(out, 1)
        os.dup2(err, 2)
        os.environ.clear()
        os.environ.update(env)
        script = argv[1]
        paths = [path for path in env.get("PYTHONPATH", "").split(os.pathsep) if path]
        sys.path[:0] = [os.path.dirname(os.path.abspath(script)), *paths]
        sys.argv = argv[1:]
        try:
            runpy.run_path(script, run_name="__main__")
            status = 0
        except SystemExit as exc:
            status = _exit_status(exc)
        except BaseException:  # what python itself would print for an uncaught exception
            traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)


def run(argv: list[str], env: dict[str, str], timeout: float) -> dict[str, object]:
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        pid = os.fork()
        if pid == 0:
            _run_in_child(argv, env, out.fileno(), err.fileno())

        def kill(*_args: object) -> None:
            os.kill(pid, signal.SIGKILL)

        signal.signal(signal.SIGALRM, kill)
        signal.setitimer(signal.ITIMER_REAL, timeout)
        _pid, status = os.waitpid(pid, 0)
        signal.setitimer(signal.ITIMER_REAL, 0)
        out.seek(0)
        err.seek(0)
        return {
            "rc": os.waitstatus_to_exitcode(status),
            "stdout": out.read().decode("utf-8", "replace"),
            "stderr": err.read().decode("utf-8", "replace"),
        }


class _Handler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        request = json.loads(self.rfile.readline())
        answer = run(request["argv"], request["env"], float(request["timeout"]))
        self.wfile.write(json.dumps(answer).encode() + b"\n")


class _Server(socketserver.ForkingMixIn, socketserver.UnixStreamServer):
    # Every run is a connection of its own; the tests run a few at once (two controllers racing, a thread pool).
    request_queue_size = 64


def main() -> None:
    signal.signal(signal.SIGTERM, lambda *_args: sys.exit(0))
    with _Server(sys.argv[1], _Handler) as server:
        print("ready", flush=True)
        server.serve_forever()


if __name__ == "__main__":
    main()
