# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Roles and playbooks orchestrate; they do not compute: no Jinja block longer than 10 lines, no namespace loops."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
FILES = sorted((ROOT / "roles").rglob("*.yml")) + sorted((ROOT / "playbooks").glob("*.yml"))
MAX_LINES = 10


def strings(node, where=""):
    """Every string of a YAML document with where it is."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from strings(value, f"{where}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from strings(value, f"{where}[{index}]")
    elif isinstance(node, str):
        yield where, node


def templates(path):
    for document in yaml.safe_load_all(path.read_text()):
        for where, text in strings(document):
            if "{{" in text or "{%" in text:
                yield where, text


@pytest.mark.parametrize("path", FILES, ids=lambda path: str(path.relative_to(ROOT)))
def test_no_jinja_program_in_roles_and_playbooks(path):
    for where, text in templates(path):
        lines = text.strip().count("\n") + 1
        assert lines <= MAX_LINES, f"{path.name}{where} is a Jinja block of {lines} lines"
        assert "namespace(" not in text, f"{path.name}{where} loops with a namespace"
        assert "strftime" not in text and "to_datetime" not in text, f"{path.name}{where} computes dates"


def test_the_checker_sees_the_templates():
    assert sum(1 for path in FILES for _template in templates(path)) > 30
