"""What ``zoo.load("efficientnet_lite0")`` costs in each framework: time and memory.

Each framework is measured in a fresh Python process (one after the other, so they do
not share imports or caches):

- import: ``import torch`` or ``import keras`` (TensorFlow backend);
- load: ``zoo.load(...)``: build the network, read the state dict, convert it (Keras;
  reading the state dict imports torch there too);
- first Grad-CAM: preprocess the cat photo and one ``gw.gradcam`` call (for Keras this
  includes tracing the compiled step);
- peak RSS: the process's maximum resident memory after each step (``resource``),
  and the RSS at the end (psutil).

Run: ``.venv/bin/python benchmarks/zoo_load.py`` (a few seconds per framework).
Timings on a busy machine vary; run it on an otherwise idle one.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time

FRAMEWORKS = ("torch", "keras")


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def child(framework: str) -> dict[str, float]:
    import psutil

    figures: dict[str, float] = {"baseline_peak_mb": _peak_mb()}
    start = time.perf_counter()
    if framework == "torch":
        import torch  # noqa: F401
    else:
        import keras  # noqa: F401
    figures["import_s"] = time.perf_counter() - start
    figures["import_peak_mb"] = _peak_mb()

    import gradcam_widgets as gw
    from gradcam_widgets import zoo

    start = time.perf_counter()
    net = zoo.load("efficientnet_lite0", framework=framework)
    figures["load_s"] = time.perf_counter() - start
    figures["load_peak_mb"] = _peak_mb()

    photo = gw.data.sample_image("chelsea")
    start = time.perf_counter()
    gw.gradcam(net.model, net.preprocess(photo), layer=net.default_layer)
    figures["first_gradcam_s"] = time.perf_counter() - start
    figures["gradcam_peak_mb"] = _peak_mb()
    figures["final_rss_mb"] = psutil.Process().memory_info().rss / 2**20
    return figures


def main() -> None:
    rows = {}
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": "tensorflow"}
    for framework in FRAMEWORKS:
        result = subprocess.run(
            [sys.executable, __file__, "--child", framework],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        rows[framework] = json.loads(result.stdout.strip().splitlines()[-1])

    print("zoo.load('efficientnet_lite0'), each framework in a fresh process")
    header = (
        f"{'framework':<10}{'import s':>10}{'load s':>9}{'1st CAM s':>11}"
        f"{'peak MB: import':>17}{'load':>7}{'CAM':>7}{'RSS end MB':>12}"
    )
    print(header)
    for framework, f in rows.items():
        print(
            f"{framework:<10}{f['import_s']:>10.2f}{f['load_s']:>9.2f}"
            f"{f['first_gradcam_s']:>11.2f}{f['import_peak_mb']:>17.0f}"
            f"{f['load_peak_mb']:>7.0f}{f['gradcam_peak_mb']:>7.0f}{f['final_rss_mb']:>12.0f}"
        )
    baseline = rows["torch"]["baseline_peak_mb"]
    print(f"(the process peaked at {baseline:.0f} MB before importing a framework)")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        print(json.dumps(child(sys.argv[2])))
    else:
        main()
