"""Everything that depends on the framework lives behind ``backends/`` (issue 10).

Read from the source with ``ast``: outside ``backends/`` no module tests a backend's
name, sniffs tensors (``hasattr(x, "detach")``, ``isinstance(x, torch.Tensor)``) or
imports a framework (at import time or in a function). Exceptions, for framework code
written on purpose (imports and ``isinstance`` on framework types, never sniffing or
backend names): the zoo builds its models in each framework, the exercises build
hand-set networks and check code written for one lesson's framework (lesson 07's
hand-written torch Grad-CAM, lesson 02's Keras Sequential), and ``datasets`` can fetch
MNIST through ``keras.datasets``. The zoo's ``*_torch.py`` / ``*_keras.py`` builders are
written in one framework, as the backends are.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import gradcam_widgets

PACKAGE = Path(gradcam_widgets.__file__).resolve().parent
FRAMEWORKS = {"torch", "keras", "tensorflow", "tf", "jax"}
SNIFFED = {"detach", "numpy", "cpu", "requires_grad", "get_layer", "named_modules"}
# Whole modules of one framework, as the backends are: the zoo's per-framework builders.
ONE_FRAMEWORK = ("_torch.py", "_keras.py")
# Modules that build or load something in a framework on purpose: the exercises' hand-set
# networks (lesson 06's hidden blobs, lesson 07's nested Keras model and hand-written
# torch Grad-CAM), and MNIST through keras.datasets.
BUILDERS = ("zoo", "exercises", "datasets.py")
MODULES = sorted(
    path
    for path in PACKAGE.rglob("*.py")
    if "backends" not in path.relative_to(PACKAGE).parts and not path.name.endswith(ONE_FRAMEWORK)
)


def _root(node: ast.AST) -> str | None:
    while isinstance(node, ast.Attribute):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _findings(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names = [node.module or ""]
        else:
            continue
        found += [
            f"line {node.lineno}: imports {n}" for n in names if n.split(".")[0] in FRAMEWORKS
        ]
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            args = node.args
            if node.func.id == "hasattr" and len(args) == 2:
                attribute = args[1]
                if isinstance(attribute, ast.Constant) and attribute.value in SNIFFED:
                    found.append(f"line {node.lineno}: hasattr(..., {attribute.value!r})")
            if node.func.id == "isinstance" and len(args) == 2:
                kinds = args[1].elts if isinstance(args[1], ast.Tuple) else [args[1]]
                for kind in kinds:
                    if _root(kind) in FRAMEWORKS:
                        found.append(f"line {node.lineno}: isinstance(..., {ast.unparse(kind)})")
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            named = any(isinstance(s, ast.Attribute) and s.attr == "name" for s in sides)
            constants = {
                s.value for s in sides if isinstance(s, ast.Constant) and isinstance(s.value, str)
            }
            if named and constants & FRAMEWORKS:
                found.append(f"line {node.lineno}: {ast.unparse(node)}")
    return found


def test_the_scan_finds_what_it_looks_for(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import torch\n"
        "def f(x, backend):\n"
        "    if hasattr(x, 'detach'):\n"
        "        return isinstance(x, torch.Tensor)\n"
        "    return backend.name == 'keras'\n"
    )
    assert len(_findings(bad)) == 4
    inner = tmp_path / "inner.py"  # receptive_field.py's old shape
    inner.write_text("def f(model):\n    import torch\n    return torch.nn\n")
    assert _findings(inner) == ["line 2: imports torch"]


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_outside_backends_tests_a_framework(path):
    findings = _findings(path)
    parts = path.relative_to(PACKAGE).parts
    if parts[0] in BUILDERS:  # their own framework code allowed; sniffing and names not
        findings = [f for f in findings if ": imports " not in f and ": isinstance" not in f]
    assert findings == [], findings
