# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Roles and playbooks orchestrate; they do not compute.

Every template and condition is measured: no Jinja block longer than 10 lines, at most a few operations (filters,
arithmetic and concatenation) in one, no filter that formats or sums, no ``%`` formatting, no namespace loops and no
dates. What computes lives in a ``lambdalabs.cloud.*`` filter, where unit tests test it.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
FILES = sorted((ROOT / "roles").rglob("*.yml")) + sorted((ROOT / "playbooks").glob("*.yml"))
MAX_LINES = 10
# Filters, arithmetic operators and ~ in one template or condition: enough to pick, map and join, not to compute.
MAX_OPERATIONS = 6
CONDITIONS = ("when", "that", "until", "changed_when", "failed_when")
COMPUTING_FILTERS = ("format", "round", "sum", "max", "min")
STRING = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")
FILTER = re.compile(r"(?<!\|)\|(?!\|)\s*([A-Za-z_][\w.]*)")
OPERATOR = re.compile(r"\*\*|//|[-+*/%~]")


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


def is_condition(where):
    return re.sub(r"\[\d+\]$", "", where).rsplit(".", 1)[-1] in CONDITIONS


def templates(path):
    """Every template (a string with {{ or {%) and every condition (when, that, ...: Jinja without braces)."""
    for document in yaml.safe_load_all(path.read_text()):
        for where, text in strings(document):
            if "{{" in text or "{%" in text or is_condition(where):
                yield where, text


def expressions(text):
    """The code inside each {{ }} and {% %} of a template, to the closing braces outside strings and brackets."""
    found, start = [], 0
    while (start := min((i for i in (text.find("{{", start), text.find("{%", start)) if i >= 0), default=-1)) >= 0:
        end, depth, quote, index = "}}" if text[start + 1] == "{" else "%}", 0, None, start + 2
        while index < len(text) and (quote or depth or not text.startswith(end, index)):
            char = text[index]
            if quote:
                index += char == "\\"
                quote = None if char == quote else quote
            elif char in "'\"":
                quote = char
            else:
                depth += (char in "([{") - (char in ")]}")
            index += 1
        found.append(text[start + 2 : index])
        start = index + 2
    return found


def code(text):
    """The Jinja code of a template, string literals emptied; a condition is code as a whole."""
    found = expressions(text) if "{{" in text or "{%" in text else [text]
    return [STRING.sub("''", part) for part in found]


def measure(text):
    """How many operations a template holds, and the computing filters it uses."""
    parts = code(text)
    filters = [name.rsplit(".", 1)[-1] for part in parts for name in FILTER.findall(part)]
    operators = sum(len(OPERATOR.findall(part)) for part in parts)
    formats = sum(len(re.findall(r"''\s*%", part)) for part in parts)
    return len(filters) + operators, [name for name in filters if name in COMPUTING_FILTERS] + ["%"] * formats


@pytest.mark.parametrize("path", FILES, ids=lambda path: str(path.relative_to(ROOT)))
def test_no_jinja_program_in_roles_and_playbooks(path):
    for where, text in templates(path):
        lines = text.strip().count("\n") + 1
        assert lines <= MAX_LINES, f"{path.name}{where} is a Jinja block of {lines} lines"
        operations, computing = measure(text)
        assert operations <= MAX_OPERATIONS, f"{path.name}{where} computes: {operations} filters and operators"
        assert not computing, f"{path.name}{where} computes with {', '.join(computing)}: use a lambdalabs.cloud filter"
        assert "namespace(" not in text, f"{path.name}{where} loops with a namespace"
        assert "strftime" not in text and "to_datetime" not in text, f"{path.name}{where} computes dates"


def test_the_checker_sees_the_templates():
    assert sum(1 for path in FILES for _template in templates(path)) > 30


@pytest.mark.parametrize(
    "text",
    [
        "{{ '%.2f' | format(cents / 100) }}",
        "{{ ('%s' % name) }}",
        "{{ results | selectattr('changed') | map(attribute='item.price') | sum }}",
        "{{ (minutes | float * 60 / [samples | int - 1, 1] | max) | round(3) }}",
        "{{ a | b | c | d | e | f | g | h }}",
    ],
)
def test_a_computation_in_jinja_fails_the_check(text):
    operations, computing = measure(text)
    assert operations > MAX_OPERATIONS or computing


@pytest.mark.parametrize(
    "text",
    [
        "{{ plan | lambdalabs.cloud.reap_report(reap_confirm | bool, ansible_check_mode) }}",
        "{{ item.name }} ({{ item.id }}) costs 5% more, at a|b",
        "_plan.members | length > 0",
    ],
)
def test_orchestration_passes_the_check(text):
    operations, computing = measure(text)
    assert operations <= MAX_OPERATIONS and not computing
