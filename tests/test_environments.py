"""The set-up files agree: pyproject.toml, the constraints, the conda and Binder files.

Two sets of packages, spelled out here:

* the **learner's set**: ``dependencies`` + the ``torch``, ``tensorflow`` and ``lab``
  extras of pyproject.toml. It is what the lessons and the Explorer app import, plus the
  front-ends (JupyterLab, Notebook 7, Voila). ``environment.yml`` lists exactly this
  set; ``binder/environment.yml`` this set plus :data:`HUB_ONLY`.
* the **developer's set**: the ``dev`` extra (pytest, nbval, ruff, playwright, captum...).
  It stays out of both conda files, so Binder's image is no bigger than a learner needs;
  ``make venv`` installs both sets, pinned by ``constraints/linux-cpu.txt``.

A dependency added to one file and forgotten in another fails here, before a learner
finds it missing on Binder.
"""

from __future__ import annotations

import json
import re
import sys
import tomllib
from pathlib import Path

import nbformat
import pytest
import yaml
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
CONSTRAINTS = ROOT / "constraints" / "linux-cpu.txt"
LEARNER_EXTRAS = ("torch", "tensorflow", "lab")
DEVELOPER_EXTRAS = ("dev",)

# PyPI name -> conda-forge name, where they differ.
CONDA_NAME = {"torch": "pytorch-cpu"}
# The other platforms' TensorFlow build; the conda files pick one build for all platforms.
PLATFORM_ALTERNATIVES = {"tensorflow"}
# Only in binder/environment.yml: a hub whose image is built from binder/ opens the
# lessons through nbgitpuller links (docs/teaching_guide.md, "A university JupyterHub").
HUB_ONLY = {"nbgitpuller"}
# Import name -> PyPI name, where they differ (for the check of the lessons' imports).
IMPORT_TO_PACKAGE = {
    "PIL": "pillow",
    "skimage": "scikit-image",
    "sklearn": "scikit-learn",
    "tensorflow": "tensorflow-cpu",
    "yaml": "pyyaml",
}


def _name(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[]", requirement.strip(), maxsplit=1)[0].lower()


def _requirements(*extras: str, base: bool = False) -> list[str]:
    requirements = list(PYPROJECT["dependencies"]) if base else []
    for extra in extras:
        requirements += PYPROJECT["optional-dependencies"][extra]
    return requirements


def learner_packages() -> set[str]:
    return {_name(r) for r in _requirements(*LEARNER_EXTRAS, base=True)} - PLATFORM_ALTERNATIVES


def developer_packages() -> set[str]:
    return {_name(r) for r in _requirements(*DEVELOPER_EXTRAS)}


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


def _as_conda(names: set[str]) -> set[str]:
    return {CONDA_NAME.get(name, name) for name in names}


def constraint_pins() -> dict[str, str]:
    pins = {}
    for line in CONSTRAINTS.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.strip().split("==")
            pins[name.lower()] = version
    return pins


ENVIRONMENT = ROOT / "environment.yml"
BINDER_ENVIRONMENT = ROOT / "binder" / "environment.yml"
ENV_FILES = [ENVIRONMENT, BINDER_ENVIRONMENT]


def test_the_two_sets_do_not_overlap():
    assert learner_packages() & developer_packages() == set()


def test_environment_yml_is_the_learners_set():
    conda, pip = conda_packages(ENVIRONMENT)
    listed = conda | _as_conda(pip)
    expected = _as_conda(learner_packages())
    assert expected - listed == set(), "missing from environment.yml"
    assert listed - expected == set(), "environment.yml lists packages a learner does not need"


def test_binder_is_the_learners_set_plus_the_hub_puller():
    conda, pip = conda_packages(BINDER_ENVIRONMENT)
    listed = conda | _as_conda(pip)
    expected = _as_conda(learner_packages()) | HUB_ONLY
    assert expected - listed == set(), "missing from binder/environment.yml"
    assert listed - expected == set(), "binder/environment.yml lists what a learner does not need"


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_conda_files_hold_no_developer_tool(path):
    conda, pip = conda_packages(path)
    assert (conda | pip) & _as_conda(developer_packages()) == set()
    for tool in ("pytest", "ruff", "playwright", "captum", "nbval"):
        assert tool not in conda | pip


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_conda_file_takes_cpu_only_pytorch(path):
    conda, pip = conda_packages(path)
    assert "pytorch-cpu" in conda
    assert "pytorch" not in conda
    assert "torch" not in pip
    assert not any("cuda" in name for name in conda | pip)
    assert yaml.safe_load(path.read_text())["channels"] == ["conda-forge"]


def test_lessons_import_only_the_learners_set():
    """A lesson that imports a developer tool (captum, say) needs it on Binder too."""
    stdlib = set(sys.stdlib_module_names)  # copy, secrets, ...: nothing to install
    provided = learner_packages() | {"gradcam_widgets", "ipywidgets", "keras", "torch"}
    notebooks = sorted((ROOT / "notebooks").rglob("*.ipynb"))
    assert notebooks
    for path in notebooks:
        source = "\n".join(
            cell.source for cell in nbformat.read(path, as_version=4).cells
            if cell.cell_type == "code"
        )
        for module in re.findall(r"^\s*(?:import|from)\s+([A-Za-z_]\w*)", source, re.M):
            if module in stdlib:
                continue
            package = IMPORT_TO_PACKAGE.get(module, module).lower().replace("_", "-")
            assert package in provided | {"gradcam-widgets"}, (
                f"{path.name} imports {module}: add {package} to the learner's set "
                "(pyproject's dependencies or the lab extra, and both conda files)"
            )


# --- pyproject ranges, the constraints file's exact pins ---------------------------------


def test_pyproject_gives_ranges_not_the_machine_pin():
    for text in _requirements(*LEARNER_EXTRAS, base=True):
        operators = {spec.operator for spec in Requirement(text).specifier}
        assert "==" not in operators, f"{text}: give a range; pins go in {CONSTRAINTS.name}"
    assert any(r.replace(" ", "").startswith("torch>=") for r in _requirements("torch"))


def test_constraints_pin_the_cpu_torch_build():
    assert constraint_pins()["torch"] == "2.13.0"


def test_constraints_pin_every_direct_dependency_within_its_range():
    pins = constraint_pins()
    for text in _requirements(*LEARNER_EXTRAS, *DEVELOPER_EXTRAS, base=True):
        requirement = Requirement(text)
        if requirement.marker is not None and not requirement.marker.evaluate(
            {"sys_platform": "linux", "platform_system": "Linux"}
        ):
            continue
        name = requirement.name.lower().replace("_", "-")
        assert name in pins, f"{name} is not pinned in {CONSTRAINTS.name}: constraints/update.py"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"{CONSTRAINTS.name} pins {name}=={pins[name]}, outside pyproject's {requirement}"
        )


def test_make_and_ci_install_with_the_constraints():
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"pip install .*-e '\.\[torch,tensorflow,lab,dev\]' -c \$\(CONSTRAINTS\)",
                     makefile)
    assert "CONSTRAINTS := constraints/linux-cpu.txt" in makefile
    ci = (ROOT / ".ci" / "run").read_text()
    # The README's test command, after the lint (ruff and mypy: quick, so they fail first).
    assert re.findall(r"^make \S+$", ci, re.M) == ["make lint", "make test"]
    assert re.search(r"^lint: venv$", makefile, re.M)


# --- the settings that keep a course within Binder's memory ------------------------------


def test_jupyterlab_shuts_a_closed_notebooks_kernel_down():
    overrides = json.loads((ROOT / "binder" / "overrides.json").read_text())
    tracker = overrides["@jupyterlab/notebook-extension:tracker"]
    assert tracker["kernelShutdown"] is True
    assert tracker["autoStartDefaultKernel"] is True


def test_server_culls_only_idle_kernels_without_a_tab():
    config = json.loads((ROOT / "binder" / "jupyter_server_config.json").read_text())
    culling = config["MappingKernelManager"]
    assert 5 * 60 <= culling["cull_idle_timeout"] <= 30 * 60  # long enough to read a section
    assert 0 < culling["cull_interval"] <= culling["cull_idle_timeout"]
    assert culling["cull_connected"] is False
    assert culling["cull_busy"] is False


def test_postbuild_installs_the_package_and_both_settings_files():
    script = (ROOT / "binder" / "postBuild").read_text()
    assert script.splitlines()[0].startswith("#!")
    assert "set -e" in script
    # Not editable (-e): a hub's home volume hides the repository the install would point at.
    assert re.search(r"pip install --no-deps \.$", script, re.M)
    assert 'cp binder/overrides.json "$prefix/share/jupyter/lab/settings/overrides.json"' in script
    assert re.search(
        r"cp binder/jupyter_server_config.json \"\$prefix/etc/jupyter/jupyter_server_config\.d/",
        script,
    )


def test_make_venv_installs_both_settings_files():
    makefile = (ROOT / "Makefile").read_text()
    for line in (
        "binder/overrides.json $(VENV)/share/jupyter/lab/settings/overrides.json",
        "binder/jupyter_server_config.json $(VENV)/etc/jupyter/jupyter_server_config.d/",
    ):
        assert line in makefile


# --- one Python version everywhere -------------------------------------------------------


def test_one_python_version_everywhere():
    minimum = re.fullmatch(r">=(3\.\d+)", PYPROJECT["requires-python"]).group(1)
    for path in ENV_FILES:
        assert f"python={minimum}" in yaml.safe_load(path.read_text())["dependencies"]
    readme = (ROOT / "README.md").read_text()
    mentioned = set(re.findall(r"Python (3\.\d+)", readme))
    assert mentioned == {minimum}, f"README names Python {sorted(mentioned)}; pyproject {minimum}"
