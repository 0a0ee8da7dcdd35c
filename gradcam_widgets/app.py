"""The Explorer as a one-page app: choose a model, a sample photo or your own, and look.

:class:`ExplorerApp` is what ``notebooks/explorer_app.ipynb`` shows, served by Voila for
people who do not code (a lecture hall, a poster, a first contact): a model chooser
(EfficientNet-Lite0 in PyTorch or in Keras), a chooser of the sample photos, an upload
button, and below them a :class:`~gradcam_widgets.Explorer` of the chosen photo.

Each framework's model is loaded the first time it is chosen and kept, so switching back
costs nothing, and Keras (TensorFlow) is imported only if a user asks for it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import ipywidgets as widgets
import numpy as np

from . import data
from .uploads import _files, _html, read_upload

__all__ = ["FRAMEWORKS", "MODEL", "ExplorerApp"]

#: The zoo model the app explains (offline, in both frameworks).
MODEL = "efficientnet_lite0"

#: Button label -> framework name of :func:`gradcam_widgets.zoo.load`.
FRAMEWORKS: dict[str, str] = {"PyTorch": "torch", "Keras": "keras"}

#: The photo chooser's value for a photo uploaded by the user.
UPLOADED = "__uploaded__"


def _load(framework: str) -> Any:
    from . import zoo

    return zoo.load(MODEL, framework=framework)


class ExplorerApp(widgets.VBox):
    """Model chooser, photo chooser and upload button above an Explorer.

    Attributes:
        framework: ``ToggleButtons``, ``"torch"`` or ``"keras"``.
        photo: ``Dropdown`` of :data:`gradcam_widgets.data.SAMPLE_IMAGES`, and the
            uploaded photo once there is one.
        upload: ``FileUpload`` for a photo from the user's computer.
        message: ``HTML``: what is shown, or what went wrong with an upload.
        explorer: the current :class:`~gradcam_widgets.Explorer`.
        image: the photo the Explorer shows, uint8 RGB.

    Args:
        framework: the framework shown first.
        photo: the sample photo shown first.
        loader: ``framework -> zoo bundle``; by default :func:`gradcam_widgets.zoo.load`
            of :data:`MODEL` (tests pass a small model here).
    """

    def __init__(
        self,
        framework: str = "torch",
        photo: str = "chelsea",
        loader: Callable[[str], Any] = _load,
    ) -> None:
        if framework not in FRAMEWORKS.values():
            raise ValueError(
                f"framework must be one of {list(FRAMEWORKS.values())}, got {framework!r}."
            )
        if photo not in data.SAMPLE_IMAGES:
            raise ValueError(f"photo must be one of {list(data.SAMPLE_IMAGES)}, got {photo!r}.")
        self._loader = loader
        self._bundles: dict[str, Any] = {}
        self._uploaded: np.ndarray | None = None
        self._uploaded_name = ""
        self.explorer: Any = None
        self.image: np.ndarray | None = None

        self.framework = widgets.ToggleButtons(
            options=list(FRAMEWORKS.items()), value=framework, description="model"
        )
        self.photo = widgets.Dropdown(
            options=self._photo_options(), value=photo, description="photo"
        )
        self.upload = widgets.FileUpload(
            accept="image/*", multiple=False, description="your photo"
        )
        self.message = widgets.HTML()
        self._slot = widgets.VBox()
        self.add_class("gradcam-app")
        self.framework.add_class("gradcam-app-framework")
        self.photo.add_class("gradcam-app-photo")
        self.upload.add_class("gradcam-app-upload")
        self.message.add_class("gradcam-app-message")
        super().__init__(
            children=[
                widgets.HBox([self.framework]),
                widgets.HBox([self.photo, self.upload]),
                self.message,
                self._slot,
            ]
        )
        self._quiet = False  # True while the photo list is rebuilt after an upload
        self._show()
        self.framework.observe(self._on_choice, names="value")
        self.photo.observe(self._on_choice, names="value")
        self.upload.observe(self._on_upload, names="value")

    def _photo_options(self) -> list[tuple[str, str]]:
        options = [(text, name) for name, text in data.SAMPLE_IMAGES.items()]
        if self._uploaded is not None:
            options.append((f"your photo: {self._uploaded_name}", UPLOADED))
        return options

    def bundle(self, framework: str) -> Any:
        """The zoo model of ``framework``, loaded on first use and kept."""
        if framework not in self._bundles:
            self._bundles[framework] = self._loader(framework)
        return self._bundles[framework]

    def _current_image(self) -> np.ndarray:
        if self.photo.value == UPLOADED and self._uploaded is not None:
            return self._uploaded
        return data.sample_image(self.photo.value)

    def _show(self) -> None:
        from .explorer import Explorer

        bundle = self.bundle(self.framework.value)
        image = self._current_image()
        self.image = image
        self.explorer = Explorer(
            bundle.model,
            bundle.preprocess(image),
            image=image,
            class_names=bundle.class_names,
            layers=bundle.layers,
        )
        self._slot.children = [self.explorer]
        best = self.explorer.top_classes[0]
        label = dict((v, k) for k, v in FRAMEWORKS.items())[self.framework.value]
        self.message.value = _html(
            f"EfficientNet-Lite0 in {label}, {image.shape[1]} x {image.shape[0]} pixels: "
            f"first guess {self.explorer.class_names[best]} "
            f"({self.explorer.probabilities[best]:.0%})."
        )

    def _on_choice(self, change: Mapping[str, Any]) -> None:
        if not self._quiet:
            self._show()

    def _on_upload(self, change: Mapping[str, Any]) -> None:
        image, problem = read_upload(change["new"])
        if image is None:
            if _files(change["new"]):
                self.message.value = _html(problem, colour="#b3261e")
            return
        self._uploaded = image
        self._uploaded_name = str(_files(change["new"])[-1].get("name", "photo"))
        # A new option list resets the Dropdown to its first entry: redraw once, at the end.
        self._quiet = True
        try:
            self.photo.options = self._photo_options()
            self.photo.value = UPLOADED
        finally:
            self._quiet = False
        self._show()
