"""``python -m gradcam_widgets``: writes the overlay, prints the top-5, rejects bad input."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from models import CAT_CLASSES, lite0, photo
from PIL import Image

from gradcam_widgets import zoo
from gradcam_widgets.__main__ import main, parse_target
from gradcam_widgets.data import imagenet_class_names

FRAMEWORKS = ["torch", "keras"]


@pytest.fixture
def cat_jpeg(tmp_path):
    path = tmp_path / "chelsea.jpg"
    Image.fromarray(photo("chelsea")).save(path, quality=95)
    return path


@pytest.fixture
def cached_zoo(monkeypatch):
    """``zoo.load`` hands out the models loaded once for the whole test run."""
    pytest.importorskip("torch")
    pytest.importorskip("keras")

    def load(name, framework="torch"):
        assert name == "efficientnet_lite0"
        return lite0(framework)

    monkeypatch.setattr(zoo, "load", load)


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_writes_the_overlay_at_the_photos_size(cached_zoo, cat_jpeg, tmp_path, capsys, framework):
    out = tmp_path / "overlay.png"
    assert main([str(cat_jpeg), "--framework", framework, "-o", str(out)]) == 0
    with Image.open(out) as written:
        assert written.format == "PNG"
        assert written.size == (451, 300)
        assert written.mode == "RGB"
        overlay = np.asarray(written)
    assert np.abs(overlay.astype(int) - photo("chelsea")).mean() > 5  # a heatmap is drawn
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == f"top-5 classes (efficientnet_lite0, {framework}):"
    ranked = [int(line.split()[0]) for line in printed[1:6]]
    assert ranked[:3] == list(CAT_CLASSES)
    assert "Grad-CAM of class 285 (Egyptian cat) at layer 'head'" in printed[6]


def test_target_layer_and_alpha(cached_zoo, cat_jpeg, tmp_path, capsys):
    opaque, faint = tmp_path / "opaque.png", tmp_path / "faint.png"
    args = [str(cat_jpeg), "--target", "tabby", "--layer", "blocks.7"]
    assert main([*args, "--alpha", "1", "-o", str(opaque)]) == 0
    assert main([*args, "--alpha", "0.1", "-o", str(faint)]) == 0
    assert "class 281 (tabby) at layer 'blocks.7'" in capsys.readouterr().out
    cat = photo("chelsea").astype(int)
    opaque_change = np.abs(np.asarray(Image.open(opaque), dtype=int) - cat).mean()
    faint_change = np.abs(np.asarray(Image.open(faint), dtype=int) - cat).mean()
    assert opaque_change > 3 * faint_change


def test_method_contrast_and_evidence_reach_the_engine(cached_zoo, cat_jpeg, tmp_path, capsys):
    import gradcam_widgets as gw

    out = tmp_path / "out.png"
    args = [str(cat_jpeg), "--target", "tabby", "--contrast", "285", "--layer", "head"]
    assert main([*args, "--method", "hirescam", "--evidence", "against", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "HiResCAM of evidence against class 281 (tabby) rather than 285" in printed
    from gradcam_widgets.__main__ import read_image

    image = read_image(str(cat_jpeg))  # what the CLI read: the JPEG, not the original
    net = lite0("torch")
    expected = gw.gradcam(
        net.model, net.preprocess(image), 281, "head", method="hirescam", contrast=285,
        evidence="against",
    )[0]
    assert expected.any()
    picture = gw.overlay(image, expected, alpha=0.4)
    np.testing.assert_array_equal(np.asarray(Image.open(out)), picture)


def test_every_gradient_method_of_the_registry_is_offered(capsys):
    from gradcam_widgets.__main__ import gradient_methods
    from gradcam_widgets.methods import METHODS

    assert set(gradient_methods()) == {n for n, m in METHODS.items() if m.needs_gradients}
    with pytest.raises(SystemExit):
        main(["photo.jpg", "--method", "cam", "-o", "x.png"])
    assert "invalid choice: 'cam'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("285", 285),
        ("Egyptian cat", 285),
        ("egyptian_cat", 285),
        (" TIGER  cat ", 282),
        (None, None),
    ],
)
def test_parse_target(text, expected):
    assert parse_target(text, imagenet_class_names()) == expected


def one_error_line(capsys) -> str:
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("error: ")
    return lines[0]


def test_missing_file(tmp_path, capsys):
    assert main([str(tmp_path / "nope.jpg"), "-o", str(tmp_path / "out.png")]) == 2
    assert "no such file" in one_error_line(capsys)


def test_file_that_is_not_an_image(tmp_path, capsys):
    bogus = tmp_path / "notes.png"
    bogus.write_text("not a picture")
    assert main([str(bogus), "-o", str(tmp_path / "out.png")]) == 2
    assert "cannot read" in one_error_line(capsys)
    assert not (tmp_path / "out.png").exists()


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("egyptian kat", "unknown class name 'egyptian kat' (did you mean: egyptian cat"),
        ("crane", "ambiguous (classes 134, 517)"),
        ("1000", "out of range 0-999"),
        ("-1", "out of range"),
    ],
)
def test_bad_class(cat_jpeg, tmp_path, capsys, target, message):
    assert main([str(cat_jpeg), "--target", target, "-o", str(tmp_path / "out.png")]) == 2
    assert message in one_error_line(capsys)


def test_unknown_layer(cached_zoo, cat_jpeg, tmp_path, capsys):
    assert main([str(cat_jpeg), "--layer", "blocks.99", "-o", str(tmp_path / "out.png")]) == 2
    line = one_error_line(capsys)
    assert "unknown layer 'blocks.99'" in line
    assert "blocks.15, head" in line


def test_missing_output_directory(cat_jpeg, tmp_path, capsys):
    assert main([str(cat_jpeg), "-o", str(tmp_path / "no" / "out.png")]) == 2
    assert "no such directory" in one_error_line(capsys)


def test_alpha_out_of_range_is_a_usage_error(cat_jpeg, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([str(cat_jpeg), "--alpha", "1.5", "-o", str(tmp_path / "out.png")])
    assert exit_info.value.code == 2
    assert "--alpha: must be between 0 and 1" in capsys.readouterr().err


def test_python_dash_m_reports_a_missing_file_in_one_line(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "gradcam_widgets", str(tmp_path / "nope.png"), "-o", "x.png"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [f"error: no such file: {tmp_path / 'nope.png'}"]
    assert result.stdout == ""


OFFLINE_RUN = """
import runpy, socket, sys

def refuse(self, address):
    raise RuntimeError(f"tried to reach the network: {address!r}")

socket.socket.connect = refuse
sys.argv = ["gradcam_widgets", *sys.argv[1:]]
runpy.run_module("gradcam_widgets", run_name="__main__", alter_sys=True)
"""


def test_python_dash_m_end_to_end(cat_jpeg, tmp_path):
    """The real entry point in a fresh process, with the network cut off."""
    pytest.importorskip("torch")
    out = tmp_path / "overlay.png"
    result = subprocess.run(
        [sys.executable, "-c", OFFLINE_RUN, str(cat_jpeg), "-o", str(out)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "Egyptian cat" in result.stdout
    with Image.open(out) as written:
        assert written.size == (451, 300)
