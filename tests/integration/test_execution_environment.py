# Copyright: lambdalabs.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The sample execution environment (docs/execution-environment.yml) and the collection's EE metadata.

``ansible-builder create`` writes the build context of the sample, with the collection built from this checkout
in place of the one from Galaxy; the test checks the context. No container runtime is needed, and no image is
built (see docs/execution-environment.md). ``ansible-builder introspect`` then reads the installed collection as
the image build does, to show that requests and the OpenSSH client come from meta/execution-environment.yml.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import tarfile
from pathlib import Path

import pytest
import yaml

from tests.integration.support import BIN, COLLECTION

SAMPLE = COLLECTION / "docs" / "execution-environment.yml"

pytestmark = pytest.mark.skipif(
    not (BIN / "ansible-builder").exists(), reason="ansible-builder is not installed (requirements-test.txt has it)"
)


def run(*argv: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [str(BIN / argv[0]), *argv[1:]], capture_output=True, text=True, check=False, cwd=cwd, env=env, timeout=300
    )
    assert proc.returncode == 0, f"{argv}: {proc.stdout}{proc.stderr}"
    return proc


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def pinned(requirements: Path, name: str) -> str | None:
    """The ``==`` pin of ``name`` in a requirements file, if any."""
    for line in requirements.read_text().splitlines():
        match = re.match(rf"^{re.escape(name)}\s*==\s*(\S+)", line.strip(), re.IGNORECASE)
        if match:
            return match.group(1)
    return None


@pytest.fixture(scope="module")
def tarball(tmp_path_factory) -> Path:
    """The collection, built from this checkout."""
    dist = tmp_path_factory.mktemp("dist")
    run("ansible-galaxy", "collection", "build", "--output-path", str(dist), str(COLLECTION))
    (built,) = dist.glob("lambdalabs-cloud-*.tar.gz")
    return built


def test_the_collection_ships_its_execution_environment_metadata(tarball):
    with tarfile.open(tarball) as archive:
        names = set(archive.getnames())
        meta = yaml.safe_load(archive.extractfile("meta/execution-environment.yml").read())
    assert meta["version"] == 1
    assert meta["dependencies"] == {"python": "requirements.txt", "system": "bindep.txt"}
    assert {"meta/execution-environment.yml", "requirements.txt", "bindep.txt", "LICENSE"} <= names


def test_sample_pins_the_versions_the_tests_run(tmp_path):
    sample = yaml.safe_load(SAMPLE.read_text())
    assert sample["version"] == 3
    deps = sample["dependencies"]
    core = pinned(COLLECTION / "requirements-test.txt", "ansible-core")
    assert deps["ansible_core"]["package_pip"] == f"ansible-core=={core}"
    runner = pinned(COLLECTION / "requirements-test.txt", "ansible-runner")
    if runner:
        assert deps["ansible_runner"]["package_pip"] == f"ansible-runner=={runner}"
    assert [c["name"] for c in deps["galaxy"]["collections"]] == ["lambdalabs.cloud"]


def test_ansible_builder_create_with_the_collection_from_this_checkout(tmp_path, tarball):
    definition = yaml.safe_load(SAMPLE.read_text())
    # The collection from this checkout instead of Galaxy: copied into the build context, installed from there
    # (the galaxy stage runs `ansible-galaxy collection install -r requirements.yml` in /build).
    definition["additional_build_files"] = [{"src": str(tarball), "dest": "collections"}]
    definition["dependencies"]["galaxy"] = {
        "collections": [{"name": f"collections/{tarball.name}", "type": "file"}],
    }
    ee_file = tmp_path / "execution-environment.yml"
    ee_file.write_text(yaml.safe_dump(definition, sort_keys=False))
    context = tmp_path / "context"
    run(
        "ansible-builder",
        "create",
        "--file",
        str(ee_file),
        "--context",
        str(context),
        "--output-filename",
        "Containerfile",
        cwd=tmp_path,
    )

    containerfile = (context / "Containerfile").read_text()
    assert f'ARG EE_BASE_IMAGE="{definition["images"]["base_image"]["name"]}"' in containerfile
    core = definition["dependencies"]["ansible_core"]["package_pip"]
    runner = definition["dependencies"]["ansible_runner"]["package_pip"]
    assert f'ARG ANSIBLE_INSTALL_REFS="{core} {runner}"' in containerfile
    assert 'ARG PYCMD="/usr/bin/python3.11"' in containerfile
    # The galaxy stage installs the collection; the builder stage collects the collections' dependencies.
    assert re.search(r"RUN .*ansible-galaxy collection install .*-r requirements\.yml", containerfile)
    assert "introspect.py introspect --write-bindep=/tmp/src/bindep.txt --write-pip=/tmp/src/requirements.txt" in (
        containerfile
    )
    assert "install-from-bindep" in containerfile

    build = context / "_build"
    copied = build / "collections" / tarball.name
    assert copied.is_file() and sha256(copied) == sha256(tarball)
    requirements = yaml.safe_load((build / "requirements.yml").read_text())
    assert requirements["collections"] == [{"name": f"collections/{tarball.name}", "type": "file"}]
    assert {"assemble", "install-from-bindep", "introspect.py", "check_galaxy", "check_ansible"} <= {
        p.name for p in (build / "scripts").iterdir()
    }


def test_the_image_build_finds_requests_and_the_ssh_client(tmp_path, tarball):
    """What the builder stage's ``introspect`` finds in /usr/share/ansible, for the installed collection."""
    collections = tmp_path / "collections"
    # Only this path: with the checkout's link on ANSIBLE_COLLECTIONS_PATH, ansible-galaxy would find the collection
    # installed already and install nothing here.
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(collections))
    run("ansible-galaxy", "collection", "install", "-p", str(collections), str(tarball), cwd=tmp_path, env=env)
    assert (collections / "ansible_collections" / "lambdalabs" / "cloud" / "MANIFEST.json").is_file()
    pip_file, bindep_file = tmp_path / "requirements.txt", tmp_path / "bindep.txt"
    run(
        "ansible-builder",
        "introspect",
        "--sanitize",
        "--write-pip",
        str(pip_file),
        "--write-bindep",
        str(bindep_file),
        str(collections),
    )
    python = [line for line in pip_file.read_text().splitlines() if line and not line.startswith("#")]
    system = [line for line in bindep_file.read_text().splitlines() if line and not line.startswith("#")]
    assert any(re.match(r"requests\b.*# from collection lambdalabs\.cloud", line) for line in python), python
    assert any(line.startswith("openssh-clients [platform:rpm]") for line in system), system
    assert any(line.startswith("openssh-client [platform:dpkg]") for line in system), system
