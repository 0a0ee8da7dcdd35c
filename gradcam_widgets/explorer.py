"""The Explorer: sliders for layer, class and alpha over one image, answering at once.

A thin controller over the engine (:mod:`gradcam_widgets.methods`) and the pure drawing
functions (:mod:`gradcam_widgets.render`), built only from standard ipywidgets (no custom
JavaScript), so it runs wherever ipywidgets 8 does and can be tested by setting
``.value`` without a browser.

Why it is fast: the model runs as little as the maths allows.

* Probabilities come from one call to :func:`~gradcam_widgets.engine.predict`.
* For a class, the maps of *every* layer on the slider come from one engine call (one
  forward and one backward pass) and are cached per (class, method), so moving the layer
  slider is a lookup and a class seen before costs nothing. Classes are computed when
  first chosen, not all top-k at start: on EfficientNet-Lite0 most of a call is the
  backward pass, so :func:`~gradcam_widgets.engine.gradcam_multi` for five classes costs
  about three single calls, and the first picture would wait for all of them.
* Alpha and colormap changes never call the model: the map, resized to the picture and
  normalised, is cached, and only the blend and the PNG encoding are redone.
"""

from __future__ import annotations

import html
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import ipywidgets as widgets
import numpy as np
from matplotlib import colormaps
from PIL import Image as PILImage

from . import engine, render
from ._core import normalize
from .backends import backend_for, to_numpy

__all__ = ["Explorer", "COLORMAPS", "METHOD_LABELS", "image_from_inputs"]

#: Colormaps offered by the Explorer (matplotlib names); the first is the default.
COLORMAPS: tuple[str, ...] = ("jet", "turbo", "viridis", "inferno", "magma", "gray")

#: Method value -> button label.
METHOD_LABELS: dict[str, str] = {"gradcam": "Grad-CAM", "cam": "CAM"}

#: Longest side of each picture on screen, in pixels: larger images are shrunk to it,
#: small ones (a 28-pixel digit) are enlarged by a whole factor up to it.
DISPLAY_SIZE = 320

_CACHE_SIZE = 64  # coloured maps kept (about 0.3 MB each at 320 x 213)


def _as_numpy(batch: Any) -> np.ndarray:
    """A framework tensor or array as numpy (never imports a framework)."""
    return to_numpy(batch)


def image_from_inputs(inputs: Any, channels_first: bool) -> np.ndarray:
    """A drawable picture from a model's input: float in [0, 1], ``(H, W)`` or ``(H, W, 3)``.

    The values are rescaled linearly from their minimum to their maximum, for display
    only. A per-channel normalisation (ImageNet's mean and standard deviation) is not
    undone exactly, so colours may look a little off: pass the original picture as
    ``image=`` to see it as it was.

    Args:
        inputs: one image, ``(1, C, H, W)`` / ``(C, H, W)`` when ``channels_first``,
            ``(1, H, W, C)`` / ``(H, W, C)`` otherwise; numpy or a framework tensor.
        channels_first: the layout of ``inputs`` (torch: True; Keras: False).

    Raises:
        ValueError: a batch of several images, or a channel count that is neither 1 nor 3.
    """
    array = _as_numpy(inputs).astype(np.float32)
    if array.ndim == 4:
        if array.shape[0] != 1:
            raise ValueError(
                f"inputs hold {array.shape[0]} images; the Explorer shows one: pass "
                "inputs[:1] (a batch of one)."
            )
        array = array[0]
    if array.ndim == 3 and channels_first:
        array = np.transpose(array, (1, 2, 0))
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[-1] == 3)):
        raise ValueError(
            f"cannot draw an input of shape {array.shape} as a picture: pass the picture "
            "itself as image= (RGB or grayscale, H x W)."
        )
    low, high = float(array.min()), float(array.max())
    if high > low:
        return (array - low) / (high - low)
    return np.zeros_like(array)


def _fit_for_display(rgb: np.ndarray) -> tuple[np.ndarray, int]:
    """Shrink a large picture to ``DISPLAY_SIZE``, or choose a whole enlargement factor."""
    longest = max(rgb.shape[:2])
    if longest > DISPLAY_SIZE:
        ratio = DISPLAY_SIZE / longest
        size = (max(1, round(rgb.shape[1] * ratio)), max(1, round(rgb.shape[0] * ratio)))
        shrunk = PILImage.fromarray(rgb).resize(size, PILImage.Resampling.LANCZOS)
        return np.asarray(shrunk), 1
    return rgb, max(1, DISPLAY_SIZE // longest)


@dataclass(frozen=True)
class _Colour:
    """A map ready to draw: its colours (uint8 RGB), whether it is all zero, its PNG."""

    colour: np.ndarray
    empty: bool
    png: bytes


def _encode_png(image: np.ndarray, scale: int) -> bytes:
    """PNG bytes for the view: fast zlib level 1, since every slider event encodes."""
    return render.to_png(image, scale=scale, compress_level=1)


@lru_cache(maxsize=16)
def _legend_html(colormap: str, width: int) -> str:
    """A colour bar for the heatmap, drawn in HTML: from 0 to the map's maximum."""
    stops = colormaps[colormap](np.linspace(0.0, 1.0, 11))
    colours = ", ".join(
        "#{:02x}{:02x}{:02x}".format(*(int(round(c * 255)) for c in rgba[:3])) for rgba in stops
    )
    return (
        f"<div style='width:{width}px;font-size:12px'>"
        f"<div style='height:10px;background:linear-gradient(to right, {colours})'></div>"
        "<div style='display:flex;justify-content:space-between'>"
        "<span>0: no evidence</span><span>the map's maximum</span></div></div>"
    )


def _class_names(names: Sequence[str] | Mapping[int, str] | None, count: int) -> list[str]:
    if names is None:
        return [str(i) for i in range(count)]
    if isinstance(names, Mapping):
        return [str(names.get(i, i)) for i in range(count)]
    names = [str(name) for name in names]
    if len(names) != count:
        raise ValueError(
            f"class_names has {len(names)} names but the model scores {count} classes."
        )
    return names


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits.astype(np.float64) - logits.max())
    return shifted / shifted.sum()


def _percent(p: float) -> str:
    return "<0.1%" if p < 0.0005 else f"{p:.1%}"


class Explorer(widgets.VBox):
    """Grad-CAM of one image with sliders for the layer, the class and the blend.

    Example::

        import gradcam_widgets as gw
        bundle = gw.zoo.load("efficientnet_lite0", framework="torch")
        photo = gw.data.sample_image("chelsea")
        gw.Explorer(bundle.model, bundle.preprocess(photo), image=photo,
                    class_names=bundle.class_names, layers=bundle.layers)

    Controls (each a standard ipywidget; setting its ``.value`` redraws ``.view`` before
    the assignment returns):

    * ``.layer``: ``SelectionSlider`` over the layer names (earliest to latest).
    * ``.target``: ``Dropdown`` whose value is a class index; the top-k predictions come
      first, labelled ``"name (probability)"``, then every other class.
    * ``.find``: ``Combobox`` to reach any class by typing its name or its index.
    * ``.alpha``: ``FloatSlider`` 0..1, the heatmap's weight in the blend.
    * ``.colormap``: ``Dropdown`` of matplotlib colormap names.
    * ``.method``: ``ToggleButtons``, ``"gradcam"`` or ``"cam"`` (CAM is offered only when
      the model's head is global average pooling then one dense layer).
    * ``.view``: ``ipywidgets.Image`` (PNG bytes): the heatmap over the picture, at a
      readable size; ``.heatmap`` beside it: the heatmap alone, with a colour bar.
    * ``.caption``: ``HTML`` naming the layer, its resolution, the class, score and
      probability; ``.message``: ``HTML`` where errors and notes appear.

    Args:
        model: a ``torch.nn.Module`` or ``keras.Model``; it is never changed.
        inputs: one preprocessed image, in the model's layout, as a batch of one.
        image: the picture drawn under the heatmap (the un-preprocessed RGB or grayscale,
            uint8 or float in [0, 1]); by default derived from ``inputs``, rescaled to
            [0, 1].
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
        backend = backend_for(model)
        batch = backend.prepare(model, inputs)
        if int(batch.shape[0]) != 1:
            raise ValueError(
                f"inputs hold {int(batch.shape[0])} images; the Explorer shows one: pass a "
                "batch of one (inputs[:1])."
            )
        self._model = model
        self._inputs = batch
        names = list(dict.fromkeys(layers)) if layers is not None else None
        if names is None:
            names = engine.candidate_layers(model, batch)
        if not names:
            raise ValueError("no layer to explore: give layers=[...] with at least one name.")
        self.layers: list[str] = names

        logits = engine.predict(model, batch)[0]
        self.scores: np.ndarray = logits
        self.probabilities: np.ndarray = _softmax(logits)
        self.class_names: list[str] = _class_names(class_names, len(logits))
        order = np.argsort(-self.probabilities, kind="stable")
        self.top_classes: list[int] = [int(c) for c in order[: max(1, min(top_k, len(order)))]]

        if image is None:
            image = image_from_inputs(batch, channels_first=not backend.channels_last)
        self._rgb, self._scale = _fit_for_display(render.as_rgb_uint8(image))
        self._rgb_float = self._rgb.astype(np.float32)
        self._blank_png = _encode_png(np.full_like(self._rgb, 235), self._scale)

        # Raw maps per (class, method): {layer: 2-D float32 at the layer's resolution}.
        self._maps: dict[tuple[int, str], dict[str, np.ndarray]] = {}
        # Display-ready colours per (class, method, layer, colormap), least recent first.
        self._colours: OrderedDict[tuple[int, str, str, str], _Colour] = OrderedDict()
        self.engine_calls = 0  # how many times the Explorer asked the engine for maps
        self.last_error: BaseException | None = None

        self.cam_layer: str | None = self._detect_cam(model, batch)

        options = [("Grad-CAM", "gradcam")]
        if self.cam_layer is not None:
            options.append(("CAM", "cam"))
            tooltips = [
                "Gradient-weighted class activation map: works at every layer",
                f"Class activation map from the dense weights: only at layer {self.cam_layer}",
            ]
        else:
            tooltips = ["Gradient-weighted class activation map (CAM needs a GAP + dense head)"]
        wide = {"description_width": "initial"}
        # The top class's maps (every layer, one engine call) also give each layer's size.
        sizes = {
            name: heat.shape
            for name, heat in self._maps_for(self.top_classes[0], "gradcam").items()
        }
        self.layer = widgets.SelectionSlider(
            options=[(f"{name} ({sizes[name][0]}x{sizes[name][1]})", name) for name in self.layers],
            value=self.layers[-1],
            description="layer (early → late)",
            continuous_update=True,
            style=wide,
            layout=widgets.Layout(width="100%"),
        )
        self.target = widgets.Dropdown(
            options=self._target_options(),
            value=self.top_classes[0],
            description="class",
            style=wide,
            layout=widgets.Layout(width="50%"),
        )
        self.find = widgets.Combobox(
            options=sorted(set(self.class_names)),
            placeholder="any other class: type a name or a number, then Enter",
            ensure_option=False,
            continuous_update=False,
            layout=widgets.Layout(width="50%"),
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
            layout=widgets.Layout(width="50%"),
        )
        self.colormap = widgets.Dropdown(
            options=list(COLORMAPS), value=COLORMAPS[0], description="colormap", style=wide
        )
        self.method = widgets.ToggleButtons(
            options=options,
            value="gradcam",
            tooltips=tooltips,
            style={"button_width": "100px"},
            layout=widgets.Layout(flex="0 0 auto", margin="0 24px 0 0"),
        )
        # Fixed on-screen size: the picture neither stretches nor shrinks with the page.
        width = self._rgb.shape[1] * self._scale
        height = self._rgb.shape[0] * self._scale
        self.view = widgets.Image(format="png", layout=self._picture_layout(width, height))
        self.heatmap = widgets.Image(format="png", layout=self._picture_layout(width, height))
        self.caption = widgets.HTML()
        self.message = widgets.HTML()
        self._overlay_title = widgets.HTML()
        self._heatmap_title = widgets.HTML()
        self._legend = widgets.HTML()

        pictures = widgets.HBox(
            [
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
                widgets.HBox([self.method, self.alpha, self.colormap]),
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
            (self.alpha, "alpha"),
            (self.colormap, "colormap"),
            (self.method, "method"),
            (self.view, "overlay"),
            (self.heatmap, "heatmap"),
            (self.caption, "caption"),
            (self.message, "message"),
        ]:
            part.add_class(f"gradcam-{name}")
        for control in (self.layer, self.target, self.alpha, self.colormap, self.method):
            control.observe(self._on_change, names="value")
        self.find.observe(self._on_find, names="value")
        self._refresh()

    @staticmethod
    def _picture_layout(width: int, height: int) -> widgets.Layout:
        return widgets.Layout(
            width=f"{width}px", height=f"{height}px", object_fit="contain", flex="0 0 auto"
        )

    # ----------------------------------------------------------------- engine calls

    def _detect_cam(self, model: Any, batch: Any) -> str | None:
        """The layer CAM works at (the explorer's last layer), or None; tried once."""
        layer = self.layers[-1]
        try:
            cam_map = engine.cam(model, batch, target=self.top_classes[0], layer=layer)
        except (ValueError, TypeError):
            return None
        self._maps[(self.top_classes[0], "cam")] = {layer: cam_map[0]}
        return layer

    def _maps_for(self, cls: int, method: str) -> dict[str, np.ndarray]:
        """Every layer's map for a class, from one engine call the first time."""
        key = (cls, method)
        if key not in self._maps:
            self.engine_calls += 1
            if method == "cam":
                cam_map = engine.cam(self._model, self._inputs, target=cls, layer=self.cam_layer)
                self._maps[key] = {self.cam_layer: cam_map[0]}
            else:
                maps = engine.gradcam(self._model, self._inputs, target=cls, layer=self.layers)
                self._maps[key] = {name: m[0] for name, m in maps.items()}
        return self._maps[key]

    # ----------------------------------------------------------------- drawing

    def _colour(self, cls: int, method: str, layer: str, colormap: str) -> _Colour:
        """The map resized to the picture, normalised and coloured; cached (LRU)."""
        key = (cls, method, layer, colormap)
        cached = self._colours.get(key)
        if cached is not None:
            self._colours.move_to_end(key)
            return cached
        raw = self._maps_for(cls, method)[layer]
        unit = normalize(render.resize_map(raw, self._rgb.shape[:2]))
        colour = render.colorize(unit, colormap)
        entry = _Colour(
            colour=colour,
            empty=not np.any(unit > 0),
            png=_encode_png(colour, self._scale),
        )
        self._colours[key] = entry
        if len(self._colours) > _CACHE_SIZE:
            self._colours.popitem(last=False)
        return entry

    def _state(self) -> tuple[str, int, float, str, str]:
        return (
            self.layer.value,
            int(self.target.value),
            float(self.alpha.value),
            self.colormap.value,
            self.method.value,
        )

    def _refresh(self) -> None:
        """Redraw from the controls' current values (never from the event that fired)."""
        layer, cls, alpha, colormap, method = self._state()
        note = ""
        resolution: tuple[int, ...] | None = None
        if method == "cam" and layer != self.cam_layer:
            overlay = self._rgb
            heat_png = self._blank_png
            note = (
                f"<b>CAM exists only at layer <code>{html.escape(str(self.cam_layer))}</code></b>,"
                " the one whose maps global average pooling hands to the dense layer: move "
                "the layer slider there, or switch to Grad-CAM, which works at every layer."
            )
        else:
            entry = self._colour(cls, method, layer, colormap)
            resolution = self._maps_for(cls, method)[layer].shape
            heat_png = entry.png
            if entry.empty:
                overlay = self._rgb
                note = (
                    "The map has no positive value here: nothing at this layer speaks for "
                    "this class, so only the picture is shown."
                )
            else:
                # The blend of render.overlay, on the cached colour: no model, no resize.
                blended = (1.0 - alpha) * self._rgb_float + alpha * entry.colour.astype(np.float32)
                overlay = np.clip(np.round(blended), 0, 255).astype(np.uint8)
        self.view.value = _encode_png(overlay, self._scale)
        self.heatmap.value = heat_png
        self._overlay_title.value = f"<b>{METHOD_LABELS[method]} over the picture</b>"
        size = f" ({resolution[0]}x{resolution[1]} map)" if resolution is not None else ""
        self._heatmap_title.value = f"<b>The heatmap alone</b>{size}"
        self._legend.value = _legend_html(colormap, self._rgb.shape[1] * self._scale)
        self.caption.value = self._caption(layer, cls, method, resolution, note)

    def _caption(
        self,
        layer: str,
        cls: int,
        method: str,
        resolution: tuple[int, ...] | None,
        note: str,
    ) -> str:
        name = html.escape(self.class_names[cls])
        label = f"{cls}: {name}" if name != str(cls) else name
        rank = int(np.sum(self.probabilities > self.probabilities[cls])) + 1
        where = f"layer <code>{html.escape(layer)}</code>"
        if resolution is not None:
            where += f" ({resolution[0]}x{resolution[1]})"
        text = (
            f"{METHOD_LABELS[method]} of class <b>{label}</b>: score {self.scores[cls]:.2f}, "
            f"probability {_percent(float(self.probabilities[cls]))} (rank {rank} of "
            f"{len(self.probabilities)}), at {where}."
        )
        if note:
            text += f"<br>{note}"
        return f"<div style='line-height:1.5'>{text}</div>"

    # ----------------------------------------------------------------- callbacks

    def _target_options(self) -> list[tuple[str, int]]:
        top = [
            (f"{self.class_names[c]} ({_percent(float(self.probabilities[c]))})", c)
            for c in self.top_classes
        ]
        chosen = set(self.top_classes)
        rest = [
            (f"#{c} {name}" if name != str(c) else name, c)
            for c, name in enumerate(self.class_names)
            if c not in chosen
        ]
        return top + rest

    def _show_error(self, error: BaseException) -> None:
        self.last_error = error
        self.message.value = (
            "<div style='color:#a40000;background:#fdecea;padding:4px 8px;"
            "border-left:4px solid #a40000'><b>Could not update the picture:</b> "
            f"{html.escape(type(error).__name__)}: {html.escape(str(error))}</div>"
        )

    def _show_note(self, text: str) -> None:
        self.message.value = f"<div style='color:#333;padding:4px 8px'>{html.escape(text)}</div>"

    def _on_change(self, change: dict[str, Any]) -> None:
        if (
            change["owner"] is self.method
            and change["new"] == "cam"
            and self.layer.value != self.cam_layer
        ):
            # CAM exists at one layer only: go there (that change redraws the picture).
            self.layer.value = self.cam_layer
            return
        try:
            self._refresh()
        except Exception as error:  # shown in the widget, where the learner looks
            self._show_error(error)
        else:
            self.last_error = None
            self.message.value = ""

    def _resolve_class(self, text: str) -> int | str:
        """A class index for what was typed, or a note saying why there is none."""
        query = text.strip().lstrip("#").strip()
        count = len(self.class_names)
        if query.isdigit():
            index = int(query)
            if index < count:
                return index
            return f"There is no class {index}: this model has {count} classes (0 to {count - 1})."
        lowered = query.lower()
        exact = [i for i, name in enumerate(self.class_names) if name.lower() == lowered]
        if exact:
            return exact[0]
        partial = [i for i, name in enumerate(self.class_names) if lowered in name.lower()]
        if len(partial) == 1:
            return partial[0]
        if not partial:
            return f"No class name contains {query!r}."
        shown = ", ".join(self.class_names[i] for i in partial[:6])
        more = "…" if len(partial) > 6 else ""
        return f"{len(partial)} classes match {query!r} ({shown}{more}): type more of the name."

    def _on_find(self, change: dict[str, Any]) -> None:
        text = str(change["new"])
        if not text.strip():
            return
        try:
            found = self._resolve_class(text)
            if isinstance(found, str):
                self._show_note(found)
                return
            self.target.value = found
            self.find.value = ""
        except Exception as error:
            self._show_error(error)

    # ----------------------------------------------------------------- read-outs

    def maps(self, target: int | None = None, method: str = "gradcam") -> dict[str, np.ndarray]:
        """Every slider layer's map for a class, at each layer's own resolution (cached).

        Args:
            target: a class index; ``None`` for the class chosen in ``.target``.
            method: ``"gradcam"``, or ``"cam"`` (then only the CAM layer is in the dict).

        Returns:
            ``{layer name: 2-D float32 map}``, not normalised.
        """
        if method == "cam" and self.cam_layer is None:
            raise ValueError("CAM needs a global-average-pooling + dense head: not this model.")
        if method not in METHOD_LABELS:
            raise ValueError(f"method is 'gradcam' or 'cam', not {method!r}.")
        cls = int(self.target.value) if target is None else int(target)
        return dict(self._maps_for(cls, method))

    @property
    def current_map(self) -> np.ndarray:
        """The map on screen, at its layer's own resolution, not normalised (2-D)."""
        layer, cls, _, _, method = self._state()
        if method == "cam" and layer != self.cam_layer:
            raise ValueError(f"CAM exists only at layer {self.cam_layer!r}.")
        return self._maps_for(cls, method)[layer]
