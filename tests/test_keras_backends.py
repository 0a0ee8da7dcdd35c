"""Keras 3 on TensorFlow, JAX and PyTorch: the same model gives the same maps.

Each backend runs in its own process (Keras picks its backend once, at import), on one
set of saved weights; the maps are compared with each other and with an independent
computation here: an explicit sub-model and GradientTape, and the methods' formulas
written out in numpy.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

sys.path.insert(0, str(Path(__file__).resolve().parent))
import keras_archs  # noqa: E402
import keras_backend_worker as worker  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BACKENDS = ["tensorflow", "jax", "torch"]
MODULE_OF = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict[str, dict[str, np.ndarray]]:
    """Every backend's results (those whose framework is installed)."""
    tmp = tmp_path_factory.mktemp("keras_backends")
    weights = tmp / "model.weights.h5"
    worker.build_model().save_weights(weights)
    keras_archs.tiny_vit().save_weights(worker.vit_weights(str(weights)))
    found = {}
    for backend in BACKENDS:
        if importlib.util.find_spec(MODULE_OF[backend]) is None:
            continue
        out = tmp / f"{backend}.npz"
        env = {
            **os.environ,
            "KERAS_BACKEND": backend,
            "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
            "TF_CPP_MIN_LOG_LEVEL": "3",
        }
        run = subprocess.run(
            [sys.executable, str(Path(worker.__file__)), str(weights), str(out)],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert run.returncode == 0, f"{backend}:\n{run.stderr[-3000:]}"
        with np.load(out) as data:
            found[backend] = {key: data[key] for key in data.files}
    return found


def test_each_backend_ran_on_its_own_backend(results):
    assert {"tensorflow", "jax", "torch"} <= set(results) | {
        b for b in BACKENDS if importlib.util.find_spec(MODULE_OF[b]) is None
    }
    for backend, arrays in results.items():
        assert str(arrays["backend"]) == backend


def _scaled_close(a: np.ndarray, b: np.ndarray, what: str) -> None:
    scale = max(float(np.abs(b).max()), 1e-12)
    np.testing.assert_allclose(a / scale, b / scale, atol=2e-5, err_msg=what)


def test_same_maps_on_every_backend(results):
    reference = results["tensorflow"]
    map_keys = [k for k in reference if k.count("/") >= 3 and not k.startswith("vit/")]
    map_keys += ["logits", "cam"]
    assert len(map_keys) == 3 * 2 * 2 * len(worker.LAYERS) + 2
    assert any(np.any(reference[k] > 0) for k in map_keys)
    for backend, arrays in results.items():
        for key in map_keys:
            assert arrays[key].dtype == np.float32, (backend, key)
            _scaled_close(arrays[key], reference[key], f"{backend} {key}")


def test_a_new_class_never_retraces(results):
    for backend in ("tensorflow", "jax"):
        if backend in results:
            np.testing.assert_array_equal(results[backend]["traces"], [1])


def test_missing_gradient_is_refused_on_every_backend(results):
    for backend, arrays in results.items():
        assert "no gradient reached the output of ['unused']" in str(arrays["missing_error"]), (
            backend
        )
        assert arrays["used"].shape == (3, 8, 8)
        assert np.all(np.isfinite(arrays["used"]))


# ------------------------------------------------------------------ independent computation


def _tape(layer_of, classes, contrast=None):
    """Activations and gradients by hand: a sub-model exposing the map, and a tape.

    ``layer_of`` is a function of the model returning the tensor to explain, so that the
    raw ``h + 0.5`` feeding the pooling layer is reachable (the ``gap`` layer's input).
    """
    model = worker.build_model()
    x = worker.inputs()
    feature = layer_of(model)
    # The softmax's input: the dense layer's pre-activation, rebuilt from its weights.
    dense = model.get_layer("dense")
    pooled = model.get_layer("gap").output
    sub = keras.Model(model.inputs[0], feature)
    head = keras.Model(feature, pooled)
    with tf.GradientTape() as tape:
        maps = sub(x)
        tape.watch(maps)
        logits = tf.matmul(head(maps), dense.kernel) + dense.bias
        picked = tf.gather(logits, classes, axis=1, batch_dims=1)
        if contrast is not None:
            picked -= tf.gather(logits, contrast, axis=1, batch_dims=1)
    grads = tape.gradient(picked, maps).numpy().transpose(0, 3, 1, 2)
    return maps.numpy().transpose(0, 3, 1, 2), grads, logits.numpy()


def _formulas(a, g):
    gradcam = np.einsum("nk,nkhw->nhw", g.mean(axis=(2, 3)), a)
    g2, g3 = g**2, g**3
    denom = 2 * g2 + a.sum(axis=(2, 3), keepdims=True) * g3
    alpha = np.where(denom != 0, g2 / np.where(denom != 0, denom, 1), 0)
    plus = np.einsum("nk,nkhw->nhw", (alpha * np.maximum(g, 0)).sum(axis=(2, 3)), a)
    hires = (g * a).sum(axis=1)
    return {"gradcam": gradcam, "gradcam++": plus, "hirescam": hires}


@pytest.mark.parametrize("layer", ["bn", "gap:input"])
def test_maps_equal_an_independent_tape(results, layer):
    if layer == "gap:input":
        layer_of = lambda m: m.get_layer("gap").input  # noqa: E731
    else:
        layer_of = lambda m: m.get_layer(layer).output  # noqa: E731
    reference = results["tensorflow"]
    top = reference["logits"].argmax(axis=1)
    for index, (target, contrast) in enumerate(zip(worker.TARGETS, worker.CONTRASTS)):
        classes = top if target is None else np.array(target)
        against = None if contrast is None else np.full(3, contrast)
        a, g, logits = _tape(layer_of, classes, against)
        np.testing.assert_allclose(logits, reference["logits"], rtol=1e-5, atol=1e-5)
        for method, signed in _formulas(a, g).items():
            for evidence, sign in (("for", 1), ("against", -1)):
                expected = np.maximum(sign * signed, 0)
                for backend, arrays in results.items():
                    _scaled_close(
                        arrays[f"{method}/{evidence}/{index}/{layer}"],
                        expected,
                        f"{backend} {method} {evidence} {index} {layer}",
                    )


def test_cam_at_the_pooled_input_equals_the_dense_weights_formula(results):
    a, _, _ = _tape(lambda m: m.get_layer("gap").input, np.zeros(3, int))
    kernel = worker.build_model().get_layer("dense").kernel.numpy()  # (K, classes)
    expected = np.einsum("nk,nkhw->nhw", kernel[:, [1, 2, 3]].T, a)
    for backend, arrays in results.items():
        _scaled_close(arrays["cam"], expected, backend)


def test_vit_layouts_are_the_same_on_every_backend(results):
    reference = results["tensorflow"]
    assert list(reference["vit/candidates"]) == ["patch", *keras_archs.TOKEN_LAYERS]
    assert str(reference["vit/default"]) == "attend1"
    for backend, arrays in results.items():
        assert list(arrays["vit/candidates"]) == list(reference["vit/candidates"]), backend
        assert str(arrays["vit/default"]) == "attend1", backend
        assert "attention internals" in str(arrays["vit/scores_error"]), backend
        for name in worker.VIT_LAYERS:
            assert arrays[f"vit/{name}"].shape == (3, keras_archs.GRID, keras_archs.GRID)
            _scaled_close(arrays[f"vit/{name}"], reference[f"vit/{name}"], f"{backend} {name}")


def test_vit_token_maps_equal_an_independent_tape(results):
    model = keras_archs.tiny_vit()
    x = worker.vit_inputs()
    classes = np.array(worker.VIT_TARGETS)
    outputs = [model.get_layer(name).output for name in worker.VIT_LAYERS]
    probe = keras.Model(model.inputs[0], [*outputs, model.output])
    with tf.GradientTape() as tape:
        *features, logits = probe(x, training=False)
        score = tf.reduce_sum(tf.gather(logits, classes, axis=1, batch_dims=1))
    grads = tape.gradient(score, features)
    grid = keras_archs.GRID
    for name, a, g in zip(worker.VIT_LAYERS, features, grads, strict=True):
        prefix = a.shape[1] - grid * grid  # the class token, dropped
        a = a.numpy()[:, prefix:].reshape(3, grid, grid, -1)
        g = g.numpy()[:, prefix:].reshape(3, grid, grid, -1)
        expected = np.maximum(np.einsum("nc,nhwc->nhw", g.mean(axis=(1, 2)), a), 0)
        assert np.any(expected > 0), name
        for backend, arrays in results.items():
            _scaled_close(arrays[f"vit/{name}"], expected, f"{backend} {name}")


def test_receptive_fields_measured_on_every_backend(results):
    # c1: 3; p1: 3 + 1 = 4 (jump 2); c2, dilated 3 -> 5: 4 + 4 * 2 = 12.
    for backend, arrays in results.items():
        assert list(arrays["rf/names"]) == ["c1", "p1", "c2"], backend
        assert list(arrays["rf/sizes"]) == [3, 4, 12], backend
        assert arrays["rf/measured"].tolist() == [[3, 3], [4, 4], [12, 12]], backend
        # The ViT's centre token: its own 8x8 patch before attention, the image after.
        assert arrays["rf/vit"].tolist() == [[8, 8], [32, 32]], backend
