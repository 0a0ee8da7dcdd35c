"""Wall time and peak kernel memory of each lesson, each in a fresh kernel.

Binder gives a session at most 2 GB, so every lesson must stay under 1.5 GB (torch-only
lessons under 1 GB). The kernel's resident memory (its process and any children) is
sampled every 50 ms while the notebook runs; afterwards the kernel reports which deep
learning frameworks it imported.

Run: ``.venv/bin/python benchmarks/notebook_memory.py [notebooks/NN_name.ipynb ...]``
(default: every lesson and solution notebook). Exits 1 if a lesson is over budget.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from pathlib import Path

import nbformat
import psutil
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
BUDGET_MB = 1536
TORCH_ONLY_BUDGET_MB = 1024
FRAMEWORKS_PROBE = (
    "import sys; print(','.join(m for m in ('torch', 'tensorflow') if m in sys.modules))"
)


def _tree_rss(process: psutil.Process) -> int:
    total = 0
    for member in [process, *process.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess):
            total += member.memory_info().rss
    return total


def run(path: Path) -> tuple[float, float, str]:
    """Execute ``path`` in a fresh kernel; return (seconds, peak MB, frameworks)."""
    notebook = nbformat.read(path, as_version=4)
    notebook.cells.append(nbformat.v4.new_code_cell(FRAMEWORKS_PROBE))
    client = NotebookClient(
        notebook, timeout=900, kernel_name="python3", resources={"metadata": {"path": path.parent}}
    )
    peak = 0
    done = threading.Event()

    def sample(pid: int) -> None:
        nonlocal peak
        process = psutil.Process(pid)
        while not done.is_set():
            try:
                peak = max(peak, _tree_rss(process))
            except psutil.NoSuchProcess:
                return
            time.sleep(0.05)

    start = time.perf_counter()
    with client.setup_kernel():
        pid = client.km.provisioner.process.pid
        sampler = threading.Thread(target=sample, args=(pid,), daemon=True)
        sampler.start()
        try:
            for index, cell in enumerate(notebook.cells):
                client.execute_cell(cell, index)
        finally:
            done.set()
            sampler.join()
    seconds = time.perf_counter() - start
    outputs = notebook.cells[-1].outputs
    frameworks = outputs[0].get("text", "").strip() if outputs else "?"
    return seconds, peak / 2**20, frameworks or "none"


def main(paths: list[str]) -> int:
    notebooks = [Path(p) for p in paths] or sorted((ROOT / "notebooks").rglob("[0-9]*.ipynb"))
    print(f"{'notebook':<52} {'time':>8} {'peak RSS':>10}  frameworks  budget")
    over = False
    for path in notebooks:
        if ".ipynb_checkpoints" in path.parts:
            continue
        seconds, peak_mb, frameworks = run(path)
        budget = TORCH_ONLY_BUDGET_MB if frameworks == "torch" else BUDGET_MB
        verdict = "OK" if peak_mb <= budget else "OVER"
        over |= verdict == "OVER"
        name = str(path.relative_to(ROOT)) if path.is_absolute() else str(path)
        print(
            f"{name:<52} {seconds:7.1f}s {peak_mb:8.0f} MB  {frameworks:<10}  "
            f"{verdict} (<= {budget} MB)",
            flush=True,
        )
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
