"""Keras engine speed: on TensorFlow beside tf-keras-vis and the eager tape, then the
same model on Keras's three backends side by side.

Model: ``keras.applications.ResNet50(weights=None)`` (random weights: nothing downloads),
batch 8, 224 px, CPU, warm (each contender runs twice before timing).
Run: ``.venv/bin/python benchmarks/engine_keras.py`` (tf-keras-vis is used when installed:
``pip install tf-keras-vis``). The backends section runs one process per
``KERAS_BACKEND`` (tensorflow, jax, torch; those installed) on one set of saved weights,
prints each one's first call and warm call, and checks that their maps agree.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import measure, report

import gradcam_widgets as gw

BATCH, SIZE, LAYER = 8, 224, "conv5_block3_out"


def main() -> None:
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(2)
    keras.utils.set_random_seed(0)
    # Logits out, so that the eager recipe and the engine differentiate the same score.
    model = keras.applications.ResNet50(weights=None, classifier_activation=None)
    x = np.random.default_rng(0).normal(size=(BATCH, SIZE, SIZE, 3)).astype(np.float32)
    targets = list(range(BATCH))

    # The Keras example's recipe: a sub-model and an eager GradientTape.
    sub = keras.Model(model.inputs[0], [model.get_layer(LAYER).output, model.output])

    def eager_tape():
        with tf.GradientTape() as tape:
            feature_maps, scores = sub(x)
            picked = tf.gather(scores, targets, axis=1, batch_dims=1)
        grads = tape.gradient(picked, feature_maps)
        weights = tf.reduce_mean(grads, axis=(1, 2))
        return tf.nn.relu(tf.einsum("nk,nhwk->nhw", weights, feature_maps)).numpy()

    contenders = {
        "gradcam_widgets (compiled, cached)": lambda: gw.gradcam(model, x, targets, LAYER),
        "Keras example: eager GradientTape": eager_tape,
    }
    try:
        from tf_keras_vis.gradcam import Gradcam
        from tf_keras_vis.utils.scores import CategoricalScore

        visualizer = Gradcam(model, model_modifier=None, clone=True)
        score = CategoricalScore(targets)
        contenders["tf-keras-vis Gradcam"] = lambda: visualizer(
            score, x, penultimate_layer=LAYER, expand_cam=False, normalize_cam=False
        )
    except ImportError as error:
        print(f"tf-keras-vis not available ({error}); skipping it")

    ours = gw.gradcam(model, x, targets, LAYER)
    reference = eager_tape()
    np.testing.assert_allclose(ours, reference, rtol=1e-3, atol=1e-5 * float(reference.max()))

    medians = measure(contenders, rounds=5)
    rows = [
        (
            "engine / eager tape",
            "gradcam_widgets (compiled, cached)",
            "Keras example: eager GradientTape",
            0.4,
        )
    ]
    if "tf-keras-vis Gradcam" in medians:
        rows.append(
            (
                "engine / tf-keras-vis",
                "gradcam_widgets (compiled, cached)",
                "tf-keras-vis Gradcam",
                0.4,
            )
        )
    ok = report(f"Keras, ResNet50 shape, batch {BATCH}, {SIZE} px, warm", medians, rows)
    print("\nall targets met" if ok else "\nsome targets missed")
    backends_side_by_side(model)


def backends_side_by_side(model: keras.Model) -> None:
    """The same weights on every installed Keras backend, one process each."""
    with tempfile.TemporaryDirectory() as tmp:
        weights = Path(tmp) / "resnet50.weights.h5"
        model.save_weights(weights)
        rows = {}
        for backend in ("tensorflow", "jax", "torch"):
            if importlib.util.find_spec(backend) is None:
                continue
            out = Path(tmp) / f"{backend}.npz"
            env = {**os.environ, "KERAS_BACKEND": backend, "GW_BENCH_CHILD": "1"}
            run = subprocess.run(
                [sys.executable, __file__, str(weights), str(out)],
                env=env,
                capture_output=True,
                text=True,
            )
            if run.returncode != 0:
                print(f"{backend}: failed\n{run.stderr[-2000:]}")
                continue
            rows[backend] = json.loads(run.stdout.strip().splitlines()[-1])
            assert rows[backend]["backend"] == backend
            rows[backend]["maps"] = np.load(out)["maps"]
    print(f"\n== Keras backends side by side: ResNet50, batch {BATCH}, {SIZE} px, layer {LAYER}")
    print(f"  {'backend':<12} {'first call':>12} {'warm':>10} {'max map difference':>20}")
    reference = rows.get("tensorflow", next(iter(rows.values()), None))
    for backend, row in rows.items():
        scale = float(np.abs(reference["maps"]).max())
        diff = float(np.abs(row["maps"] - reference["maps"]).max()) / scale
        print(
            f"  {backend:<12} {row['first']:10.2f} s {row['warm'] * 1000:8.1f} ms "
            f"{diff:18.1e}"
        )


def child(weights: str, out: str) -> None:
    """One backend: the first call (compilation included) and the warm median."""
    model = keras.applications.ResNet50(weights=None, classifier_activation=None)
    model.load_weights(weights)
    x = np.random.default_rng(0).normal(size=(BATCH, SIZE, SIZE, 3)).astype(np.float32)
    targets = list(range(BATCH))
    gw.candidate_layers(model)  # the layer description, outside the timing
    start = time.perf_counter()
    maps = gw.gradcam(model, x, targets, LAYER)
    first = time.perf_counter() - start
    medians = measure({"warm": lambda: gw.gradcam(model, x, targets, LAYER)}, rounds=5)
    np.savez(out, maps=maps)
    print(json.dumps({"first": first, "warm": medians["warm"], "backend": keras.backend.backend()}))


if __name__ == "__main__":
    if os.environ.get("GW_BENCH_CHILD"):
        child(sys.argv[1], sys.argv[2])
    else:
        main()
