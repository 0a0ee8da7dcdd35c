"""The Explorer: controls for layer, class, method, contrast, evidence and blend, over one image.

A thin view over :class:`~gradcam_widgets.explorer_state.ExplorerState`, which holds the
caches, captions and class search and is tested without ipywidgets. The view is built
only from standard ipywidgets (no custom JavaScript), so it runs wherever ipywidgets 8
does, every control is reachable with the keyboard (Tab, arrows, Enter, Space), and it
can be driven from code by setting ``.value``.

Observers are narrow, as in bqplot: an alpha change only re-blends the overlay; a
colormap change recolours; only the layer, class, method, contrast and evidence redraw
everything (and only a class or contrast not seen before runs the model).

Saved notebooks: the widget's rich output also carries an ``image/png`` of the current
view, so the picture shows where widgets do not render (GitHub, nbviewer).
"""

from __future__ import annotations

import contextlib
import html
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import numpy as np

from . import render
from .classes import ClassLookupError
from .explorer_state import (
    COLORMAPS,
    DISPLAY_SIZE,
    EVIDENCE_LABELS,
    ExplorerState,
    Settings,
    legend_html,
)
from .render import image_from_inputs

__all__ = ["COLORMAPS", "DISPLAY_SIZE", "Explorer", "image_from_inputs"]


class Explorer(widgets.VBox):
    """Grad-CAM of one image with controls for everything that changes the picture.

    Example::

        import gradcam_widgets as gw
        bundle = gw.zoo.load("efficientnet_lite0", framework="torch")
        photo = gw.data.sample_image("chelsea")
        gw.Explorer(bundle.model, bundle.preprocess(photo), image=photo,
                    class_names=bundle.class_names, layers=bundle.layers)

    Controls (each a standard ipywidget; setting its ``.value`` redraws ``.view`` before
    the assignment returns):

    * ``.layer``: ``SelectionSlider`` over the layer names (earliest to latest),
      starting at ``gw.engine.default_layer``: the last spatial layer of a CNN, the last
      layer a vision transformer's class token reads (later token layers' maps are empty).
    * ``.target``: ``Dropdown`` whose value is a class index; the top-k predictions come
      first, labelled ``"name (probability)"``, then every other class.
    * ``.find``: ``Combobox`` to reach any class by typing its name or its index.
    * ``.method``: ``ToggleButtons`` over every registered method that applies
      (``gw.METHODS``; CAM only when the head is global average pooling then one dense
      layer, and only at that layer).
    * ``.contrast``: ``Dropdown`` of classes, ``None`` = off: the map then explains
      ``y^class - y^contrast``, "why this class rather than that one".
    * ``.evidence``: ``ToggleButtons``, ``"for"`` the class or ``"against"`` it (the
      counterfactual map: ``ReLU(-S)``, Selvaraju et al. 2017).
    * ``.alpha``: ``FloatSlider`` 0..1, the heatmap's weight in the blend.
    * ``.colormap``: ``Dropdown`` of matplotlib colormaps; the default, viridis, reads
      the same with colour-vision deficiency; jet is still offered.
    * ``.pin_button`` (:meth:`pin` / :meth:`unpin`) and ``.faithfulness_button``
      (:meth:`faithfulness`).
    * ``.view``: ``ipywidgets.Image``, the heatmap over the picture; ``.heatmap`` the map
      alone with a colour bar; ``.pinned_view`` the pinned picture.
    * ``.caption``: ``HTML`` with the numbers (scores, probabilities, the map's maximum
      and where it is, faithfulness); ``.message``: errors and notes.

    Args:
        model: a ``torch.nn.Module`` or ``keras.Model``; it is never changed.
        inputs: one preprocessed image, in the model's layout, as a batch of one.
        image: the picture drawn under the heatmap (the un-preprocessed RGB or grayscale,
            uint8 or float in [0, 1]); by default derived from ``inputs``.
        class_names: a list of names (index ``i`` names class ``i``) or a dict.
        layers: the layers on the slider; default every candidate layer of the model.
        top_k: how many top predictions head the class list.
    """

    def __init__(
        self,
        model: Any,
        inputs: Any,
        *,
        image: np.ndarray | None = None,
        class_names: Sequence[str] | Mapping[int, str] | None = None,
        layers: Sequence[str] | None = None,
        top_k: int = 5,
    ) -> None:
        state = ExplorerState(
            model, inputs, image=image, class_names=class_names, layers=layers, top_k=top_k
        )
        self.state = state
        self.last_error: BaseException | None = None
        wide = {"description_width": "initial"}
        self.layer = widgets.SelectionSlider(
            options=[
                (f"{name} ({state.sizes[name][0]}x{state.sizes[name][1]})", name)
                for name in state.layers
            ],
            value=state.start_layer,
            description="layer (early → late)",
            continuous_update=True,
            style=wide,
            layout=widgets.Layout(width="100%"),
        )
        self.target = widgets.Dropdown(
            options=state.target_options(),
            value=state.top_classes[0],
            description="class",
            style=wide,
            layout=widgets.Layout(width="50%"),
        )
        self.find = widgets.Combobox(
            options=sorted(set(state.class_names)),
            placeholder="any other class: type a name or a number, then Enter",
            ensure_option=False,
            continuous_update=False,
            layout=widgets.Layout(width="50%"),
        )
        self.method = widgets.ToggleButtons(
            options=state.method_options(),
            value="gradcam" if "gradcam" in state.methods else state.methods[0],
            tooltips=state.method_tooltips(),
            description="method",
            style={"button_width": "112px", "description_width": "initial"},
            layout=widgets.Layout(flex="0 0 auto", margin="0 24px 0 0"),
        )
        self.evidence = widgets.ToggleButtons(
            options=[(label, value) for value, label in EVIDENCE_LABELS.items()],
            value="for",
            description="evidence",
            tooltips=[
                "Where the picture raises the score: ReLU(S)",
                "Where it lowers the score, the counterfactual map: ReLU(-S)",
            ],
            style={"button_width": "150px", "description_width": "initial"},
        )
        self.contrast = widgets.Dropdown(
            options=state.contrast_options(),
            index=0,
            description="rather than",
            style=wide,
            layout=widgets.Layout(width="40%"),
        )
        self.alpha = widgets.FloatSlider(
            value=0.5,
            min=0.0,
            max=1.0,
            step=0.05,
            description="alpha (heatmap weight)",
            continuous_update=True,
            readout_format=".2f",
            style=wide,
            layout=widgets.Layout(width="35%"),
        )
        self.colormap = widgets.Dropdown(
            options=list(COLORMAPS),
            value=render.DEFAULT_COLORMAP,
            description="colormap",
            style=wide,
        )
        self.pin_button = widgets.Button(
            description="pin this view",
            tooltip="Keep this picture beside the live one, to compare (no model call)",
            icon="thumb-tack",
        )
        self.faithfulness_button = widgets.Button(
            description="faithfulness",
            tooltip="Deletion and insertion scores of this map (Petsiuk et al. 2018)",
            layout=widgets.Layout(width="auto"),
        )
        width = state.rgb.shape[1] * state.scale
        height = state.rgb.shape[0] * state.scale
        self.view = widgets.Image(format="png", layout=_picture_layout(width, height))
        self.heatmap = widgets.Image(format="png", layout=_picture_layout(width, height))
        self.pinned_view = widgets.Image(format="png", layout=_picture_layout(width, height))
        self.caption = widgets.HTML()
        self.message = widgets.HTML()
        self._overlay_title = widgets.HTML()
        self._heatmap_title = widgets.HTML()
        self._pinned_title = widgets.HTML()
        self._legend = widgets.HTML()
        self._pinned_box = widgets.VBox(
            [self._pinned_title, self.pinned_view],
            layout=widgets.Layout(margin="0 16px 0 0", display="none"),
        )
        pictures = widgets.HBox(
            [
                self._pinned_box,
                widgets.VBox(
                    [self._overlay_title, self.view], layout=widgets.Layout(margin="0 16px 0 0")
                ),
                widgets.VBox([self._heatmap_title, self.heatmap, self._legend]),
            ],
            layout=widgets.Layout(flex_flow="row wrap"),
        )
        super().__init__(
            children=[
                self.layer,
                widgets.HBox([self.target, self.find]),
                widgets.HBox(
                    [self.method, self.evidence], layout=widgets.Layout(flex_flow="row wrap")
                ),
                widgets.HBox([self.contrast, self.alpha, self.colormap]),
                widgets.HBox([self.pin_button, self.faithfulness_button]),
                pictures,
                self.caption,
                self.message,
            ]
        )
        # CSS classes name the parts for browser tests and custom styling (no JavaScript).
        self.add_class("gradcam-explorer")
        for part, name in [
            (self.layer, "layer"),
            (self.target, "target"),
            (self.find, "find"),
            (self.method, "method"),
            (self.evidence, "evidence"),
            (self.contrast, "contrast"),
            (self.alpha, "alpha"),
            (self.colormap, "colormap"),
            (self.pin_button, "pin"),
            (self.faithfulness_button, "faithfulness"),
            (self.view, "overlay"),
            (self.heatmap, "heatmap"),
            (self.pinned_view, "pinned"),
            (self.caption, "caption"),
            (self.message, "message"),
        ]:
            part.add_class(f"gradcam-{name}")
        for control in (self.layer, self.target, self.method, self.contrast, self.evidence):
            control.observe(self._on_map_change, names="value")
        self.alpha.observe(self._on_alpha, names="value")
        self.colormap.observe(self._on_colormap, names="value")
        self.find.observe(self._on_find, names="value")
        self.pin_button.on_click(self._on_pin_button)
        self.faithfulness_button.on_click(self._on_faithfulness_button)
        self._redraw_all()

    # ----------------------------------------------------------------- state read-outs

    @property
    def layers(self) -> list[str]:
        """The layer names on the slider, earliest first."""
        return self.state.layers

    @property
    def scores(self) -> np.ndarray:
        """``(C,)`` pre-softmax scores of the image."""
        return self.state.scores

    @property
    def probabilities(self) -> np.ndarray:
        """``(C,)`` softmax of the scores."""
        return self.state.probabilities

    @property
    def class_names(self) -> list[str]:
        """One name per class."""
        return self.state.class_names

    @property
    def top_classes(self) -> list[int]:
        """The top-k classes, most probable first."""
        return self.state.top_classes

    @property
    def cam_layer(self) -> str | None:
        """The layer where CAM works, or None (no GAP + dense head)."""
        return self.state.cam_layer

    @property
    def engine_calls(self) -> int:
        """How many times the model ran for maps (cache misses)."""
        return self.state.engine_calls

    @property
    def _scale(self) -> int:
        return self.state.scale

    @property
    def settings(self) -> Settings:
        """The view's settings, read from the controls."""
        return Settings(
            layer=self.layer.value,
            target=int(self.target.value),
            method=self.method.value,
            contrast=None if self.contrast.value is None else int(self.contrast.value),
            evidence=self.evidence.value,
            alpha=float(self.alpha.value),
            colormap=self.colormap.value,
        )

    @property
    def pinned(self) -> dict[str, Any] | None:
        """None, or the settings of the pinned view (a dict)."""
        return None if self.state.pinned is None else self.state.pinned.as_dict()

    @property
    def current_map(self) -> np.ndarray:
        """The map on screen, at its layer's own resolution, not normalised (2-D)."""
        return self.state.heatmap(self.settings)

    def maps(
        self,
        target: int | None = None,
        method: str = "gradcam",
        *,
        contrast: int | None = None,
        evidence: str = "for",
    ) -> dict[str, np.ndarray]:
        """Every slider layer's map for a class, at each layer's own resolution (cached).

        Args:
            target: a class index; ``None`` for the class chosen in ``.target``.
            method: a method offered in ``.method`` (for CAM only its layer is in the dict).
            contrast: ``None`` or the class whose score is subtracted.
            evidence: ``"for"`` or ``"against"``.

        Returns:
            ``{layer name: 2-D float32 map}``, not normalised.
        """
        if method not in self.state.methods:
            offered = ", ".join(repr(m) for m in self.state.methods)
            if method == "cam":
                raise ValueError(
                    "CAM needs a global-average-pooling + dense head: not this model. "
                    f"Methods offered: {offered}."
                )
            raise ValueError(f"method is one of {offered}, not {method!r}.")
        if evidence not in EVIDENCE_LABELS:
            raise ValueError(f"evidence is 'for' or 'against', not {evidence!r}.")
        cls = int(self.target.value) if target is None else int(target)
        sign = -1.0 if evidence == "against" else 1.0
        signed = self.state.signed_maps(cls, method, contrast)
        return {name: np.maximum(sign * s, 0.0).astype(np.float32) for name, s in signed.items()}

    # ----------------------------------------------------------------- actions

    def pin(self) -> None:
        """Keep the current picture and its settings beside the live one (no model call)."""
        self.state.pin(self.settings)
        self._draw_pinned()
        self._draw_caption()

    def unpin(self) -> None:
        """Remove the pinned picture."""
        self.state.unpin()
        self._draw_pinned()
        self._draw_caption()

    def faithfulness(self, steps: int = 32, references: bool = False) -> dict[str, float]:
        """Deletion and insertion AUCs of the current map, shown in the caption.

        Petsiuk et al. 2018 (RISE): the class probability as the map's most important
        pixels are removed (deletion: lower is better) or put back on a blurred copy
        (insertion: higher is better); see :mod:`gradcam_widgets.metrics.faithfulness`.
        Cached per (class, layer, method, contrast, evidence).

        Args:
            steps: steps of each curve (``steps + 1`` images each, batched).
            references: also score a random and a centre map of the class, for comparison.

        Returns:
            ``{"deletion": auc, "insertion": auc}``.
        """
        scores = self.state.faithfulness(self.settings, steps=steps, references=references)
        self._draw_caption()
        return scores

    def export(self, path: str | Path) -> tuple[Path, Path]:
        """Write the current overlay as PNG at ``path`` and a JSON manifest beside it.

        The manifest (``path`` with suffix ``.json``) names the model's class, the layer,
        class and contrast, method, evidence, alpha, colormap, input shape, package
        version and the faithfulness scores if computed.

        Returns:
            The PNG's and the manifest's paths.
        """
        return self.state.export(self.settings, path)

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any] | None:
        """The widget, plus a PNG of the current view for viewers without widgets."""
        bundle = super()._repr_mimebundle_(**kwargs)
        if bundle is not None:
            # A fallback must never hide the widget.
            with contextlib.suppress(Exception):
                bundle["image/png"] = self.state.snapshot_png(self.settings)
        return bundle

    # ----------------------------------------------------------------- drawing

    def _draw_overlay(self) -> None:
        settings = self.settings
        self.view.value = self.state.overlay_png(settings)
        self._overlay_title.value = (
            f"<b>{self.state.method_label(settings.method)} over the picture</b>"
        )

    def _draw_heatmap(self) -> None:
        settings = self.settings
        entry = self.state.picture(settings)
        self.heatmap.value = entry.png
        size = f" ({entry.resolution[0]}x{entry.resolution[1]} map)" if entry.resolution else ""
        self._heatmap_title.value = f"<b>The heatmap alone</b>{size}"
        peak = entry.peak if entry.resolution and not entry.empty else None
        self._legend.value = legend_html(
            settings.colormap, self.state.rgb.shape[1] * self.state.scale, peak
        )

    def _draw_pinned(self) -> None:
        pinned = self.state.pinned
        if pinned is None:
            self._pinned_box.layout.display = "none"
            self.pin_button.description = "pin this view"
            return
        self.pinned_view.value = self.state.overlay_png(pinned)
        self._pinned_title.value = f"<b>Pinned:</b> {self.state.describe(pinned)}"
        self._pinned_box.layout.display = "flex"
        self.pin_button.description = "unpin"

    def _draw_caption(self) -> None:
        self.caption.value = self.state.caption(self.settings)

    def _redraw_all(self) -> None:
        self._draw_overlay()
        self._draw_heatmap()
        self._draw_caption()

    # ----------------------------------------------------------------- callbacks

    def _guarded(self, action) -> None:
        if self.last_error is not None:
            action = self._redraw_all  # the last event failed: some parts are stale
        try:
            action()
        except Exception as error:  # shown in the widget, where the learner looks
            self._show_error(error)
        else:
            self.last_error = None
            self.message.value = ""

    def _on_map_change(self, change: dict[str, Any]) -> None:
        owner = change["owner"]
        if owner is self.contrast and change["new"] is None and self.contrast.index != 0:
            self.contrast.index = 0  # show "off" rather than an empty box
        if (
            owner is self.method
            and change["new"] == "cam"
            and self.layer.value != self.state.cam_layer
        ):
            # CAM exists at one layer only: go there (that change redraws the picture).
            self.layer.value = self.state.cam_layer
            return
        self._guarded(self._redraw_all)

    def _on_alpha(self, change: dict[str, Any]) -> None:
        self._guarded(self._draw_overlay)

    def _on_colormap(self, change: dict[str, Any]) -> None:
        def recolour() -> None:
            self._draw_overlay()
            self._draw_heatmap()

        self._guarded(recolour)

    def _on_pin_button(self, button: widgets.Button) -> None:
        self._guarded(self.unpin if self.state.pinned is not None else self.pin)

    def _on_faithfulness_button(self, button: widgets.Button) -> None:
        self._show_note("Computing deletion and insertion curves…")
        self._guarded(lambda: self.faithfulness(references=True))

    def _show_error(self, error: BaseException) -> None:
        self.last_error = error
        self.message.value = (
            "<div style='color:#a40000;background:#fdecea;padding:4px 8px;"
            "border-left:4px solid #a40000'><b>Could not update the picture:</b> "
            f"{html.escape(type(error).__name__)}: {html.escape(str(error))}</div>"
        )

    def _show_note(self, text: str) -> None:
        self.message.value = f"<div style='color:#333;padding:4px 8px'>{html.escape(text)}</div>"

    def _on_find(self, change: dict[str, Any]) -> None:
        text = str(change["new"])
        if not text.strip():
            return
        try:
            found = self.state.find_class(text)
        except ClassLookupError as problem:
            message = str(problem)
            self._show_note(message[:1].upper() + message[1:] + ".")
            return
        except Exception as error:
            self._show_error(error)
            return
        self.target.value = found
        self.find.value = ""


def _picture_layout(width: int, height: int) -> widgets.Layout:
    """Fixed on-screen size: the picture neither stretches nor shrinks with the page."""
    return widgets.Layout(
        width=f"{width}px", height=f"{height}px", object_fit="contain", flex="0 0 auto"
    )
