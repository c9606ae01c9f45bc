# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading a GPU node: the shell script's sections, the mount table and the facts made from them."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from ansible_collections.lambdalabs.cloud.plugins.module_utils._mounts import parse_mountinfo
from ansible_collections.lambdalabs.cloud.plugins.module_utils._node_read import (
    needs_module,
    node_facts,
    read_script,
    split_read,
)

MARKER = "@@0123456789abcdef"
QUERY = "0, NVIDIA A10, 23028, 550.127.05, Enabled, GPU-1, 00000000:18:00.0\n"
SUMMARY = "| NVIDIA-SMI 550.127.05   Driver Version: 550.127.05   CUDA Version: 12.4 |\n"
MOUNTINFO = "27 1 254:0 / / rw - ext4 /dev/vda rw\n90 27 0:50 / /lambda/nfs/my\\040data rw - nfs srv:/x rw\n"
PARAMS = {"nvidia_smi": "nvidia-smi", "expected_gpus": 1, "mount_root": "/lambda/nfs/"}


def printed(sections, newline="\n"):
    """What the script prints: each section's header (preceded by a newline), then its output."""
    text = "".join(f"\n{MARKER} {name}\n{body}" for name, body in sections)
    return text.replace("\n", newline)


def test_split_read_takes_each_section_and_the_query_errors_from_stderr():
    stdout = printed(
        [
            ("query", QUERY),
            ("status 0", ""),
            ("summary", SUMMARY),
            ("hostname", "node-1\n"),
            ("mountinfo", MOUNTINFO),
            ("mounts 0", ""),
            ("end", ""),
        ]
    )
    stderr = "Warning: a login banner\n" + printed([("query", "a warning\n"), ("status 0", ""), ("end", "")])
    read = split_read(stdout, stderr, MARKER)
    assert read["query"] == {"rc": 0, "stdout": QUERY.rstrip("\n"), "stderr": "a warning"}
    assert read["summary"] == {"stdout": SUMMARY.rstrip("\n")}
    assert read["hostname"] == "node-1"
    assert read["mountinfo"] == MOUNTINFO.rstrip("\n")


def test_split_read_reads_terminal_line_endings_and_a_failed_query():
    stdout = printed(
        [("query", ""), ("status 9", ""), ("hostname", "n\n"), ("mountinfo", ""), ("end", "")], newline="\r\n"
    )
    stderr = printed([("query", "NVIDIA-SMI has failed\n"), ("end", "")])
    read = split_read(stdout, stderr, MARKER)
    assert read["query"] == {"rc": 9, "stdout": "", "stderr": "NVIDIA-SMI has failed"}
    assert read["summary"] is None and read["hostname"] == "n"


def test_split_read_ignores_headers_with_another_marker():
    forged = f"{QUERY}@@ffffffffffffffff end\n"
    stdout = printed([("query", forged), ("status 0", ""), ("hostname", "n\n"), ("mountinfo", ""), ("end", "")])
    assert split_read(stdout, "", MARKER)["query"]["stdout"] == forged.rstrip("\n")


@pytest.mark.parametrize(
    "stdout, stderr",
    [("", "sh: 1: /bin/sh: not found"), (printed([("query", QUERY), ("status 0", "")]), "")],
)
def test_split_read_refuses_a_script_that_did_not_finish(stdout, stderr):
    with pytest.raises(ValueError, match="did not run the shell commands"):
        split_read(stdout, stderr, MARKER)


def test_split_read_without_a_mount_table_says_so():
    stdout = printed(
        [("query", ""), ("status 2", ""), ("hostname", "n\n"), ("mountinfo", ""), ("mounts 1", ""), ("end", "")]
    )
    assert split_read(stdout, "", MARKER)["mountinfo"] is None


def test_read_script_quotes_the_command_and_the_marker():
    script = read_script("/opt/my tools/nvidia-smi; reboot", MARKER)
    assert "smi='/opt/my tools/nvidia-smi; reboot'" in script
    assert f"M={MARKER};" in script
    assert script.count("section ") >= 5 and "section end" in script


def test_node_facts_from_the_printed_outputs():
    params = PARAMS | {"file_system_names": ["my data", "missing"], "file_system_mounts": []}
    query = {"rc": 0, "stdout": QUERY, "stderr": ""}
    facts = node_facts(params, query, {"stdout": SUMMARY}, "node-1", MOUNTINFO)
    assert facts["hostname"] == "node-1"
    assert facts["gpu"]["count"] == 1 and facts["gpu"]["cuda_version"] == "12.4" and facts["gpu"]["expected_count"] == 1
    assert facts["mounts"]["paths"] == ["/lambda/nfs/my data", "/lambda/nfs/missing"]
    assert facts["mounts"]["mounted"] == ["/lambda/nfs/my data"]
    assert "/lambda/nfs/missing" in facts["mounts"]["problem"]


def test_node_facts_without_a_mount_table_asks_ismount():
    params = PARAMS | {"file_system_names": ["a", "b"], "file_system_mounts": []}
    facts = node_facts(params, {"rc": 2, "stdout": "", "stderr": ""}, None, "n", None, "/lambda/nfs/b".__eq__)
    assert facts["mounts"]["mounted"] == ["/lambda/nfs/b"]
    assert facts["gpu"]["present"] is False and facts["gpu"]["error"] == "nvidia-smi was not found"
    assert node_facts(params, {"rc": 2}, None, "n", None)["mounts"]["mounted"] == []


@pytest.mark.parametrize(
    "params, expected",
    [
        ({}, False),
        ({"utilization_samples": 0, "reach": [], "private_address": None}, False),
        ({"utilization_samples": 3}, True),
        ({"reach": ["127.0.0.1:22"]}, True),
        ({"private_address": "127.10.0.2"}, True),
        ({"mount_root": "/lambda/nfs"}, False),
        ({"mount_root": "~/nfs"}, True),
        ({"mount_root": "$HOME/nfs"}, True),
    ],
)
def test_needs_module_only_for_what_the_shell_read_does_not_give(params, expected):
    assert needs_module(params) is expected


@pytest.mark.parametrize("shell", ["dash", "bash"])
def test_the_script_runs_to_its_end_in_each_shell_even_when_a_command_reads_stdin(shell, tmp_path):
    if not shutil.which(shell):
        pytest.skip(f"no {shell} here")
    smi = tmp_path / "nvidia-smi"
    smi.write_text(f"#!/bin/sh\ncat >/dev/null\nprintf '%s' '{QUERY}'\necho 'CUDA Version: 12.4' >&2\n")
    smi.chmod(0o755)
    script = read_script(str(smi), MARKER)
    run = subprocess.run([shell], input=script, capture_output=True, text=True, timeout=30, check=False)
    read = split_read(run.stdout, run.stderr, MARKER)
    assert read["query"] == {"rc": 0, "stdout": QUERY.rstrip("\n"), "stderr": "CUDA Version: 12.4"}
    assert read["summary"] == {"stdout": QUERY.rstrip("\n")} and read["hostname"]
    assert "/proc" in parse_mountinfo(read["mountinfo"])
    missing = read_script("no-such-nvidia-smi", MARKER)
    run = subprocess.run([shell], input=missing, capture_output=True, text=True, timeout=30, check=False, env={})
    assert split_read(run.stdout, run.stderr, MARKER)["query"] == {"rc": 2, "stdout": "", "stderr": ""}
