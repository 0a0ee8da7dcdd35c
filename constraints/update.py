"""Rewrite constraints/linux-cpu.txt: pip's resolution of the project's extras, pinned.

Usage (from the repository's root, with any Python 3.11+ that has pip)::

    python constraints/update.py [--keep constraints/linux-cpu.txt]

pip resolves ``.[torch,tensorflow,lab,dev]`` without installing anything (``--dry-run
--report``) and every package it would install is written as ``name==version``. The
PyTorch pin is held at :data:`TORCH` while resolving: on this project's Linux machines
that release is a CPU build, and a looser spec pulls a CUDA build of several GB.
``--keep FILE`` holds the versions already in FILE too (to add a new package's pin
without upgrading the rest). Then run ``make test`` before committing the file.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "constraints" / "linux-cpu.txt"
TORCH = "torch==2.13.0"
EXTRAS = ".[torch,tensorflow,lab,dev]"
HEADER = f"""\
# The tested versions of every package that `pip install -e '{EXTRAS}'` installs,
# for Linux on x86_64 CPUs with Python 3.11. `make venv` and CI install with
# `-c constraints/linux-cpu.txt`; a lab machine gets the learner's set, reproducibly, with
#     pip install '.[torch,tensorflow,lab]' -c constraints/linux-cpu.txt
# {TORCH}: on this project's machines that exact release is a CPU build; a looser spec
# pulls a CUDA build of several GB. Regenerate with `python constraints/update.py`.
"""


def _pins(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if re.match(r"^[A-Za-z0-9]", line)]


def resolve(keep: Path | None) -> list[str]:
    """``name==version`` for every package pip would install, sorted by name."""
    with tempfile.TemporaryDirectory() as tmp:
        hold = Path(tmp) / "hold.txt"
        pins = [TORCH] + ([p for p in _pins(keep.read_text()) if not p.startswith("torch==")]
                          if keep else [])
        hold.write_text("\n".join(pins) + "\n")
        report = Path(tmp) / "report.json"
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed",
             "--quiet", "--report", str(report), "-c", str(hold), "-e", EXTRAS],
            cwd=ROOT, check=True,
        )
        installs = json.loads(report.read_text())["install"]
    lines = {}
    for item in installs:
        name = item["metadata"]["name"].lower().replace("_", "-")
        if name == "gradcam-widgets":
            continue
        # A local build label (2.13.0+cpu) exists only where that file lies on disk.
        lines[name] = f"{name}=={item['metadata']['version'].split('+')[0]}"
    return [lines[name] for name in sorted(lines)]


def main() -> None:
    """Resolve and write the constraints file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="hold the versions pinned in this file")
    args = parser.parse_args()
    pins = resolve(args.keep)
    TARGET.write_text(HEADER + "\n".join(pins) + "\n")
    print(f"wrote {len(pins)} pins to {TARGET.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
