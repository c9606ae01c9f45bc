"""The collection builds, installs from its tarball, and documents every plugin."""

from __future__ import annotations

import json
import os
import subprocess
import tarfile
from pathlib import Path

import yaml

from tests.integration.support import BIN, COLLECTION


def run(*argv: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / argv[0]), *argv[1:]], capture_output=True, text=True, check=False, env=env, cwd=cwd, timeout=300
    )


def test_build_install_and_document(tmp_path):
    version = yaml.safe_load((COLLECTION / "galaxy.yml").read_text())["version"]
    built = run("ansible-galaxy", "collection", "build", "--output-path", str(tmp_path), str(COLLECTION))
    assert built.returncode == 0, built.stdout + built.stderr
    tarball = tmp_path / f"lambdalabs-cloud-{version}.tar.gz"
    with tarfile.open(tarball) as archive:
        names = archive.getnames()
    assert "plugins/modules/lambda_instance.py" in names and "meta/runtime.yml" in names
    assert not any(name.startswith((".venv", ".tmp", ".ci", ".git/")) for name in names)

    target = tmp_path / "collections"
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(target))  # only the installed copy, not this checkout
    installed = run("ansible-galaxy", "collection", "install", "-p", str(target), str(tarball), env=env)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert "installed successfully" in installed.stdout
    modules = sorted(p.stem for p in (COLLECTION / "plugins" / "modules").glob("lambda_*.py"))
    listed = run("ansible-doc", "--list", "lambdalabs.cloud", "--json", env=env, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    for module in modules:
        assert f"lambdalabs.cloud.{module}" in listed.stdout
    # Every module's documentation in one ansible-doc run: from the installed copy, with the shared options of the
    # doc fragment (api_key) and examples.
    names = [f"lambdalabs.cloud.{module}" for module in modules]
    documented = run("ansible-doc", "--json", *names, env=env, cwd=tmp_path)
    assert documented.returncode == 0, documented.stderr
    docs = json.loads(documented.stdout)
    assert sorted(docs) == names
    for name, doc in docs.items():
        assert doc["doc"]["filename"].startswith(str(target)), (name, doc["doc"]["filename"])
        assert "api_key" in doc["doc"]["options"] and doc["examples"].strip(), name
