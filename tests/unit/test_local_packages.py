"""Which of pip's configured package sources the simulator's nodes install from (tests/local_packages.py)."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[1] / "local_packages.py"
SPEC = importlib.util.spec_from_file_location("local_packages", SOURCE)
local_packages = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(local_packages)


@pytest.fixture
def pip_config(tmp_path, monkeypatch):
    """Point pip at one configuration file of the test's own, with no PIP_* settings from this environment."""
    for name in list(os.environ):
        if name.startswith("PIP_"):
            monkeypatch.delenv(name)
    # Nor the user's configuration, nor the XDG one.
    for name in ("HOME", "XDG_CONFIG_HOME", "XDG_CONFIG_DIRS"):
        monkeypatch.setenv(name, str(tmp_path / "elsewhere"))
    config = tmp_path / "pip.conf"
    monkeypatch.setenv("PIP_CONFIG_FILE", str(config))
    return config


def test_only_local_directories_and_file_indexes_are_kept(tmp_path, pip_config):
    (tmp_path / "wheels").mkdir()
    (tmp_path / "simple").mkdir()
    pip_config.write_text(
        "[global]\n"
        f"find-links = {tmp_path / 'wheels'} https://example.org/links {tmp_path / 'missing'}\n"
        f"extra-index-url = https://pypi.org/simple file://{tmp_path / 'simple'}\n"
    )
    assert local_packages.local_pip_args(sys.executable) == [
        "--index-url",
        f"file://{tmp_path / 'simple'}",
        "--find-links",
        str(tmp_path / "wheels"),
    ]


def test_find_links_alone_install_with_no_index(tmp_path, pip_config, monkeypatch):
    (tmp_path / "wheels").mkdir()
    pip_config.write_text("[global]\nindex-url = https://pypi.org/simple\n")
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path / "wheels"))
    assert local_packages.local_pip_args(sys.executable) == ["--no-index", "--find-links", str(tmp_path / "wheels")]


def test_no_local_source_is_an_error(pip_config):
    pip_config.write_text("[global]\nextra-index-url = https://pypi.org/simple\n")
    with pytest.raises(local_packages.NoLocalSource, match="no local package source"):
        local_packages.local_pip_args(sys.executable)


def test_the_smoke_test_variables_never_compile_everything(tmp_path, pip_config):
    (tmp_path / "wheels").mkdir()
    pip_config.write_text(f"[global]\nfind-links = {tmp_path / 'wheels'}\n")
    variables = local_packages.smoke_extra_vars(sys.executable)
    assert json.loads(json.dumps(variables)) == {
        "training_cluster_smoke_pip_extra_args": f"--no-compile --no-index --find-links {tmp_path / 'wheels'}"
    }
