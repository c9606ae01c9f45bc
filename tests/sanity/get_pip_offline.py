# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Offline stand-in for the get-pip script that ``ansible-test --requirements`` downloads.

``make sanity`` copies it to ``~/.ansible/test/cache/get_pip_<version>.py``, so that
ansible-test bootstraps pip into its virtual environments without fetching anything
but packages from the configured package index. It serves any pip version: it installs
whatever ansible-test asks for (``pip==<version>``, and setuptools and wheel for
ansible-test 2.16 and 2.17). seed_pip_bootstrap.py, next to it, finds the version(s) an
installed ansible-test asks for and copies this file to each cache path.
"""

from __future__ import annotations

import ensurepip
import os
import subprocess
import sys


def main() -> None:
    # 1. Bring the pip bundled with Python into this (new, empty) environment.
    ensurepip.bootstrap(upgrade=True)
    # 2. ensurepip points PIP_CONFIG_FILE at /dev/null, which would hide the machine's
    #    pip configuration (index, find-links, CA bundle) from the install below.
    os.environ.pop("PIP_CONFIG_FILE", None)
    # 3. get-pip's own flags mean nothing to "pip install".
    args = [arg for arg in sys.argv[1:] if arg not in ("--no-setuptools", "--no-wheel")]
    # 4. Install what ansible-test asked for (the pinned pip, usually).
    subprocess.check_call([sys.executable, "-m", "pip", "install", *args])


if __name__ == "__main__":
    main()
