"""The collection's metadata stays consistent with its code."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from ansible_collections.lambdalabs.cloud.plugins.module_utils._client import USER_AGENT
from ansible_collections.lambdalabs.cloud.plugins.module_utils._version import COLLECTION_VERSION

ROOT = Path(__file__).resolve().parents[2]


def test_version_matches_galaxy_yml():
    galaxy = yaml.safe_load((ROOT / "galaxy.yml").read_text())
    assert galaxy["version"] == COLLECTION_VERSION
    assert USER_AGENT.startswith(f"lambdalabs.cloud/{COLLECTION_VERSION} ansible-core/")


def test_action_group_lists_every_module():
    runtime = yaml.safe_load((ROOT / "meta" / "runtime.yml").read_text())
    modules = sorted(p.stem for p in (ROOT / "plugins" / "modules").glob("lambda_*.py"))
    assert modules, "no modules found"
    assert sorted(runtime["action_groups"]["lambda"]) == modules


def test_every_module_uses_the_shared_fragment():
    for path in (ROOT / "plugins" / "modules").glob("lambda_*.py"):
        text = path.read_text()
        assert "lambdalabs.cloud.lambda_cloud" in text, path.name
        assert "import requests" not in text, f"{path.name} must use the shared client"


def test_modules_that_run_on_the_nodes_need_no_api_client():
    """Modules not named lambda_* run on the GPU nodes: no API, no requests, not in the API action group."""
    node_modules = sorted(
        p.stem for p in (ROOT / "plugins" / "modules").glob("*.py") if not p.stem.startswith("lambda_")
    )
    assert node_modules == ["cluster_job", "gpu_node_info"]
    for name in node_modules:
        text = (ROOT / "plugins" / "modules" / f"{name}.py").read_text()
        assert "_client" not in text and "_api" not in text and "requests" not in text, name


def test_the_support_claim_matches_the_matrix_and_the_readme():
    """requires_ansible starts at the oldest version the matrix tests; the README lists exactly the tested ones."""
    matrix = sorted(
        (tuple(int(part) for part in p.stem.removeprefix("core-").split(".")), p)
        for p in (ROOT / "tests" / "matrix").glob("core-*.txt")
    )
    assert matrix, "no tests/matrix/core-*.txt"
    versions = [".".join(map(str, version)) for version, _path in matrix]
    runtime = yaml.safe_load((ROOT / "meta" / "runtime.yml").read_text())
    assert runtime["requires_ansible"] == f">={versions[0]}.0"
    readme = (ROOT / "README.md").read_text()
    table = re.findall(r"^\| (2\.\d+) \| (3\.\d+) \|$", readme, flags=re.MULTILINE)
    assert [version for version, _python in table] == versions
    for (version, python), (_key, path) in zip(table, matrix):
        text = path.read_text()
        assert f"# python: {python}" in text and f"ansible-core=={version}." in text, path.name
