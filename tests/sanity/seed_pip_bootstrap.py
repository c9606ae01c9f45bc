# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Seed ansible-test's pip bootstrap cache with get_pip_offline.py, for the pip version it will ask for.

``ansible-test ... --requirements`` bootstraps pip into each virtual environment it creates with a
``get-pip-<version>.py`` script that it downloads from a host this machine cannot reach, unless
``~/.ansible/test/cache/get_pip_<version>.py`` exists. Each ansible-test release pins its own pip version
(``get_venv_packages()`` in ``ansible_test/_internal/python_requirements.py``, sometimes per Python version).

Run this with the Python of the environment whose ansible-test will run (it reads that ansible-test's pins)::

    .venv/bin/python tests/sanity/seed_pip_bootstrap.py --python 3.11
    .venv/bin/python tests/sanity/seed_pip_bootstrap.py --print      # only print the version(s)

It copies ``get_pip_offline.py`` (next to this file) to the cache path of each pip version asked for, and prints
the paths it wrote. Standard library only.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from pathlib import Path
from types import SimpleNamespace

HERE = Path(__file__).resolve().parent
OFFLINE_SCRIPT = HERE / "get_pip_offline.py"
CACHE_DIR = Path("~/.ansible/test/cache").expanduser()


def pip_versions(python_versions: list[str]) -> dict[str, str]:
    """{python version: pip version} as the installed ansible-test will ask for them."""
    try:
        from ansible_test._internal.python_requirements import get_venv_packages  # noqa: PLC0415
    except ImportError as error:  # pragma: no cover - ansible-core not installed in this Python
        raise SystemExit(f"ansible-test is not importable from {sys.executable}: {error}") from error
    try:
        return {version: get_venv_packages(SimpleNamespace(version=version))["pip"] for version in python_versions}
    except Exception:  # an ansible-test whose internals changed: read the pin from its source.
        import ansible_test._internal.python_requirements as module  # noqa: PLC0415

        source = Path(module.__file__).read_text(encoding="utf-8")
        found = sorted(set(re.findall(r"pip\s*=\s*['\"]([0-9][0-9.]*)['\"]", source)))
        if not found:
            raise SystemExit(f"no pip version found in {module.__file__}") from None
        return {f"any ({', '.join(found)})": version for version in found}


def cache_path(pip_version: str) -> Path:
    """The file ansible-test looks for (``ansible_test/_util/target/setup/requirements.py``)."""
    return CACHE_DIR / f"get_pip_{pip_version.replace('.', '_')}.py"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument(
        "--python",
        action="append",
        default=[],
        help="Python version(s) ansible-test will use (default: the running one); repeat for several",
    )
    parser.add_argument("--print", action="store_true", help="only print the pip version(s), write nothing")
    args = parser.parse_args()
    pythons = args.python or [f"{sys.version_info.major}.{sys.version_info.minor}"]
    versions = pip_versions(pythons)
    if args.print:
        for python, pip in versions.items():
            print(f"python {python}: pip {pip}")
        return 0
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    for pip in sorted(set(versions.values())):
        target = cache_path(pip)
        shutil.copyfile(OFFLINE_SCRIPT, target)
        print(f"pip {pip} bootstrap: {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
