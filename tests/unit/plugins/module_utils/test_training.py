# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A cluster ready to train: ranks, files, checks and the smoke test's verdict."""

from __future__ import annotations

import json

import pytest

from ansible_collections.lambdalabs.cloud.plugins.module_utils._training import (
    known_hosts,
    readiness_lines,
    readiness_problems,
    smoke_install_failure,
    smoke_python,
    smoke_verdict,
    ssh_config,
    training_env,
    training_plan,
)

HOSTVARS = {
    f"node-{index}": {
        "lambda_private_ip": f"10.0.0.{index}",
        "lambda_gpus": 8,
        "lambda_file_system_names": ["data"],
        "lambda_file_system_mounts": [],
    }
    for index in (1, 2, 10)
}


def plan(**changes):
    return training_plan(HOSTVARS | changes, ["node-10", "node-2", "node-1"])


def test_ranks_follow_natural_name_order_and_the_head_is_rank_0():
    found = plan()
    assert [(m["name"], m["rank"]) for m in found["members"]] == [("node-1", 0), ("node-2", 1), ("node-10", 2)]
    assert found["head"] == "node-1" and found["master_addr"] == "10.0.0.1" and found["nnodes"] == 3
    assert found["hostfile"] == "node-1 slots=8\nnode-2 slots=8\nnode-10 slots=8\n"
    assert found["hosts"] == "10.0.0.1 node-1\n10.0.0.2 node-2\n10.0.0.10 node-10"
    assert found["shared_dir"] == "/lambda/nfs/data" and found["error"] is None


def test_problems_with_the_nodes_variables_are_one_line():
    missing_ip = plan(**{"node-2": HOSTVARS["node-2"] | {"lambda_private_ip": None}})
    assert missing_ip["error"] == "node-2 has no private IP address (lambda_private_ip)."
    apart = plan(**{"node-2": HOSTVARS["node-2"] | {"lambda_file_system_names": ["other"]}})
    assert "do not share their first file system" in apart["error"] and "node-2 has /lambda/nfs/other" in apart["error"]
    mounted = plan(
        **{name: v | {"lambda_file_system_mounts": [{"mount_point": "/data/x"}]} for name, v in HOSTVARS.items()}
    )
    assert mounted["shared_dir"] == "/data/x"


def test_the_env_file_of_each_node():
    env = training_env(plan(), "node-2", "eno1", {"NCCL_IB_DISABLE": 1})
    assert 'export MASTER_ADDR="10.0.0.1"' in env and 'export NODE_RANK="1"' in env and 'NNODES="3"' in env
    assert (
        'export NPROC_PER_NODE="8"' in env and 'NCCL_SOCKET_IFNAME="eno1"' in env and 'GLOO_SOCKET_IFNAME="eno1"' in env
    )
    assert 'export NCCL_IB_DISABLE="1"' in env and env.startswith("# Written by lambdalabs.cloud training_cluster")
    assert "SOCKET_IFNAME" not in training_env(plan(), "node-1", None)


def test_readiness_problems_name_the_node():
    found = plan()
    checks = {
        "node-2": {"reachable": {"10.0.0.1:22": True, "10.0.0.10:22": False}, "gpu": {"count": 7}, "shared": "x"},
    }
    problems = readiness_problems(found, checks, token="token")
    assert problems == [
        "node-2 cannot reach node-10 at its private address 10.0.0.10:22 (SSH).",
        "node-2 shows 7 GPU(s) but its instance type has 8.",
        "node-2 does not see the file written on node-1 in /lambda/nfs/data: the file system is not shared.",
    ]
    assert (
        readiness_problems(found, {"node-1": {"reachable": {}, "gpu": {"count": 8}, "shared": "token"}}, "token") == []
    )
    ssh = {"rc": 255, "stderr": "  Permission denied (publickey).\n"}
    last = readiness_problems(found, {"node-10": {"ssh": ssh, "user": "ubuntu"}})
    assert last == ["node-10 cannot ssh to node-1 by name as ubuntu: Permission denied (publickey)."]
    assert readiness_problems(found, {"node-2": {"ssh": {"skipped": True}, "gpu": None}}) == []


def test_a_ready_node_says_what_it_was_checked_for():
    found = plan()
    ok = {"reachable": {"10.0.0.1:22": True}, "ssh": {"rc": 0}, "gpu": {"count": 8}, "shared": "token"}
    assert readiness_lines(found, {"node-10": ok}, "token") == [
        "node-10 (rank 2 of 3): reaches every node, node-1 by name over SSH, sees the shared file system, 8 GPU(s)."
    ]
    unchecked = {"reachable": {}, "ssh": {"skipped": True}, "gpu": None}
    assert readiness_lines(found, {"node-2": unchecked}) == ["node-2 (rank 1 of 3): reaches every node."]
    assert readiness_lines(found, {"node-2": ok | {"gpu": {"count": 1}}}, "token") == []


def test_the_smoke_verdict():
    found = plan()
    outputs = {
        name: "noise\n" + json.dumps({"rank": rank, "sum": 6.0, "backend": "gloo", "seconds": 1.5 + rank})
        for rank, name in enumerate(["node-1", "node-2", "node-10"])
    }
    verdict = smoke_verdict(found, outputs)
    assert verdict["ok"] and verdict["seconds"] == 3.5
    assert verdict["summary"] == "all_reduce across 3 node(s) with gloo: sum 6 on every rank, in 3.50 s."
    bad = smoke_verdict(found, outputs | {"node-2": json.dumps({"rank": 1, "sum": 5.0}), "node-10": "Traceback"})
    assert not bad["ok"] and "node-2 (rank 1) got 5.0, not 6" in bad["summary"]
    assert "node-10 printed no result: Traceback" in bad["summary"]


def test_known_hosts_and_ssh_config():
    found = plan()
    lines = known_hosts(found, {"node-1": "ssh-ed25519 AAAA root@node-1\n", "node-2": ""})
    assert lines == "node-1,10.0.0.1 ssh-ed25519 AAAA"
    assert ssh_config(found, "~/.ssh/k", "ubuntu").startswith("Host node-1 node-2 node-10\n    User ubuntu")


HAS_TORCH = {"rc": 0, "stdout": "2.13.0+cpu\n"}
NO_TORCH = {"rc": 1, "stdout": "", "stderr": "ModuleNotFoundError: No module named 'torch'"}


def test_the_smoke_test_takes_the_images_pytorch_when_every_node_has_it():
    chosen = smoke_python({"node-1": HAS_TORCH, "node-2": HAS_TORCH}, "auto", "/fs/venv")
    assert chosen == {"error": None, "python": "python3", "install": False, "source": "the image's PyTorch 2.13.0+cpu"}


@pytest.mark.parametrize(
    ("found", "mode"),
    [
        ({"node-1": HAS_TORCH, "node-2": NO_TORCH}, "auto"),  # one node without it: all take the virtualenv
        ({"node-1": HAS_TORCH}, "venv"),
        ({"node-1": None}, "venv"),  # not looked for
        ({}, "auto"),
    ],
)
def test_otherwise_it_installs_pytorch_in_a_virtualenv(found, mode):
    chosen = smoke_python(found, mode, "/fs/venv")
    assert chosen["error"] is None and chosen["install"] and chosen["python"] == "/fs/venv/bin/python"


def test_image_mode_names_the_nodes_without_pytorch_and_an_unknown_mode_is_refused():
    found = {"node-10": NO_TORCH, "node-2": None, "node-1": HAS_TORCH}
    assert smoke_python(found, "image")["error"] == (
        "training_cluster_smoke_pytorch is image, but python3 cannot import torch on node-2, node-10."
    )
    assert "must be auto, image or venv" in smoke_python(found, "conda")["error"]


def test_a_failed_install_is_one_line_naming_the_node_and_the_cause():
    full = {"msg": "Unable to create virtualenv", "stderr": "Error: [Errno 28] No space left on device: '/x'\n"}
    line = smoke_install_failure(full, "llm-2", ["torch==2.13.0"])
    assert line.startswith("llm-2: installing PyTorch for the smoke test failed: no space left on device on the node.")
    missing = {
        "msg": "stdout: Looking in links: /none\n\n:stderr: ERROR: Could not find a version that satisfies the "
        "requirement torch==2.13.0 (from versions: none)\nERROR: No matching distribution found for torch==2.13.0\n"
    }
    line = smoke_install_failure(missing, "llm-1", ["torch==2.13.0", "numpy"])
    assert "pip could not get torch==2.13.0, numpy from its package sources" in line and "\n" not in line
    traceback = {"msg": 'Traceback (most recent call last):\n  File "x", line 1\nOSError: disk \x1b[31mgone'}
    line = smoke_install_failure(traceback, "llm-3")
    assert line == "llm-3: installing PyTorch for the smoke test failed: OSError: disk  [31mgone"
    assert smoke_install_failure({}, "n").endswith("failed: no reason given")
    # python3 -m venv says only that ensurepip failed: the free space where the virtualenv goes tells why.
    hidden = {"msg": ":stderr: Error: Command '['/v/bin/python3', '-m', 'ensurepip']' returned non-zero exit status 1."}
    low = smoke_install_failure(hidden, "llm-2", ["torch"], {"rc": 0, "stdout": "Avail\n    4M\n"})
    assert low.startswith(
        "llm-2: installing PyTorch for the smoke test failed: no space left on device on the node (4 MiB"
    )
    roomy = smoke_install_failure(hidden, "llm-2", ["torch"], {"rc": 0, "stdout": "Avail\n 9000M\n"})
    assert "ensurepip" in roomy and "no space" not in roomy
    assert "ensurepip" in smoke_install_failure(hidden, "llm-2", ["torch"], {"rc": 1, "stdout": ""})
    resolution = {"msg": "ERROR: ResolutionImpossible: for help visit https://pip.pypa.io/"}
    assert "pip could not get torch from its package sources" in smoke_install_failure(resolution, "n", ["torch"])
    # pip's own words win over little free space: the virtualenv was made, the packages were not to be had.
    tight = smoke_install_failure(resolution, "n", ["torch"], {"rc": 0, "stdout": "Avail\n 41M\n"})
    assert "pip could not get torch" in tight
