"""Importing the package must import neither framework."""

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_import_is_light():
    code = (
        "import sys, gradcam_widgets as gw; gw.overlay; gw.data; gw.zoo; gw.figures; gw.Explorer; "
        "gw.exercises; gw.gradcam; gw.metrics; gw.datasets; gw.typing; "
        "print(' '.join(m for m in ('torch', 'tensorflow', 'keras') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""


def test_unknown_attribute():
    import gradcam_widgets as gw

    with pytest.raises(AttributeError, match="does_not_exist"):
        gw.does_not_exist  # noqa: B018


def test_one_version_source():
    # pyproject reads the version from the package; nobody writes it twice
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in project["project"]
    assert "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {
        "attr": "gradcam_widgets.__version__"
    }
    # setuptools reads the attribute statically: it must be a plain string literal
    tree = ast.parse((ROOT / "gradcam_widgets" / "__init__.py").read_text())
    values = [
        node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        and any(getattr(target, "id", None) == "__version__" for target in node.targets)
        and isinstance(node.value, ast.Constant)
    ]
    import gradcam_widgets as gw

    assert values == [gw.__version__]


def test_the_package_ships_its_type_information():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "py.typed" in project["tool"]["setuptools"]["package-data"]["gradcam_widgets"]
    assert (ROOT / "gradcam_widgets" / "py.typed").is_file()
