# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The guides name what the collection has: every role, playbook and private helper file, and no file that is gone."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
INDEX = (ROOT / "docs" / "index.md").read_text()
MODULE_UTILS = sorted(path.name for path in (ROOT / "plugins" / "module_utils").glob("_*.py"))


def test_the_index_lists_every_role_and_playbook():
    roles = sorted(path.name for path in (ROOT / "roles").iterdir() if (path / "tasks").is_dir())
    playbooks = sorted(path.stem for path in (ROOT / "playbooks").glob("*.yml"))
    assert roles and playbooks
    missing = [name for name in roles + playbooks if f"`lambdalabs.cloud.{name}`" not in INDEX]
    assert not missing, f"docs/index.md does not list {missing}"


def test_the_readme_gives_every_helper_file_its_job():
    assert MODULE_UTILS
    table = [line for line in README.splitlines() if line.startswith("| `plugins/module_utils/")]
    listed = set(re.findall(r"`?(_[a-z_]+\.py)`", "\n".join(table)))
    assert not sorted(set(MODULE_UTILS) - listed), "README.md's table of module_utils leaves files out"
    assert not sorted(listed - set(MODULE_UTILS)), "README.md's table of module_utils names files that are gone"
