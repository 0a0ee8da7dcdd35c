"""pyproject.toml, environment.yml and binder/environment.yml list the same packages.

A dependency added to one file and forgotten in another fails here, before a learner
finds it missing on Binder. The conda files must take CPU-only PyTorch.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]

# PyPI name -> conda-forge name, where they differ.
CONDA_NAME = {"torch": "pytorch-cpu", "tensorflow-cpu": "tensorflow-cpu"}
# Not needed on conda (the conda files pick one TensorFlow build for all platforms).
PLATFORM_ALTERNATIVES = {"tensorflow"}


def _name(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[]", requirement.strip(), maxsplit=1)[0].lower()


def pyproject_packages() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = list(project["dependencies"])
    for extra in ("torch", "tensorflow", "dev"):
        requirements += project["optional-dependencies"][extra]
    return {_name(r) for r in requirements} - PLATFORM_ALTERNATIVES


def conda_packages(path: Path) -> tuple[set[str], set[str]]:
    """(conda package names, pip package names) of an environment file."""
    spec = yaml.safe_load(path.read_text())
    conda, pip = set(), set()
    for entry in spec["dependencies"]:
        if isinstance(entry, dict):
            pip |= {_name(p) for p in entry.get("pip", [])}
        else:
            conda.add(_name(entry))
    return conda - {"python", "pip"}, pip


ENV_FILES = [ROOT / "environment.yml", ROOT / "binder" / "environment.yml"]


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_conda_file_lists_every_pyproject_package(path):
    conda, pip = conda_packages(path)
    expected = {CONDA_NAME.get(name, name) for name in pyproject_packages()}
    listed = conda | {CONDA_NAME.get(name, name) for name in pip}
    assert expected - listed == set(), f"missing from {path.name}"
    assert listed - expected == set(), f"{path.name} lists packages pyproject.toml does not"


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_conda_file_takes_cpu_only_pytorch(path):
    conda, pip = conda_packages(path)
    assert "pytorch-cpu" in conda
    assert "pytorch" not in conda and "torch" not in pip
    assert not any("cuda" in name for name in conda | pip)
    assert yaml.safe_load(path.read_text())["channels"] == ["conda-forge"]


def test_the_two_conda_files_agree():
    assert conda_packages(ENV_FILES[0]) == conda_packages(ENV_FILES[1])


def test_pyproject_pins_the_cpu_torch_build():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "torch==2.13.0" in project["optional-dependencies"]["torch"]


def test_postbuild_installs_the_package_without_dependencies():
    script = (ROOT / "binder" / "postBuild").read_text()
    assert script.splitlines()[0].startswith("#!") and "set -e" in script
    assert re.search(r"pip install --no-deps -e \.", script)
