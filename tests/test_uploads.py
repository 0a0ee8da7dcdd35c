"""The learner's own photo: decoding an upload, clear messages, the upload Explorer."""

from __future__ import annotations

import datetime
import io
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from gradcam_widgets import uploads


def encode(array: np.ndarray, fmt: str = "PNG", mode: str | None = None) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array, mode=mode).save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.fixture
def photo():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(30, 40, 3), dtype=np.uint8)


def upload_value(data: bytes, name: str = "photo.png") -> tuple[dict, ...]:
    """What ipywidgets 8's FileUpload.value holds after one file is chosen."""
    return (
        {
            "name": name,
            "type": "image/png",
            "size": len(data),
            "content": memoryview(data),
            "last_modified": datetime.datetime(2024, 1, 1).astimezone(),
        },
    )


def test_png_and_jpeg_decode_to_rgb(photo):
    assert np.array_equal(uploads.image_from_bytes(encode(photo)), photo)
    jpeg = uploads.image_from_bytes(encode(photo, "JPEG"))
    assert jpeg.shape == (30, 40, 3) and jpeg.dtype == np.uint8
    assert np.abs(jpeg.astype(int) - photo.astype(int)).mean() < 60  # lossy, but the same picture


def test_grayscale_palette_and_transparency_become_rgb(photo):
    gray = uploads.image_from_bytes(encode(photo[..., 0]))
    assert gray.shape == (30, 40, 3) and np.array_equal(gray[..., 0], photo[..., 0])
    rgba = np.dstack([photo, np.zeros((30, 40), dtype=np.uint8)])  # fully transparent
    assert np.all(uploads.image_from_bytes(encode(rgba)) == 255)  # on white
    palette = Image.fromarray(photo).convert("P")
    buffer = io.BytesIO()
    palette.save(buffer, format="GIF")
    assert uploads.image_from_bytes(buffer.getvalue()).shape == (30, 40, 3)


def test_large_photos_are_shrunk_keeping_the_aspect_ratio():
    big = np.zeros((300, 600, 3), dtype=np.uint8)
    small = uploads.image_from_bytes(encode(big), max_side=100)
    assert small.shape == (50, 100, 3)


def test_a_file_that_is_not_an_image_gets_a_clear_message():
    with pytest.raises(uploads.UploadError, match="'notes.txt' is not an image.*JPEG, PNG"):
        uploads.image_from_bytes(b"Grad-CAM notes\n", name="'notes.txt'")
    with pytest.raises(uploads.UploadError, match="empty"):
        uploads.image_from_bytes(b"")


def test_a_truncated_image_gets_a_clear_message(photo):
    data = encode(photo, "JPEG")
    with pytest.raises(uploads.UploadError, match="could not be decoded.*damaged"):
        uploads.image_from_bytes(data[: len(data) // 2])


def test_image_from_upload_reads_ipywidgets_7_and_8_values(photo):
    data = encode(photo)
    assert np.array_equal(uploads.image_from_upload(upload_value(data)), photo)
    old_style = {"photo.png": {"metadata": {"name": "photo.png"}, "content": data}}
    assert np.array_equal(uploads.image_from_upload(old_style), photo)
    two = upload_value(b"junk", "a.txt") + upload_value(data, "b.png")
    assert np.array_equal(uploads.image_from_upload(two), photo)  # the last file
    with pytest.raises(uploads.UploadError, match="no file uploaded yet"):
        uploads.image_from_upload(())
    with pytest.raises(uploads.UploadError, match="FileUpload"):
        uploads.image_from_upload(42)


def test_read_upload_never_raises(photo):
    image, message = uploads.read_upload(upload_value(encode(photo)))
    assert np.array_equal(image, photo) and message == ""
    image, message = uploads.read_upload(upload_value(b"%PDF-1.4 ...", "paper.pdf"))
    assert image is None and "'paper.pdf' is not an image" in message
    assert uploads.read_upload(None) == (
        None,
        "no file uploaded yet: click the upload button and choose a photo.",
    )


@pytest.fixture
def bundle():
    torch = pytest.importorskip("torch")
    from torch import nn

    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(4, 4, 3, padding=1, stride=2),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, 3),
    ).eval()

    def preprocess(image):
        resized = np.asarray(Image.fromarray(image).resize((16, 16)), dtype=np.float32) / 255.0
        return resized.transpose(2, 0, 1)[None]

    return SimpleNamespace(
        model=model, preprocess=preprocess, class_names=["a", "b", "c"], layers=["1", "3"]
    )


def test_upload_explorer_explains_an_uploaded_photo(bundle, photo):
    box = uploads.UploadExplorer(bundle, top_k=2)
    assert box.explorer is None and "Choose a photo" in box.message.value
    box.upload.value = upload_value(encode(photo))
    assert box.explorer is not None
    assert np.array_equal(box.image, photo)
    assert box.explorer.layers == ["1", "3"]
    assert box.explorer.view.value  # a PNG is showing
    assert "40 x 30 pixels" in box.message.value


def test_upload_explorer_keeps_the_last_photo_when_a_bad_file_comes(bundle, photo):
    box = uploads.UploadExplorer(bundle)
    box.upload.value = upload_value(encode(photo))
    first = box.explorer
    box.upload.value = upload_value(b"hello", "notes.txt")
    assert box.explorer is first
    assert "is not an image" in box.message.value and "#b3261e" in box.message.value
