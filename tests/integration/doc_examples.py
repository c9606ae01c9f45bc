# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The examples of a guide under docs/, in order, each with what it is, so that a test can run them as written.

Every fenced block is an example, of one of these kinds:

- ``file``: YAML whose first line is a comment naming a file (``# training.yml``): written there;
- ``playbook``: a YAML list of plays (the first has ``hosts``): run with ansible-playbook;
- ``tasks``: a YAML list of tasks: run in a play on localhost;
- ``variables``: other YAML, role variables: checked with the provision playbook in check mode, with the guide's
  variables file under them;
- ``controller``: shell commands that run Ansible;
- ``node``: shell commands for the cluster's nodes (no Ansible in them): run on every node;
- ``cron``: a crontab line: its command runs;
- ``output``: ``text`` blocks, what the commands print: not run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<language>[\w-]*)[ \t]*$")
FILE_COMMENT = re.compile(r"^# (?P<name>[\w.-]+\.ya?ml)$")


@dataclass(frozen=True)
class Example:
    doc: str
    line: int
    language: str
    text: str

    @property
    def where(self) -> str:
        return f"docs/{self.doc}, line {self.line}"

    @property
    def file_name(self) -> str | None:
        match = FILE_COMMENT.match(self.text.splitlines()[0]) if self.text.strip() else None
        return match["name"] if match else None

    @property
    def kind(self) -> str:
        if self.language == "text":
            return "output"
        if self.language == "cron":
            return "cron"
        if self.language == "sh":
            return "controller" if re.search(r"\bansible(-playbook)?\b", self.text) else "node"
        if self.language != "yaml":
            raise ValueError(f"{self.where}: a ```{self.language} block, which no test knows how to run")
        if self.file_name:
            return "file"
        data = yaml.safe_load(self.text)
        if isinstance(data, list):
            return "playbook" if data and isinstance(data[0], dict) and "hosts" in data[0] else "tasks"
        return "variables"


def examples(path: Path) -> list[Example]:
    """The fenced blocks of the Markdown file ``path``, in order (indented ones, inside lists, too)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    found = []
    index = 0
    while index < len(lines):
        match = FENCE.match(lines[index])
        if match is None:
            index += 1
            continue
        indent, body, end = len(match["indent"]), [], index + 1
        while end < len(lines) and lines[end].strip() != "```":
            body.append(lines[end][indent:])
            end += 1
        found.append(Example(path.name, index + 1, match["language"], "\n".join(body) + "\n"))
        index = end + 1
    return found


def cron_command(line: str) -> str:
    """The command of a crontab line (after its five time fields); comment lines give nothing."""
    entries = [entry for entry in line.splitlines() if entry.strip() and not entry.lstrip().startswith("#")]
    return "\n".join(entry.split(None, 5)[5] for entry in entries)
