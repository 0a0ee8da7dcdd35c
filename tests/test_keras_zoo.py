"""The Keras zoo model without torch, and the restricted checkpoint reader it uses."""

from __future__ import annotations

import io
import os
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from gradcam_widgets.zoo.torch_weights import read_state_dict

ROOT = Path(__file__).resolve().parents[1]

# A sitecustomize that makes ``import torch`` fail, as on a machine without it.
BLOCK_TORCH = '''
import sys

class _NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is blocked for this test")
        return None

sys.meta_path.insert(0, _NoTorch())
'''

# In the subprocess: load the zoo's Keras model and save its logits on a fixed batch.
CHILD = '''
import sys
import numpy as np
try:
    import torch  # noqa: F401
    sys.exit("torch imported although it is blocked")
except ImportError:
    pass
import gradcam_widgets as gw
net = gw.zoo.load("efficientnet_lite0", framework="keras")
x = np.random.default_rng(0).uniform(-1, 1, size=(2, 224, 224, 3)).astype(np.float32)
logits = gw.predict(net.model, x)
heat = gw.gradcam(net.model, x, [1, 2], net.default_layer)
assert "torch" not in sys.modules
np.savez(sys.argv[1], logits=logits, heat=heat)
'''


@pytest.mark.slow
def test_keras_zoo_model_loads_without_torch(tmp_path):
    keras = pytest.importorskip("keras")
    torch = pytest.importorskip("torch")
    from gradcam_widgets.zoo import efficientnet_lite
    from gradcam_widgets.zoo.efficientnet_lite_keras import build, set_torch_weights

    (tmp_path / "sitecustomize.py").write_text(BLOCK_TORCH)
    (tmp_path / "child.py").write_text(CHILD)
    out = tmp_path / "out.npz"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)]),
        "KERAS_BACKEND": "tensorflow",
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }
    run = subprocess.run(
        [sys.executable, str(tmp_path / "child.py"), str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    # The same network given torch.load's weights, here where torch is available.
    model, sources = build()
    weights = {k: v.numpy() for k, v in efficientnet_lite.state_dict().items() if v.ndim > 0}
    set_torch_weights(model, sources, weights)
    x = np.random.default_rng(0).uniform(-1, 1, size=(2, 224, 224, 3)).astype(np.float32)
    expected = keras.ops.convert_to_numpy(model(x, training=False))
    with np.load(out) as child:
        np.testing.assert_allclose(child["logits"], expected, rtol=1e-5, atol=1e-5)
        assert child["heat"].shape == (2, 7, 7)
        assert np.any(child["heat"] > 0)
    assert torch.is_tensor(torch.zeros(1))  # torch itself was untouched here


def test_reader_equals_torch_load_on_the_shipped_checkpoint():
    torch = pytest.importorskip("torch")
    from gradcam_widgets.zoo.efficientnet_lite import weights_path

    path = weights_path()
    assert not zipfile.is_zipfile(path)  # the legacy format
    ours = read_state_dict(path)
    theirs = torch.load(path, map_location="cpu", weights_only=True)
    assert list(ours) == list(theirs)
    for key, value in theirs.items():
        assert ours[key].dtype == value.numpy().dtype, key
        np.testing.assert_array_equal(ours[key], value.numpy(), err_msg=key)


def test_reader_equals_torch_load_on_the_zip_format(tmp_path):
    torch = pytest.importorskip("torch")
    generator = torch.Generator().manual_seed(0)
    base = torch.randn(10, generator=generator)
    state = {
        "float": torch.randn(3, 4, generator=generator),
        "transposed": torch.randn(4, 5, generator=generator).t(),  # strides (1, 5)
        "slice": base[2:7],  # an offset into a shared storage
        "same_storage": base,
        "half": torch.randn(2, 3, generator=generator).half(),
        "bfloat16": torch.randn(5, generator=generator).bfloat16(),
        "long": torch.arange(6).view(2, 3),
        "bool": torch.tensor([True, False]),
        "empty": torch.zeros(0, 3),
        "scalar": torch.tensor(3.5),
        "parameter": torch.nn.Parameter(torch.ones(2)),
    }
    path = tmp_path / "state.pt"
    torch.save(state, path)
    assert zipfile.is_zipfile(path)
    ours = read_state_dict(path)
    assert list(ours) == list(state)
    for key, value in state.items():
        value = value.detach()
        expected = value.float().numpy() if value.dtype == torch.bfloat16 else value.numpy()
        assert ours[key].shape == expected.shape, key
        np.testing.assert_array_equal(ours[key], expected, err_msg=key)


class _Payload:
    """Unpickled by general pickle, this would create a file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _legacy_file(structure_bytes: bytes) -> bytes:
    buffer = io.BytesIO()
    for header in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}):
        pickle.dump(header, buffer, protocol=2)
    buffer.write(structure_bytes)
    pickle.dump([], buffer, protocol=2)
    return buffer.getvalue()


def test_reader_runs_no_code_from_a_malicious_checkpoint(tmp_path):
    marker = tmp_path / "marker"
    payload = pickle.dumps({"weight": _Payload(marker)})
    zipped = tmp_path / "evil_zip.pt"
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.writestr("evil/data.pkl", payload)
    legacy = tmp_path / "evil_legacy.pth"
    legacy.write_bytes(_legacy_file(payload))
    for path in (zipped, legacy):
        with pytest.raises(pickle.UnpicklingError, match="refusing pathlib"):
            read_state_dict(path)
    assert not marker.exists()
    # The same bytes do run code under general pickle: the test's payload is real.
    pickle.loads(payload)
    assert marker.exists()


def test_reader_refuses_what_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "numbers.pth"
    path.write_bytes(pickle.dumps([1, 2, 3]))
    with pytest.raises(ValueError, match="not a PyTorch checkpoint"):
        read_state_dict(path)
