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

It also stands in for the Python that Ansible runs modules with on the controller (``forked_python.py``, the
interpreter of the tests' localhost): then the request comes with the caller's standard input, output and error
(passed over the socket), ``{"argv": [script] or [], "env": {...}, "cwd": dir}``, and the fork runs the AnsiballZ
payload (the script, or the standard input as Python does without one) on them. The answer is the exit status, as a
line. When the caller goes away (killed, interrupted), the fork is killed too, as the module would die with it.
The module's own code and the collection's module_utils come from the payload, as they do for Python; only
ansible-core's module code is the one already imported here (ansible.module_utils, the same files the payload
carries).
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import runpy
import select
import signal
import socket
import socketserver
import sys
import tempfile
import traceback

# The imports every run would make: done once, here, before any fork. AnsiballZ's loader exists from
# ansible-core 2.19 on; older versions' payloads carry all they need.
for _name in ("ansible.module_utils.basic", "requests"):
    importlib.import_module(_name)
if importlib.util.find_spec("ansible.module_utils._internal") is not None:
    importlib.import_module("ansible.module_utils._internal._ansiballz._loader")
BASE_PATH = [path for path in sys.path if path != os.path.dirname(os.path.abspath(__file__))]


def _exit_status(exc: SystemExit) -> int:
    """The status Python exits with for this SystemExit (printing a message that is not a status, as Python does)."""
    if exc.code is None or isinstance(exc.code, int):
        return exc.code or 0
    print(exc.code, file=sys.stderr)
    return 1


def _become_python(streams: list[int], env: dict[str, str], cwd: str | None, argv: list[str], paths: list[str]) -> None:
    """In a forked child: become ``python SCRIPT`` (``argv[0]``; without one, the script is the standard input), on
    the file descriptors ``streams`` (standard input, output, error), and never return."""
    status = 1
    try:
        for target, fd in enumerate(streams):
            os.dup2(fd, target)
        for fd in set(streams) - {0, 1, 2}:
            os.close(fd)
        if cwd:
            os.chdir(cwd)
        os.environ.clear()
        os.environ.update(env)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        sys.argv = list(argv) or [""]
        sys.path[:] = [os.path.dirname(os.path.abspath(argv[0])) if argv else "", *paths, *BASE_PATH]
        try:
            if argv:
                runpy.run_path(argv[0], run_name="__main__")
            else:
                source = sys.stdin.buffer.read()
                exec(compile(source, "<stdin>", "exec"), {"__name__": "__main__", "__file__": "<stdin>"})
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
            paths = [path for path in env.get("PYTHONPATH", "").split(os.pathsep) if path]
            streams = [os.open(os.devnull, os.O_RDONLY), out.fileno(), err.fileno()]
            _become_python(streams, env, None, argv[1:], paths)

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


def interpret(conn: socket.socket, request: dict[str, object], fds: list[int]) -> int:
    """Run the caller's payload in a fork on its streams; kill the fork if the caller hangs up first."""
    pid = os.fork()
    if pid == 0:
        conn.close()
        _become_python(fds, request["env"], request["cwd"], request["argv"], [])
    for fd in fds:
        os.close(fd)
    child = os.pidfd_open(pid)
    ready, _w, _x = select.select([child, conn], [], [])
    if child not in ready:  # the caller went away before the module ended
        os.kill(pid, signal.SIGKILL)
    _pid, status = os.waitpid(pid, 0)
    os.close(child)
    return os.waitstatus_to_exitcode(status)


class _Handler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        data, fds, _flags, _addr = socket.recv_fds(self.request, 1 << 16, 3)
        while not data.endswith(b"\n"):
            more = self.request.recv(1 << 16)
            if not more:
                return
            data += more
        request = json.loads(data)
        if fds:
            self.request.sendall(f"{interpret(self.request, request, fds)}\n".encode())
            return
        answer = run(request["argv"], request["env"], float(request["timeout"]))
        self.request.sendall(json.dumps(answer).encode() + b"\n")


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
