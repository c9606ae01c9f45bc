# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Helpers of tests/release/build-docs.sh: the guides as extra docs, and ansible-core's references offline.

``docsite.py guides <copy of the collection>``: write the reStructuredText extra docs from the Markdown guides.

antsibull-docs takes a collection's extra docs from ``docs/docsite/rst/*.rst``, listed in
``docs/docsite/extra-docs.yml``. This collection writes its guides in Markdown (``docs/*.md``, which Galaxy and
GitHub render), so tests/release/build-docs.sh converts them at build time, into its copy of the collection,
never into the checkout: there is no second, hand-kept copy of any guide.

Each ``ref`` in extra-docs.yml names a guide, ``docs/<ref>.md``, converted by pandoc (from the pypandoc-binary
wheel) with the filter md2rst.lua (labels, links, code blocks) into ``docs/docsite/rst/<ref>.rst``.

``docsite.py intersphinx <objects.inv>``: write a Sphinx inventory of the pages of ansible-core's documentation
that the generated plugin pages link to (ANSIBLE_DOCS_TARGETS), for intersphinx to use instead of fetching
docs.ansible.com's: the links still go to docs.ansible.com, and the build needs no network. When antsibull-docs
starts linking to another of its targets, the build warns "undefined label" or "reference target not found":
add that target here.
"""

from __future__ import annotations

import re
import subprocess
import sys
import zlib
from pathlib import Path

import pypandoc
import yaml
from pygments.lexers import get_lexer_by_name
from pygments.util import ClassNotFound

HERE = Path(__file__).resolve().parent
PREFIX = "ansible_collections.lambdalabs.cloud.docsite."
# The label antsibull-docs gives the collection's index page.
INDEX_LABEL = "plugins_in_lambdalabs.cloud"
# A label that md2rst.lua put right above a section title, without the blank line between them that RST needs.
LABEL_ABOVE_TITLE = re.compile(r"^(\.\. _[^\n]+:)\n(?=\S)", re.MULTILINE)
# The targets in ansible-core's documentation (intersphinx name ansible_devel) that the pages antsibull-docs
# generates for this collection refer to: (name, domain:role, page and anchor, title).
ANSIBLE_DOCS_TARGETS = [
    (
        "common_return_values",
        "std:label",
        "reference_appendices/common_return_values.html#common-return-values",
        "Return Values",
    ),
    (
        "ansible_configuration_settings",
        "std:label",
        "reference_appendices/config.html#ansible-configuration-settings",
        "Ansible Configuration Settings",
    ),
    *(
        (name, "std:envvar", f"reference_appendices/config.html#envvar-{name}", "-")
        for name in (
            "ANSIBLE_CACHE_PLUGIN",
            "ANSIBLE_CACHE_PLUGIN_CONNECTION",
            "ANSIBLE_CACHE_PLUGIN_PREFIX",
            "ANSIBLE_CACHE_PLUGIN_TIMEOUT",
        )
    ),
]
FENCE_LANGUAGE = re.compile(r"^\s*(?:```+|~~~+)\s*([\w+-]+)", re.MULTILINE)


def guides(collection: Path) -> list[str]:
    """The refs of extra-docs.yml's toctrees, in order."""
    index = yaml.safe_load((collection / "docs" / "docsite" / "extra-docs.yml").read_text())
    refs = []
    for section in index.get("sections") or []:
        for entry in section.get("toctree") or []:
            refs.append(entry if isinstance(entry, str) else entry["ref"])
    return refs


def known_lexers(texts: list[str]) -> list[str]:
    """The code block languages of ``texts`` that Pygments (so Sphinx) can highlight."""
    known = set()
    for text in texts:
        for language in FENCE_LANGUAGE.findall(text):
            try:
                get_lexer_by_name(language)
            except ClassNotFound:
                continue
            known.add(language)
    return sorted(known)


def repository_blob(collection: Path) -> str:
    """The URL of the repository's files on GitHub, from galaxy.yml's repository."""
    galaxy = yaml.safe_load((collection / "galaxy.yml").read_text())
    return galaxy["repository"].rstrip("/") + "/blob/main/"


def write_intersphinx(path: Path) -> None:
    """A Sphinx inventory (version 2) of ANSIBLE_DOCS_TARGETS."""
    lines = "".join(f"{name} {role} 1 {uri} {title}\n" for name, role, uri, title in ANSIBLE_DOCS_TARGETS)
    header = (
        "# Sphinx inventory version 2\n# Project: Ansible\n# Version: devel\n"
        "# The remainder of this file is compressed using zlib.\n"
    )
    path.write_bytes(header.encode() + zlib.compress(lines.encode()))


def main() -> int:
    if len(sys.argv) != 3 or sys.argv[1] not in ("guides", "intersphinx"):
        print(__doc__, file=sys.stderr)
        return 2
    if sys.argv[1] == "intersphinx":
        write_intersphinx(Path(sys.argv[2]))
        return 0
    collection = Path(sys.argv[2]).resolve()
    refs = guides(collection)
    sources = {ref: collection / "docs" / f"{ref}.md" for ref in refs}
    missing = [str(path) for path in sources.values() if not path.is_file()]
    if missing:
        print(f"extra-docs.yml lists guides that do not exist: {', '.join(missing)}", file=sys.stderr)
        return 1
    unlisted = sorted(
        f"docs/{path.name}" for path in (collection / "docs").glob("*.md") if path.stem not in [*refs, "index"]
    )
    if unlisted:
        print(
            f"docs/docsite/extra-docs.yml does not list {', '.join(unlisted)}: add each to a section", file=sys.stderr
        )
        return 1
    lexers = known_lexers([path.read_text(encoding="utf-8") for path in sources.values()])
    target_dir = collection / "docs" / "docsite" / "rst"
    target_dir.mkdir(parents=True, exist_ok=True)
    pandoc = pypandoc.get_pandoc_path()
    for ref, source in sources.items():
        rst = subprocess.run(
            [
                pandoc,
                "--from=gfm",
                "--to=rst",
                "--wrap=preserve",
                f"--lua-filter={HERE / 'md2rst.lua'}",
                f"--metadata=docname:{ref}",
                f"--metadata=guides:{','.join(refs)}",
                f"--metadata=lexers:{','.join(lexers)}",
                f"--metadata=prefix:{PREFIX}",
                f"--metadata=index_label:{INDEX_LABEL}",
                f"--metadata=repository:{repository_blob(collection)}",
                str(source),
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        rst = LABEL_ABOVE_TITLE.sub(r"\1\n\n", rst)
        header = f"..\n  Generated from docs/{ref}.md by tests/release/build-docs.sh: edit that file instead.\n\n"
        (target_dir / f"{ref}.rst").write_text(header + rst, encoding="utf-8")
        print(f"docs/{ref}.md -> docs/docsite/rst/{ref}.rst")
    return 0


if __name__ == "__main__":
    sys.exit(main())
