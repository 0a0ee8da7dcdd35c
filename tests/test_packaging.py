"""The package installs like any other, and Binder's builder reads binder/ as we mean it.

* The wheel: ``python -m build`` makes a wheel and an sdist; the wheel goes into a fresh
  virtual environment outside the repository, with constraints/linux-cpu.txt, and is
  used from a temporary folder: the command-line tool on a sample photo in both
  frameworks (one Grad-CAM each; it needs the ImageNet class names shipped in the wheel),
  and ``import gradcam_widgets`` from the environment, not from this checkout.
* repo2docker, the tool mybinder.org builds images with: ``--no-build --no-run --debug``
  prints the Dockerfile it would build, without Docker. It must take
  binder/environment.yml and run binder/postBuild, and ignore the root files.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
CONSTRAINTS = ROOT / "constraints" / "linux-cpu.txt"
CATS = ("tabby", "tiger cat", "Persian cat", "Siamese cat", "Egyptian cat")


def _clean_env() -> dict[str, str]:
    """This process's environment without anything that points at the checkout."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    return env


def _run(args: list[str], cwd: Path, timeout: float = 900) -> str:
    result = subprocess.run(
        args, cwd=cwd, env=_clean_env(), capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, f"{args} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.mark.slow
def test_the_wheel_installs_and_works_outside_the_repository(tmp_path):
    started = time.monotonic()
    dist = tmp_path / "dist"
    _run([sys.executable, "-m", "build", "--outdir", str(dist), str(ROOT)], cwd=tmp_path)
    wheels, sdists = list(dist.glob("*.whl")), list(dist.glob("*.tar.gz"))
    assert len(wheels) == 1, list(dist.iterdir())
    assert len(sdists) == 1, list(dist.iterdir())
    names = zipfile.ZipFile(wheels[0]).namelist()
    assert "gradcam_widgets/resources/imagenet_classes.txt" in names
    assert not any(n.startswith(("tests/", "notebooks/", "benchmarks/")) for n in names)
    built = time.monotonic()

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], cwd=tmp_path)
    python = venv / "bin" / "python"
    # --no-compile: no .pyc for the 1.5 GB of torch and TensorFlow, a third of the time.
    _run([str(python), "-m", "pip", "install", "--quiet", "--no-compile",
          f"{wheels[0]}[torch,tensorflow]", "-c", str(CONSTRAINTS)], cwd=tmp_path)
    installed = time.monotonic()

    work = tmp_path / "work"  # neither the repository nor the environment
    work.mkdir()
    where = _run([str(python), "-c", "import gradcam_widgets; print(gradcam_widgets.__file__)"],
                 cwd=work).strip()
    assert Path(where).is_relative_to(venv), where
    _run([str(python), "-c", "import gradcam_widgets as gw; from PIL import Image; "
          "Image.fromarray(gw.data.sample_image('chelsea')).save('chelsea.png')"], cwd=work)
    width, height = Image.open(work / "chelsea.png").size

    top = {}
    for framework in ("torch", "keras"):
        out = work / f"{framework}.png"
        printed = _run([str(python), "-m", "gradcam_widgets", "chelsea.png", "--framework",
                        framework, "-o", out.name], cwd=work)
        print(f"$ python -m gradcam_widgets chelsea.png --framework {framework} -o {out.name}")
        print(printed)
        assert Image.open(out).size == (width, height)
        lines = printed.splitlines()
        assert lines[0] == f"top-5 classes (efficientnet_lite0, {framework}):", printed
        top[framework] = lines[1].split()[0]  # the first class's index
        assert any(cat in lines[1] for cat in CATS), printed
        assert f"Grad-CAM of class {top[framework]} " in printed
    assert top["torch"] == top["keras"], top  # the same network in two frameworks
    script = venv / "bin" / "gradcam-widgets"
    assert "Grad-CAM heatmap of a photo" in _run([str(script), "--help"], cwd=work)
    print(f"build {built - started:.0f} s, install {installed - built:.0f} s, "
          f"use {time.monotonic() - installed:.0f} s")


def test_repo2docker_builds_from_binder(tmp_path):
    if shutil.which("jupyter-repo2docker", path=str(Path(sys.executable).parent)) is None:
        pytest.skip("jupyter-repo2docker is not installed: pip install -e '.[dev]'")
    result = subprocess.run(
        [sys.executable, "-m", "repo2docker", "--no-build", "--no-run", "--debug", str(ROOT)],
        cwd=tmp_path, env=_clean_env(), capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    dockerfile = result.stdout + result.stderr
    assert "Building conda environment for python=3.11" in dockerfile
    assert 'env update -p ${NB_PYTHON_PREFIX} --file "binder/environment.yml"' in dockerfile
    assert "RUN ./binder/postBuild" in dockerfile
    # binder/ hides the root files: no root environment.yml, no pip install of pyproject.
    assert "src/environment.yml" not in dockerfile
    assert '--file "environment.yml"' not in dockerfile
    assert "pyproject.toml" not in dockerfile
