# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The controller's local package sources, as pip arguments for the simulator's nodes.

The nodes run pip as their own user, without the controller's pip configuration. training_cluster's smoke test
installs PyTorch on them: with these arguments it installs from the local sources that the controller's pip is
configured with (find-links directories, ``file://`` indexes), and never from the network, where ``torch`` is the
CUDA build of several GB.

    python -m tests.local_packages    # training_cluster's extra variables for the smoke test, as JSON
                                      # (exit status 1, with the reason, when there is no local source)
"""

from __future__ import annotations

import ast
import json
import shlex
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote, urlparse


class NoLocalSource(LookupError):
    """pip's configuration names no local package source."""


def _local_directory(location: str) -> str | None:
    """The directory that a find-links or index location names, when it is one on this machine."""
    if location.startswith("file://"):
        location = unquote(urlparse(location).path)
    elif "://" in location:
        return None
    return location if Path(location).is_dir() else None


def _configured(python: str) -> dict[str, list[str]]:
    """pip's settings that name package sources: its configuration files and PIP_* variables (``pip config list``)."""
    found: dict[str, list[str]] = {"find-links": [], "index-url": [], "extra-index-url": []}
    listed = subprocess.run(
        [python, "-m", "pip", "config", "list"], capture_output=True, text=True, check=False, timeout=60
    ).stdout
    for line in listed.splitlines():
        key, value = line.split("=", 1) if "=" in line else (line, "")
        name = key.rpartition(".")[2]
        if name in found and value:
            found[name] += str(ast.literal_eval(value)).split()
    return found


def local_pip_args(python: str = sys.executable) -> list[str]:
    """pip arguments that install only from the local sources in ``python``'s pip configuration."""
    found = _configured(python)
    links = [d for d in dict.fromkeys(found["find-links"]) if _local_directory(d)]
    indexes = [u for u in dict.fromkeys(found["index-url"] + found["extra-index-url"]) if _local_directory(u)]
    if not links and not indexes:
        raise NoLocalSource("pip's configuration names no local package source (find-links directory, file:// index)")
    args = ["--index-url", indexes[0]] if indexes else ["--no-index"]
    for index in indexes[1:]:
        args += ["--extra-index-url", index]
    for directory in links:
        args += ["--find-links", directory]
    return args


def smoke_extra_vars(python: str = sys.executable) -> dict[str, str]:
    """training_cluster's variables for a smoke test that installs only from the local sources (and compiles only
    what it imports)."""
    return {"training_cluster_smoke_pip_extra_args": shlex.join(["--no-compile", *local_pip_args(python)])}


def main() -> int:
    try:
        print(json.dumps(smoke_extra_vars()))
    except NoLocalSource as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
