# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Python of the tests' localhost, through which Ansible runs the collection's modules on the controller.

``python [SCRIPT]``, the way Ansible calls it (the AnsiballZ payload on standard input when pipelining, or its
file), runs in a fork of module_runner.py, which has already imported ansible-core's module code: the payload then
costs a fraction of the CPU of a new Python importing it. This script passes its standard streams, arguments,
environment and working directory to that server, waits, and exits with the payload's status. Any other call (more
arguments, options), and any call while the server cannot be reached, runs the real Python instead.

Ansible.playbook writes an executable copy of it per pytest worker, with the real Python and the server's socket
(support.py, FORKED_PYTHON).
"""

import json
import os
import socket
import sys

REAL_PYTHON = "@REAL_PYTHON@"
SOCKET = "@SOCKET@"


def main():
    args = sys.argv[1:]
    if len(args) > 1 or (args and args[0].startswith("-")):
        os.execv(REAL_PYTHON, [REAL_PYTHON, *args])
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(SOCKET)
    except OSError:
        os.execv(REAL_PYTHON, [REAL_PYTHON, *args])
    try:
        cwd = os.getcwd()
    except OSError:
        cwd = "/"
    request = {"argv": args, "env": dict(os.environ), "cwd": cwd}
    socket.send_fds(conn, [json.dumps(request).encode() + b"\n"], [0, 1, 2])
    answer = b""
    while not answer.endswith(b"\n"):
        more = conn.recv(64)
        if not more:
            sys.exit(1)
        answer += more
    status = int(answer)
    if status < 0:  # killed by a signal: die of it too, as the module's own process would have
        os.kill(os.getpid(), -status)
    sys.exit(status)


main()
