# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Let ``ansible-test units`` and pytest-ansible share one run.

Without ``--ansible-unit-inject-only``, pytest-ansible sets ANSIBLE_COLLECTIONS_PATH to a list of directories when it
starts, and the xdist workers of ``ansible-test units`` inherit it, while ansible-test's own pytest plugin reads that
variable as a single directory. The collection finder is installed by then, so the variable is put back as it was.
"""

from __future__ import annotations

import os

import pytest

_ORIGINAL = os.environ.get("ANSIBLE_COLLECTIONS_PATH")


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:  # pylint: disable=unused-argument
    if _ORIGINAL is not None:
        os.environ["ANSIBLE_COLLECTIONS_PATH"] = _ORIGINAL
