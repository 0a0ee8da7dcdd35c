"""The learner's own photo: read an ``ipywidgets.FileUpload`` and explore it (lesson 04).

:func:`image_from_bytes` turns a file's bytes into an RGB array, with a message a
beginner can act on when the file is not an image; :func:`read_upload` does the same for
a ``FileUpload``'s value and never raises; :class:`UploadExplorer` puts an upload button
above a :class:`~gradcam_widgets.Explorer` for a pretrained zoo model, so a photo chosen
on the learner's computer is explained without writing any code.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import ipywidgets as widgets
import numpy as np
from PIL import Image, UnidentifiedImageError

__all__ = ["UploadError", "UploadExplorer", "image_from_bytes", "image_from_upload", "read_upload"]

#: Larger photos are shrunk (keeping the aspect ratio) so that they display quickly.
MAX_SIDE = 1024


class UploadError(ValueError):
    """An uploaded file cannot be used as a photo; the message says why and what to do."""


def image_from_bytes(data: bytes, name: str = "the file", max_side: int = MAX_SIDE) -> np.ndarray:
    """Decode an image file's bytes into a uint8 RGB array.

    Any format Pillow reads is accepted (JPEG, PNG, GIF, BMP, WebP, TIFF...); the first
    frame of an animation is used, transparency is dropped (on white), grayscale and
    palette images become RGB, and a photo larger than ``max_side`` pixels on its longer
    side is shrunk to it.

    Args:
        data: the file's contents.
        name: the file's name, quoted in error messages.
        max_side: the longest side kept, in pixels.

    Returns:
        uint8 ``(H, W, 3)``.

    Raises:
        UploadError: the bytes are empty, not an image, or a broken image.
    """
    raw = bytes(data)
    if not raw:
        raise UploadError(f"{name} is empty (0 bytes): choose a photo file such as a JPEG or PNG.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            picture: Image.Image = Image.open(io.BytesIO(raw))
            picture.load()
    except Image.DecompressionBombError:
        raise UploadError(
            f"{name} has too many pixels to open safely: shrink it to a few thousand pixels "
            "a side first."
        ) from None
    except UnidentifiedImageError:
        raise UploadError(
            f"{name} is not an image that can be read (it may be a document, a text or a "
            "video file). Choose a photo file: JPEG, PNG, GIF, BMP, WebP or TIFF."
        ) from None
    except (OSError, SyntaxError, ValueError) as error:
        raise UploadError(
            f"{name} looks like an image but could not be decoded ({error}). The file may be "
            "truncated or damaged: save it again or choose another photo."
        ) from None
    if picture.mode in ("RGBA", "LA", "PA") or (
        picture.mode == "P" and "transparency" in picture.info
    ):
        rgba = picture.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        picture = Image.alpha_composite(background, rgba)
    picture = picture.convert("RGB")
    if max(picture.size) > max_side:
        picture.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return np.asarray(picture, dtype=np.uint8).copy()


def _files(value: Any) -> list[Mapping[str, Any]]:
    """The uploaded files of a ``FileUpload.value``, as a list of dicts.

    ipywidgets 8 holds a tuple of dicts; ipywidgets 7 a dict of dicts keyed by file name.
    """
    if value is None:
        return []
    if isinstance(value, Mapping):
        files: list[Mapping[str, Any]] = []
        for name, entry in value.items():
            item = dict(entry)
            item.setdefault("name", name)
            if "content" not in item and "data" in item:
                item["content"] = item["data"]
            files.append(item)
        return files
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        return [dict(item) for item in value]
    raise UploadError(
        f"expected the value of an ipywidgets.FileUpload, got a {type(value).__name__}."
    )


def image_from_upload(value: Any, max_side: int = MAX_SIDE) -> np.ndarray:
    """The photo in a ``FileUpload``'s value, as uint8 RGB (the last file, if several).

    Args:
        value: ``upload.value`` of an ``ipywidgets.FileUpload``.
        max_side: the longest side kept, in pixels.

    Returns:
        uint8 ``(H, W, 3)``.

    Raises:
        UploadError: nothing was uploaded yet, or the file is not a usable image.
    """
    files = _files(value)
    if not files:
        raise UploadError("no file uploaded yet: click the upload button and choose a photo.")
    last = files[-1]
    name = repr(str(last.get("name", "the file")))
    content = last.get("content")
    if content is None:
        raise UploadError(f"the upload of {name} holds no content: try uploading it again.")
    return image_from_bytes(content, name=name, max_side=max_side)


def read_upload(value: Any, max_side: int = MAX_SIDE) -> tuple[np.ndarray | None, str]:
    """Like :func:`image_from_upload`, but never raises: ``(image, "")`` or ``(None, why)``.

    Args:
        value: ``upload.value`` of an ``ipywidgets.FileUpload``.
        max_side: the longest side kept, in pixels.

    Returns:
        the image and an empty message, or ``None`` and a message for the learner.
    """
    try:
        return image_from_upload(value, max_side=max_side), ""
    except UploadError as error:
        return None, str(error)


class UploadExplorer(widgets.VBox):
    """An upload button above an Explorer of the uploaded photo.

    Choose a photo and the pretrained model classifies it; the Explorer below shows its
    Grad-CAM maps, for the model's layers and classes. A file that is not an image gets
    a message instead, and the previous Explorer (if any) stays.

    Attributes:
        upload: the ``ipywidgets.FileUpload`` (one image file at a time).
        message: ``HTML`` with what happened: the file's name and size, or what went wrong.
        explorer: the current :class:`~gradcam_widgets.Explorer`, or ``None`` before the
            first photo.
        image: the current photo, uint8 RGB, or ``None``.

    Args:
        bundle: a model from :func:`gradcam_widgets.zoo.load` (it provides ``model``,
            ``preprocess``, ``class_names`` and ``layers``).
        top_k: how many top predictions head the Explorer's class list.
    """

    def __init__(self, bundle: Any, top_k: int = 5) -> None:
        self._bundle = bundle
        self._top_k = top_k
        self.explorer: Any = None
        self.image: np.ndarray | None = None
        self.upload = widgets.FileUpload(accept="image/*", multiple=False, description="photo")
        self.message = widgets.HTML(
            "Choose a photo from your computer (JPEG, PNG, ...); the maps appear below."
        )
        self._slot = widgets.VBox()
        self.upload.observe(self._on_upload, names="value")
        super().__init__(children=[widgets.HBox([self.upload, self.message]), self._slot])

    def _on_upload(self, change: Mapping[str, Any]) -> None:
        image, problem = read_upload(change["new"])
        if image is None:
            if _files(change["new"]):
                self.message.value = _html(problem, colour="#b3261e")
            return
        from .explorer import Explorer

        self.image = image
        self.explorer = Explorer(
            self._bundle.model,
            self._bundle.preprocess(image),
            image=image,
            class_names=self._bundle.class_names,
            layers=self._bundle.layers,
            top_k=self._top_k,
        )
        self._slot.children = [self.explorer]
        best = self.explorer.top_classes[0]
        self.message.value = _html(
            f"{image.shape[1]} x {image.shape[0]} pixels; the network's first guess: "
            f"{self.explorer.class_names[best]} ({self.explorer.probabilities[best]:.0%})."
        )


def _html(text: str, colour: str = "#1b1b1b") -> str:
    safe = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return f'<span style="color:{colour}">{safe}</span>'
