"""The learner's own photo: decoding an upload, clear messages, the upload Explorer."""

from __future__ import annotations

import io

import numpy as np
import pytest
from helpers import encode, upload_value
from models import torch_bundle
from PIL import Image

from gradcam_widgets import uploads


@pytest.fixture
def photo():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(30, 40, 3), dtype=np.uint8)


def test_png_and_jpeg_decode_to_rgb(photo):
    assert np.array_equal(uploads.image_from_bytes(encode(photo)), photo)
    jpeg = uploads.image_from_bytes(encode(photo, "JPEG"))
    assert jpeg.shape == (30, 40, 3)
    assert jpeg.dtype == np.uint8
    assert np.abs(jpeg.astype(int) - photo.astype(int)).mean() < 60  # lossy, but the same picture


def test_grayscale_palette_and_transparency_become_rgb(photo):
    gray = uploads.image_from_bytes(encode(photo[..., 0]))
    assert gray.shape == (30, 40, 3)
    assert np.array_equal(gray[..., 0], photo[..., 0])
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
    with pytest.raises(uploads.UploadError, match=r"'notes\.txt' is not an image.*JPEG, PNG"):
        uploads.image_from_bytes(b"Grad-CAM notes\n", name="'notes.txt'")
    with pytest.raises(uploads.UploadError, match="empty"):
        uploads.image_from_bytes(b"")


def test_a_truncated_image_gets_a_clear_message(photo):
    data = encode(photo, "JPEG")
    with pytest.raises(uploads.UploadError, match=r"could not be decoded.*damaged"):
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
    assert np.array_equal(image, photo)
    assert message == ""
    image, message = uploads.read_upload(upload_value(b"%PDF-1.4 ...", "paper.pdf"))
    assert image is None
    assert "'paper.pdf' is not an image" in message
    assert uploads.read_upload(None) == (
        None,
        "no file uploaded yet: click the upload button and choose a photo.",
    )


@pytest.fixture(scope="module")
def bundle():
    return torch_bundle()


def test_upload_explorer_explains_an_uploaded_photo(bundle, photo):
    box = uploads.UploadExplorer(bundle, top_k=2)
    assert box.explorer is None
    assert "Choose a photo" in box.message.value
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
    assert "is not an image" in box.message.value
    assert "#b3261e" in box.message.value
