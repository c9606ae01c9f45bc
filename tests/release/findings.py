# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Turn a galaxy-importer run into a list of findings; exit 1 when there is any.

Used by tests/release/check.sh, with the Python of galaxy-importer's virtual environment::

    findings.py --log import.log --result importer_result.json --root . [--allow-pre-1.0]

A finding is:

- every ``WARNING:`` or ``ERROR:`` line the importer printed (flake8, ansible-lint, metadata, changelog, ...),
  and a run that did not end with "Importer processing completed successfully"; except flake8's E999 on the
  YAML documentation of filter and test plugins (``plugins/filter/<name>.yml``), which galaxy-importer 0.4.44
  lints as Python because ansible-doc names it as the plugin's file: those are counted in a note;
- a version below 1.0.0: Automation Hub refuses it (``require_v1_or_greater``). ``--allow-pre-1.0`` reports it
  as a note instead;
- a Markdown file (README.md, docs/*.md) with a fenced code block that Galaxy's renderer (python-markdown with
  the ``extra`` extensions, as galaxy_importer/utils/markup.py calls it) does not render as a code block: it
  understands fences only at the start of a line, not inside list items or block quotes.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

# flake8 on the YAML documentation of a filter or test plugin (plugins/filter/<name>.yml, how each filter of a file
# that holds several is documented): galaxy-importer lints every file ansible-doc names as a plugin's source as
# Python. A false positive, noted.
SIDECAR_FLAKE8 = re.compile(r"^WARNING: plugins/(filter|test)/[^/\s]+\.ya?ml:\d+:\d+: E999 ")
FENCE = re.compile(r"^(?P<indent>[ \t>]*)(?P<fence>```+|~~~+)")
DONE = "Importer processing completed successfully"


def fences(text: str) -> list[tuple[int, str]]:
    """(line number, indentation) of each opening fence of a fenced code block."""
    found: list[tuple[int, str]] = []
    closing = ""
    for number, line in enumerate(text.splitlines(), 1):
        match = FENCE.match(line)
        if not match:
            continue
        if closing:
            if match.group("fence").startswith(closing):
                closing = ""
            continue
        closing = match.group("fence")
        found.append((number, match.group("indent")))
    return found


def markdown_findings(root: Path, rendered: list[dict]) -> list[str]:
    """Fenced blocks that the importer's HTML lost (fewer <pre> blocks than fences in the source)."""
    findings = []
    for doc in rendered:
        name = doc["name"]
        source = root / name if name.startswith("README") else root / "docs" / name
        if not source.is_file():
            continue
        blocks = fences(source.read_text(encoding="utf-8"))
        html = doc.get("html") or ""
        if html.count("<pre>") >= len(blocks):
            continue
        nested = [number for number, indent in blocks if indent]
        where = ", ".join(f"{source.relative_to(root)}:{number}" for number in nested) or str(source.relative_to(root))
        findings.append(
            f"markdown: {len(blocks) - html.count('<pre>')} fenced code block(s) not rendered as code by Galaxy "
            f"(a fence inside a list item or quote; Galaxy renders it as inline code and restarts the list): {where}"
        )
    return findings


def version_tuple(version: str) -> tuple[int, ...]:
    release = re.split(r"[-+]", version, maxsplit=1)[0]
    return tuple(int(part) for part in re.findall(r"\d+", release)[:3])


def log_findings(log: list[str]) -> tuple[list[str], list[str]]:
    """(findings, notes) from the importer's output lines: every WARNING or ERROR line is a finding, except the
    E999 on plugin documentation files, which make one note; an import that did not complete is a finding."""
    reported = [line.strip() for line in log if line.startswith(("WARNING:", "ERROR:"))]
    sidecars = [line for line in reported if SIDECAR_FLAKE8.match(line)]
    findings = [line for line in reported if line not in sidecars]
    notes = []
    if sidecars:
        notes.append(
            f"galaxy-importer ran flake8 on {len(sidecars)} YAML plugin documentation file(s) and printed E999 for "
            "each (the importer's false positive, not the collection's)"
        )
    if not any(DONE in line for line in log):
        findings.append(f"the import did not complete ({DONE!r} missing)")
    return findings, notes


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--log", required=True, type=Path, help="the importer's output")
    parser.add_argument("--result", required=True, type=Path, help="importer_result.json")
    parser.add_argument("--root", required=True, type=Path, help="the collection's source (for Markdown files)")
    parser.add_argument("--allow-pre-1.0", dest="allow_pre", action="store_true", help="a 0.x version is a note")
    args = parser.parse_args()

    findings, notes = log_findings(args.log.read_text(encoding="utf-8", errors="replace").splitlines())

    result = json.loads(args.result.read_text()) if args.result.is_file() else {}
    version = (result.get("metadata") or {}).get("version", "")
    if version and version_tuple(version) < (1, 0, 0):
        message = f"Automation Hub requires version >= 1.0.0; galaxy.yml has {version}"
        (notes if args.allow_pre else findings).append(message)
    if result:
        blob = result.get("docs_blob") or {}
        rendered = [blob.get("collection_readme") or {}, *(blob.get("documentation_files") or [])]
        findings += markdown_findings(args.root.resolve(), [doc for doc in rendered if doc.get("name")])

    for note in notes:
        print(f"NOTE: {note}")
    for finding in findings:
        print(f"FINDING: {finding}")
    if findings:
        print(f"galaxy-importer: {len(findings)} finding(s)")
        return 1
    print("galaxy-importer: no findings")
    return 0


if __name__ == "__main__":
    sys.exit(main())
