"""The Explorer's state, without widgets: caches, class options, captions, class search.

:class:`ExplorerState` answers every question the Explorer's view asks, from numpy arrays
and PNG bytes, so it is tested (and usable in scripts) without ipywidgets. The view
(:mod:`gradcam_widgets.explorer`) only turns control values into :class:`Settings` and
shows what the state returns.

Why it is fast: the model runs as little as the maths allows.

* One engine call (:func:`gradcam_widgets.engine.explain`: one forward, one backward)
  gives, for a class (and a contrast class), the logits and every slider layer's
  activations and gradients. The first call also gives the probabilities and the dense
  head, so the first picture needs no separate forward, and CAM (of every class) and the
  check that the model allows it need none either.
* Every method's *signed* map ``S`` comes from those arrays without the model (kept for
  the last few (class, contrast) pairs); the map for the evidence *for* the class is
  ``ReLU(S)``, *against* it ``ReLU(-S)``: the evidence toggle never calls the model.
* Alpha only re-blends the cached coloured map; the colormap only recolours the cached
  normalised map; a pinned view is drawn from the same caches.
* Faithfulness scores are cached per (class, layer, method, contrast, evidence).
"""

from __future__ import annotations

import html
import json
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import colormaps
from PIL import Image as PILImage

from . import classes, engine, render
from ._core import normalize
from .backends import backend_for
from .methods import METHODS

__all__ = [
    "COLORMAPS",
    "DISPLAY_SIZE",
    "ExplorerState",
    "Picture",
    "Settings",
]

#: Colormaps offered (matplotlib names); the first is the default: perceptually uniform
#: and readable with colour-vision deficiency (see :data:`render.DEFAULT_COLORMAP`).
COLORMAPS: tuple[str, ...] = ("viridis", "cividis", "inferno", "magma", "jet", "turbo", "gray")

#: Longest side of each picture on screen, in pixels: larger images are shrunk to it,
#: small ones (a 28-pixel digit) are enlarged by a whole factor up to it.
DISPLAY_SIZE = 320

EVIDENCE_LABELS = {"for": "evidence for", "against": "evidence against"}

_COLOUR_CACHE = 64  # coloured maps kept (about 0.3 MB each at 320 x 213)
_PASS_CACHE = 4  # engine results (activations and gradients of every layer) kept


@dataclass(frozen=True)
class Settings:
    """Everything that decides the picture: what the controls show.

    Attributes:
        layer: the layer's name.
        target: the class explained.
        method: a name in ``gw.METHODS``.
        contrast: ``None``, or the class whose score is subtracted (``y^target - y^contrast``).
        evidence: ``"for"`` or ``"against"`` the class.
        alpha: the heatmap's weight in the blend, 0 to 1.
        colormap: a matplotlib colormap name.
    """

    layer: str
    target: int
    method: str = "gradcam"
    contrast: int | None = None
    evidence: str = "for"
    alpha: float = 0.5
    colormap: str = render.DEFAULT_COLORMAP

    @property
    def map_key(self) -> tuple[int, str, str, int | None, str]:
        """What the map depends on: (class, layer, method, contrast, evidence)."""
        return (self.target, self.layer, self.method, self.contrast, self.evidence)

    def as_dict(self) -> dict[str, Any]:
        """The settings as a plain dict."""
        return asdict(self)


@dataclass(frozen=True)
class Picture:
    """One map, ready to draw.

    Attributes:
        colour: uint8 RGB of the normalised map at the display size (None: no map here).
        png: the coloured map as PNG bytes, enlarged to the screen.
        empty: the map has no positive value (nothing to draw).
        resolution: ``(h, w)`` of the map at its layer, or None.
        peak: the map's largest value (before normalisation).
        peak_at: ``(row, column)`` of the peak on the layer's grid.
        share_above_half: fraction of the layer's grid above half the peak.
        note: why there is no map, if there is none.
    """

    colour: np.ndarray | None
    png: bytes
    empty: bool
    resolution: tuple[int, int] | None = None
    peak: float = 0.0
    peak_at: tuple[int, int] | None = None
    share_above_half: float = 0.0
    note: str = ""


@dataclass
class _Pass:
    """One engine call's result for a (class, contrast): arrays from which maps follow."""

    explanation: Any
    signed: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)


def fit_for_display(rgb: np.ndarray) -> tuple[np.ndarray, int]:
    """Shrink a large picture to ``DISPLAY_SIZE``, or choose a whole enlargement factor."""
    longest = max(rgb.shape[:2])
    if longest > DISPLAY_SIZE:
        ratio = DISPLAY_SIZE / longest
        size = (max(1, round(rgb.shape[1] * ratio)), max(1, round(rgb.shape[0] * ratio)))
        shrunk = PILImage.fromarray(rgb).resize(size, PILImage.Resampling.LANCZOS)
        return np.asarray(shrunk), 1
    return rgb, max(1, DISPLAY_SIZE // longest)


def encode_png(image: np.ndarray, scale: int) -> bytes:
    """PNG bytes for the view: fast zlib level 1, since every slider event encodes."""
    return render.to_png(image, scale=scale, compress_level=1)


@lru_cache(maxsize=16)
def legend_html(colormap: str, width: int, peak: float | None = None) -> str:
    """A colour bar for the heatmap, in HTML, from 0 to the map's maximum (with its value)."""
    stops = colormaps[colormap](np.linspace(0.0, 1.0, 11))
    colours = ", ".join(
        "#{:02x}{:02x}{:02x}".format(*(int(np.rint(c * 255)) for c in rgba[:3])) for rgba in stops
    )
    top = "the map's maximum" if peak is None else f"the map's maximum, {peak:.3g}"
    return (
        f"<div style='width:{width}px;font-size:12px'>"
        f"<div style='height:10px;background:linear-gradient(to right, {colours})'></div>"
        "<div style='display:flex;justify-content:space-between'>"
        f"<span>0: no evidence</span><span>{top}</span></div></div>"
    )


class ExplorerState:
    """Grad-CAM of one image for any layer, class, method, contrast and evidence.

    Args:
        model: a ``torch.nn.Module`` or ``keras.Model``; it is never changed.
        inputs: one preprocessed image, in the model's layout, as a batch of one.
        image: the picture drawn under the heatmap (RGB or grayscale, uint8 or float in
            [0, 1]); by default derived from ``inputs``, rescaled to [0, 1].
        class_names: a list of names (index ``i`` names class ``i``) or a dict.
        layers: the layers offered; default every candidate layer of the model.
        top_k: how many top predictions head the class list.

    Attributes:
        layers: the layer names, earliest first.
        start_layer: the layer shown first: the engine's default layer
            (:func:`~gradcam_widgets.engine.default_layer`) when it is among ``layers``,
            else the last one.
        scores: ``(C,)`` pre-softmax scores; ``probabilities``: their softmax.
        class_names: one name per class.
        top_classes: the ``top_k`` most probable classes, most probable first.
        cam_layer: the layer where CAM works (a GAP + dense head), or None.
        methods: the names of the methods offered, in ``gw.METHODS`` order.
        engine_calls: how many times the model was run for maps.
        pinned: the pinned :class:`Settings`, or None.
    """

    def __init__(
        self,
        model: Any,
        inputs: Any,
        *,
        image: np.ndarray | None = None,
        class_names: classes.Names = None,
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
        self.model = model
        self.inputs = batch
        self.channels_last = bool(backend.channels_last)
        names = list(dict.fromkeys(layers)) if layers is not None else None
        if names is None:
            names = engine.candidate_layers(model, batch)
        if not names:
            raise ValueError("no layer to explore: give layers=[...] with at least one name.")
        self.layers: list[str] = names
        self.start_layer: str = _start_layer(model, batch, names)
        self.engine_calls = 0

        # (class, contrast) -> one engine call's arrays, least recent first.
        self._passes: OrderedDict[tuple[int, int | None], _Pass] = OrderedDict()
        # (class, method, contrast) -> {layer: signed map}: small, kept for good.
        self._signed: dict[tuple[int, str, int | None], dict[str, np.ndarray]] = {}
        # Settings without alpha -> Picture, least recent first.
        self._pictures: OrderedDict[tuple, Picture] = OrderedDict()
        self._faithfulness: dict[tuple, dict[str, Any]] = {}
        self._references: dict[int, dict[str, float]] = {}
        self.pinned: Settings | None = None

        # The first engine call: the top class's maps and, with them, the scores.
        first = self._explain(None, None, with_head="cam" in METHODS)
        logits = np.asarray(first.logits[0], dtype=np.float32)
        self.scores: np.ndarray = logits
        self.probabilities: np.ndarray = classes.softmax(logits)
        self.class_names: list[str] = classes.class_names(class_names, len(logits))
        order = np.argsort(-self.probabilities, kind="stable")
        self.top_classes: list[int] = [int(c) for c in order[: max(1, min(top_k, len(order)))]]
        self._passes[(self.top_classes[0], None)] = _Pass(first)
        self.sizes: dict[str, tuple[int, int]] = {
            name: tuple(first.activations[name].shape[2:4]) for name in self.layers
        }

        self._cam_source: Any = None
        self.cam_layer: str | None = self._detect_cam(first)
        self.methods: list[str] = [
            name
            for name, method in METHODS.items()
            if method.needs_gradients or (name == "cam" and self.cam_layer is not None)
        ]

        if image is None:
            image = render.image_from_inputs(batch, channels_first=not self.channels_last)
        self.image = render.as_rgb_uint8(image)
        self.rgb, self.scale = fit_for_display(self.image)
        self._blank_png = encode_png(np.full_like(self.rgb, 235), self.scale)

    # ----------------------------------------------------------------- engine calls

    def _explain(self, cls: int | None, contrast: int | None, with_head: bool = False) -> Any:
        self.engine_calls += 1
        return engine.explain(
            self.model, self.inputs, [cls], self.layers, contrasts=[contrast], with_head=with_head
        )

    def _detect_cam(self, first: Any) -> str | None:
        """The layer CAM works at (the last one), or None, from the first pass's head."""
        if "cam" not in METHODS or first.head is None:
            return None
        layer = self.layers[-1]
        try:
            first.cam(self.top_classes[0], layer)
        except ValueError:
            return None
        # Keep only what CAM needs: the last layer's activations and the dense head.
        self._cam_source = replace(
            first, layers=[layer], activations={layer: first.activations[layer]}, gradients=[]
        )
        return layer

    def _pass(self, cls: int, contrast: int | None) -> _Pass:
        key = (cls, contrast)
        found = self._passes.get(key)
        if found is None:
            found = _Pass(self._explain(cls, contrast))
            self._passes[key] = found
            while len(self._passes) > _PASS_CACHE:
                self._passes.popitem(last=False)
        else:
            self._passes.move_to_end(key)
        return found

    def signed_maps(
        self, target: int, method: str = "gradcam", contrast: int | None = None
    ) -> dict[str, np.ndarray]:
        """Every layer's signed map ``S`` (before the ReLU) for a class; cached.

        For a gradient method ``S = sum_k w_k A^k`` (or the method's own signed map) with
        the gradients of ``y^target - y^contrast``; for CAM ``S = M^target - M^contrast``
        at the CAM layer only. ``ReLU(S)`` is the evidence for, ``ReLU(-S)`` against.
        """
        target = self._check_class(target, "class")
        if contrast is not None:
            contrast = self._check_class(contrast, "contrast class")
        key = (target, method, contrast)
        found = self._signed.get(key)
        if found is not None:
            return found
        if method not in self.methods:
            raise ValueError(
                f"method {method!r} is not offered for this model; choose one of "
                f"{', '.join(self.methods)}."
            )
        if method == "cam":
            own = self._cam(target)
            if contrast is not None:
                own = own - self._cam(contrast)
            assert self.cam_layer is not None  # "cam" is offered only when it is set
            found = {self.cam_layer: own}
        else:
            result = self._pass(target, contrast).explanation
            chosen = METHODS[method]
            grads = result.gradients[0]
            found = {
                name: np.asarray(chosen.signed_map(result.activations[name], grads[name])[0])
                for name in self.layers
            }
        self._signed[key] = found
        return found

    def _cam(self, cls: int) -> np.ndarray:
        """CAM of a class from the first pass's activations and head: no model call."""
        return self._cam_source.cam(cls, self.cam_layer)[0]

    def _check_class(self, cls: Any, what: str) -> int:
        if isinstance(cls, (bool, np.bool_)) or not isinstance(cls, (int, np.integer)):
            raise TypeError(f"the {what} is a class index (an int), not {cls!r}.")
        count = len(self.scores) if hasattr(self, "scores") else None
        if count is not None and not 0 <= int(cls) < count:
            raise ValueError(f"there is no class {cls}: the model has {count} (0 to {count - 1}).")
        return int(cls)

    # ----------------------------------------------------------------- maps

    def available(self, settings: Settings) -> str:
        """Why there is no map for these settings ("" if there is one)."""
        if settings.method == "cam" and settings.layer != self.cam_layer:
            return (
                f"<b>CAM exists only at layer <code>{html.escape(str(self.cam_layer))}</code></b>,"
                " the one whose maps global average pooling hands to the dense layer: move "
                "the layer slider there, or choose a gradient method, which works at every "
                "layer."
            )
        if settings.contrast is not None and settings.contrast == settings.target:
            return (
                "The contrast class is the class itself: "
                "<i>y<sup>c</sup> &minus; y<sup>c</sup></i> is zero, so there is nothing to "
                "show. Choose another contrast class, or turn the contrast off."
            )
        return ""

    def heatmap(self, settings: Settings) -> np.ndarray:
        """The map on screen at its layer's resolution, not normalised (2-D, >= 0)."""
        why = self.available(settings)
        if why:
            raise ValueError(html.unescape(why.replace("<b>", "").replace("</b>", "")))
        if settings.evidence not in EVIDENCE_LABELS:
            raise ValueError(f"evidence is 'for' or 'against', not {settings.evidence!r}.")
        signed = self.signed_maps(settings.target, settings.method, settings.contrast)
        if settings.layer not in signed:
            raise ValueError(f"unknown layer {settings.layer!r}; the layers are {self.layers}.")
        layer_map = signed[settings.layer]
        if settings.evidence == "against":
            layer_map = -layer_map
        return np.maximum(layer_map, 0.0).astype(np.float32)

    def picture(self, settings: Settings) -> Picture:
        """The coloured map for ``settings`` (alpha aside); cached (least recent dropped)."""
        key = (settings.map_key, settings.colormap)
        cached = self._pictures.get(key)
        if cached is not None:
            self._pictures.move_to_end(key)
            return cached
        why = self.available(settings)
        if why:
            entry = Picture(colour=None, png=self._blank_png, empty=True, note=why)
        else:
            raw = self.heatmap(settings)
            unit = normalize(render.resize_map(raw, self.rgb.shape[:2]))
            colour = render.colorize(unit, settings.colormap)
            peak = float(raw.max()) if raw.size else 0.0
            at = np.unravel_index(int(np.argmax(raw)), raw.shape)
            entry = Picture(
                colour=colour,
                png=encode_png(colour, self.scale),
                empty=not np.any(unit > 0),
                resolution=(int(raw.shape[0]), int(raw.shape[1])),
                peak=peak,
                peak_at=(int(at[0]), int(at[1])) if peak > 0 else None,
                share_above_half=float(np.mean(raw > 0.5 * peak)) if peak > 0 else 0.0,
            )
        self._pictures[key] = entry
        if len(self._pictures) > _COLOUR_CACHE:
            self._pictures.popitem(last=False)
        return entry

    def overlay(self, settings: Settings) -> np.ndarray:
        """The picture with the coloured map blended in (:func:`render.blend`), uint8."""
        entry = self.picture(settings)
        if entry.colour is None or entry.empty:
            return self.rgb
        return render.blend(self.rgb, entry.colour, settings.alpha)

    def overlay_png(self, settings: Settings) -> bytes:
        """The overlay as PNG bytes, enlarged to the screen."""
        return encode_png(self.overlay(settings), self.scale)

    def snapshot_png(self, settings: Settings) -> bytes:
        """The view as one PNG (pinned overlay, live overlay, heatmap), for static viewers."""
        gap = np.full((self.rgb.shape[0], 6, 3), 255, dtype=np.uint8)
        panels = []
        if self.pinned is not None:
            panels += [self.overlay(self.pinned), gap]
        entry = self.picture(settings)
        heat = entry.colour if entry.colour is not None else np.full_like(self.rgb, 235)
        panels += [self.overlay(settings), gap, heat]
        return render.to_png(np.concatenate(panels, axis=1), scale=self.scale)

    # ----------------------------------------------------------------- text

    def label(self, cls: int) -> str:
        """``"index: name"``, or the index alone when the class has no name."""
        name = self.class_names[cls]
        return f"{cls}: {name}" if name != str(cls) else name

    def method_label(self, method: str) -> str:
        """The method's display name, from ``gw.METHODS``."""
        return METHODS[method].label

    def target_options(self) -> list[tuple[str, int]]:
        """The top-k classes first, as ``"name (probability)"``, then every other class."""
        top = [
            (f"{self.class_names[c]} ({classes.percent(float(self.probabilities[c]))})", c)
            for c in self.top_classes
        ]
        chosen = set(self.top_classes)
        rest = [
            (f"#{c} {name}" if name != str(c) else name, c)
            for c, name in enumerate(self.class_names)
            if c not in chosen
        ]
        return top + rest

    def contrast_options(self) -> list[tuple[str, int | None]]:
        """``("off", None)``, then the classes in the order of :meth:`target_options`."""
        return [("off", None), *self.target_options()]

    def method_options(self) -> list[tuple[str, str]]:
        """``(label, name)`` of every method offered."""
        return [(METHODS[name].label, name) for name in self.methods]

    def method_tooltips(self) -> list[str]:
        """One tooltip per method offered: its label, where it works, its paper."""
        tips = []
        for name in self.methods:
            method = METHODS[name]
            where = f" (only at layer {self.cam_layer})" if name == "cam" else ""
            tips.append(f"{method.label}{where}: {method.paper}")
        return tips

    def find_class(self, text: str) -> int:
        """The class for what was typed (see :func:`classes.lookup_class`).

        Raises:
            classes.ClassLookupError: the message says what to type instead.
        """
        return classes.lookup_class(text, self.class_names)

    def caption(self, settings: Settings) -> str:
        """HTML naming the method, class, contrast, evidence, layer, and the numbers."""
        cls = settings.target
        rank = int(np.sum(self.probabilities > self.probabilities[cls])) + 1
        method = self.method_label(settings.method)
        head = (
            f"{method} ({EVIDENCE_LABELS[settings.evidence]}) of class "
            f"<b>{html.escape(self.label(cls))}</b>: score {self.scores[cls]:.2f}, probability "
            f"{classes.percent(float(self.probabilities[cls]))} (rank {rank} of "
            f"{len(self.probabilities)})"
        )
        if settings.contrast is not None:
            other = settings.contrast
            head += (
                f", <b>rather than</b> <b>{html.escape(self.label(other))}</b> (score "
                f"{self.scores[other]:.2f}, probability "
                f"{classes.percent(float(self.probabilities[other]))}): the map explains the "
                f"difference of scores, {self.scores[cls] - self.scores[other]:+.2f}"
            )
        entry = self.picture(settings)
        where = f"layer <code>{html.escape(settings.layer)}</code>"
        if entry.resolution is not None:
            where += f" ({entry.resolution[0]}x{entry.resolution[1]})"
        lines = [f"{head}, at {where}."]
        if entry.note:
            lines.append(entry.note)
        elif entry.empty:
            lines.append(
                "The map has no positive value here: nothing at this layer counts as "
                f"{EVIDENCE_LABELS[settings.evidence]} this class, so only the picture is shown."
            )
        elif entry.peak_at is not None and entry.resolution is not None:
            row, col = entry.peak_at
            lines.append(
                f"Map maximum {entry.peak:.3g} at row {row}, column {col} of the "
                f"{entry.resolution[0]}x{entry.resolution[1]} grid; "
                f"{entry.share_above_half:.0%} of the grid is above half the maximum."
            )
        scores = self._faithfulness.get(settings.map_key)
        if scores is not None:
            text = (
                f"Faithfulness ({scores['steps']} steps; Petsiuk et al. 2018): deletion AUC "
                f"<b>{scores['deletion']:.3f}</b> (lower is better), insertion AUC "
                f"<b>{scores['insertion']:.3f}</b> (higher is better)"
            )
            reference = self._references.get(cls)
            if reference is not None:
                text += (
                    f"; for comparison, a random map {reference['random_deletion']:.3f} / "
                    f"{reference['random_insertion']:.3f}, a centre map "
                    f"{reference['centre_deletion']:.3f} / {reference['centre_insertion']:.3f}"
                )
            lines.append(text + ".")
        if self.pinned is not None:
            lines.append(f"Pinned beside it: {self.describe(self.pinned)}.")
        return "<div style='line-height:1.5'>" + "<br>".join(lines) + "</div>"

    def describe(self, settings: Settings) -> str:
        """A one-line description of a view, for the pinned picture's title."""
        text = (
            f"{self.method_label(settings.method)}, "
            f"{EVIDENCE_LABELS[settings.evidence]} {html.escape(self.label(settings.target))}"
        )
        if settings.contrast is not None:
            text += f" rather than {html.escape(self.label(settings.contrast))}"
        return (
            f"{text}, layer <code>{html.escape(settings.layer)}</code>, alpha {settings.alpha:.2f}"
        )

    # ----------------------------------------------------------------- faithfulness

    def faithfulness(
        self, settings: Settings, *, steps: int = 32, references: bool = False
    ) -> dict[str, float]:
        """Deletion and insertion AUCs of the current map (Petsiuk et al. 2018); cached.

        Args:
            settings: the view.
            steps: steps of each curve (``steps + 1`` forwards each, batched).
            references: also score a random map and a centre map of the same class,
                for comparison (shown in the caption).

        Returns:
            ``{"deletion": auc, "insertion": auc}``.
        """
        from .metrics import faithfulness as fm

        key = settings.map_key
        found = self._faithfulness.get(key)
        if found is None or found["steps"] != steps:
            heat = self.heatmap(settings)[None]
            if not np.any(heat > 0):
                raise ValueError(
                    "this map has no positive value, so it ranks no pixel above another: "
                    "there is nothing to score. Choose another layer, class or evidence."
                )
            target = settings.target
            deleted = fm.deletion(self.model, self.inputs, heat, target, steps=steps)
            inserted = fm.insertion(self.model, self.inputs, heat, target, steps=steps)
            found = {
                "deletion": deleted.auc,
                "insertion": inserted.auc,
                "steps": steps,
                "deletion_baseline": deleted.baseline,
                "insertion_baseline": inserted.baseline,
            }
            self._faithfulness[key] = found
        if references and settings.target not in self._references:
            size = self.sizes[settings.layer]
            scores = {}
            for name, heat in (
                ("random", fm.random_map((1, *size), seed=0)),
                ("centre", fm.centre_map((1, *size))),
            ):
                scores[f"{name}_deletion"] = fm.deletion(
                    self.model, self.inputs, heat, settings.target, steps=steps
                ).auc
                scores[f"{name}_insertion"] = fm.insertion(
                    self.model, self.inputs, heat, settings.target, steps=steps
                ).auc
            self._references[settings.target] = scores
        return {"deletion": found["deletion"], "insertion": found["insertion"]}

    def cached_faithfulness(self, settings: Settings) -> dict[str, Any] | None:
        """The faithfulness scores of this view's map if computed, else None."""
        return self._faithfulness.get(settings.map_key)

    # ----------------------------------------------------------------- pin and export

    def pin(self, settings: Settings) -> None:
        """Keep ``settings`` as the pinned view (drawn from the caches)."""
        self.pinned = settings

    def unpin(self) -> None:
        """Forget the pinned view."""
        self.pinned = None

    def manifest(self, settings: Settings) -> dict[str, Any]:
        """What a reader needs to redo the picture: model, layer, classes, method, ..."""
        from . import __version__

        model = type(self.model)
        method = METHODS[settings.method]

        def named(cls: int | None) -> dict[str, Any] | None:
            if cls is None:
                return None
            return {
                "index": cls,
                "name": self.class_names[cls],
                "score": float(self.scores[cls]),
                "probability": float(self.probabilities[cls]),
            }

        entry = self.picture(settings)
        scores = self._faithfulness.get(settings.map_key)
        return {
            "model": f"{model.__module__}.{model.__qualname__}",
            "layer": settings.layer,
            "map_resolution": list(entry.resolution) if entry.resolution else None,
            "class": named(settings.target),
            "contrast": named(settings.contrast),
            "method": {"name": method.name, "label": method.label, "paper": method.paper},
            "evidence": settings.evidence,
            "alpha": settings.alpha,
            "colormap": settings.colormap,
            "input_shape": [int(s) for s in self.inputs.shape],
            "gradcam_widgets_version": __version__,
            "faithfulness": None if scores is None else dict(scores),
        }

    def export(self, settings: Settings, path: str | Path) -> tuple[Path, Path]:
        """Write the overlay as PNG at ``path`` and the manifest beside it, suffix ``.json``.

        The PNG is the picture at its own size, blended by :func:`render.overlay` (the
        command line's pixels); a picture smaller than the screen's is written enlarged,
        as shown.

        Returns:
            The two paths written.
        """
        picture_path = Path(path)
        manifest_path = picture_path.with_suffix(".json")
        if manifest_path == picture_path:
            raise ValueError(f"{path} ends in .json: give the picture's path, e.g. view.png.")
        if not picture_path.parent.is_dir():
            raise ValueError(f"cannot write {picture_path}: no such directory.")
        if self.scale > 1:  # a small picture: as on screen, enlarged
            ones = np.ones((self.scale, self.scale, 1), dtype=np.uint8)
            drawn = np.kron(self.overlay(settings), ones)
        elif self.available(settings):
            drawn = self.image
        else:  # at the picture's own size, not the screen's
            drawn = render.overlay(
                self.image, self.heatmap(settings), alpha=settings.alpha, colormap=settings.colormap
            )
        PILImage.fromarray(drawn).save(picture_path, format="PNG")
        manifest = self.manifest(settings)
        manifest["image"] = picture_path.name
        manifest["image_size"] = [int(drawn.shape[0]), int(drawn.shape[1])]
        manifest_path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
        return picture_path, manifest_path


def _start_layer(model: Any, batch: Any, layers: Sequence[str]) -> str:
    """The engine's default layer if offered, else the last layer.

    On a CNN that is the last spatial layer. On a vision transformer whose head reads
    the class token, the last candidates act token by token after the last attention and
    their maps are empty by construction; the default is the last layer the class
    token reads (see ``engine._default_layer``).
    """
    if len(layers) > 1:
        try:
            default = engine.default_layer(model, batch)
        except ValueError:  # no candidate of its own: only the given names are maps
            return layers[-1]
        if default in layers:
            return default
    return layers[-1]
