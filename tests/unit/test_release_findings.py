"""What the release check counts as a finding in galaxy-importer's output (tests/release/findings.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[1] / "release" / "findings.py"
SPEC = importlib.util.spec_from_file_location("release_findings", SOURCE)
findings = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(findings)

DONE = "Importer processing completed successfully"
SIDECAR = "WARNING: plugins/filter/cluster_plan.yml:10:23: E999 SyntaxError: unterminated string literal"


def test_a_clean_import_has_no_finding():
    assert findings.log_findings(["Getting doc strings via ansible-doc", DONE]) == ([], [])


def test_e999_on_plugin_documentation_is_one_note_not_a_finding():
    found, notes = findings.log_findings([SIDECAR, SIDECAR.replace("cluster_plan", "reap_plan"), DONE])
    assert found == [] and len(notes) == 1 and "2 YAML plugin documentation file(s)" in notes[0]


def test_flake8_on_python_and_other_warnings_are_findings():
    python = "WARNING: plugins/filter/cluster.py:3:1: E999 SyntaxError: invalid syntax"
    other_yaml = "WARNING: playbooks/reap.yml:10:23: E999 SyntaxError: invalid syntax"
    lint = "WARNING: plugins/modules/lambda_instance.py:40:1: F401 'os' imported but unused"
    error = "ERROR: Invalid collection metadata. 'repository' is required"
    found, _notes = findings.log_findings([python, other_yaml, lint, error, DONE])
    assert found == [python, other_yaml, lint, error]


def test_an_import_that_did_not_complete_is_a_finding():
    found, _notes = findings.log_findings(["Getting doc strings via ansible-doc"])
    assert found == [f"the import did not complete ({DONE!r} missing)"]


def test_versions_below_1_0_0_compare_lower():
    assert findings.version_tuple("0.9.3") < (1, 0, 0) <= findings.version_tuple("1.0.0+build.7")


def test_a_fence_inside_a_list_item_is_found_with_its_indent():
    text = "Text\n\n```sh\nmake test\n```\n\n1. Step\n\n   ```yaml\n   a: 1\n   ```\n"
    assert findings.fences(text) == [(3, ""), (9, "   ")]
