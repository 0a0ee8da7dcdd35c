"""Static matplotlib grids of Grad-CAM maps, for handouts, slides and printed lessons.

The Explorer answers one question at a time; a grid puts several answers side by side:

* :func:`layer_grid`: one image, several layers (early layers see edges at high
  resolution, late ones see objects at low resolution).
* :func:`class_grid`: one image, several classes (a map is class-discriminative: the
  "cat" map and the "dog" map of one photo differ).
* :func:`image_grid`: several images, one class each, for one or more layers (the
  lecture's table comparing the confusable digits 1, 7 and 9).
* :func:`weighted_sum`: the inside of one map: single feature maps ``A^k``, their
  weights, and the weighted sum that builds the CAM or Grad-CAM map.

Each grid gets all its maps from ONE engine call, and returns a
``matplotlib.figure.Figure`` made without pyplot (no global state, nothing shown twice);
it shows in Jupyter as the value of a cell and saves with ``fig.savefig("grid.png")``.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from . import classes, engine, render
from .backends import backend_for
from .methods import METHODS
from .render import image_from_inputs

__all__ = ["GridFigure", "class_grid", "image_grid", "layer_grid", "top_channels", "weighted_sum"]

Names = Sequence[str] | Mapping[int, str] | None


class GridFigure(Figure):
    """A matplotlib ``Figure`` that Jupyter draws as a PNG when it is a cell's value.

    Figures made without pyplot are not registered with Jupyter's inline backend, which
    would otherwise show them only as ``<Figure size ...>`` text.
    """

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        self.savefig(buffer, format="png", bbox_inches="tight")
        return buffer.getvalue()


def _pictures(model: Any, inputs: Any, images: Any, count: int) -> list[np.ndarray]:
    """One drawable picture per image: the given ones, or derived from ``inputs``.

    ``images`` is a list of pictures or an array whose first axis counts them.
    """
    if images is not None:
        pictures = list(images)
        if len(pictures) != count:
            raise ValueError(f"got {len(pictures)} pictures for {count} images.")
        return [render.as_rgb_uint8(p) for p in pictures]
    backend = backend_for(model)
    batch = backend.prepare(model, inputs)
    channels_first = not backend.channels_last
    return [
        render.as_rgb_uint8(image_from_inputs(batch[i : i + 1], channels_first))
        for i in range(count)
    ]


def _panels(
    count: int, columns: int | None, panel_size: float, picture: np.ndarray
) -> tuple[Figure, list]:
    """A figure with ``count`` axes in rows of ``columns`` (default: one row).

    Each panel is ``panel_size`` inches wide and as tall as the picture's aspect ratio
    asks, plus room for a two-line title.
    """
    columns = count if not columns else max(1, min(int(columns), count))
    rows = -(-count // columns)
    height = panel_size * picture.shape[0] / picture.shape[1] + 0.45
    figure = GridFigure(figsize=(panel_size * columns, height * rows + 0.4))
    grid = figure.subplots(rows, columns, squeeze=False).ravel()
    for extra in grid[count:]:
        figure.delaxes(extra)
    return figure, list(grid[:count])


def _blank(axis: Any) -> None:
    axis.set_xticks([])
    axis.set_yticks([])
    for spine in axis.spines.values():
        spine.set_visible(False)


def _label(cls: int, names: list[str], probabilities: np.ndarray) -> str:
    name = names[cls]
    head = f"{cls}: {name}" if name != str(cls) else name
    return f"{head} ({classes.percent(float(probabilities[cls]))})"


def _scores(model: Any, inputs: Any, class_names: Names) -> tuple[np.ndarray, list[str]]:
    logits = engine.predict(model, inputs)
    probabilities = classes.softmax(logits)
    return probabilities, classes.class_names(class_names, logits.shape[1])


def layer_grid(
    model: Any,
    inputs: Any,
    layers: Sequence[str] | None = None,
    target: int | None = None,
    image: np.ndarray | None = None,
    *,
    class_names: Names = None,
    alpha: float = 0.5,
    colormap: str = "jet",
    columns: int | None = None,
    panel_size: float = 2.2,
    method: str = "gradcam",
) -> Figure:
    """One image, several layers: the picture, then one overlay per layer.

    Args:
        model: a ``torch.nn.Module`` or ``keras.Model``.
        inputs: one preprocessed image (a batch of one) in the model's layout.
        layers: layer names, earliest first; default every candidate layer.
        target: the class to explain; ``None`` for the top class.
        image: the picture to draw under the maps; default derived from ``inputs``.
        class_names: list or dict of class names, for the title.
        alpha: the heatmap's weight in each overlay.
        colormap: a matplotlib colormap name.
        columns: panels per row (default all in one row).
        panel_size: width of one panel in inches.
        method: a gradient method of ``gw.METHODS``; its label titles the figure.

    Returns:
        A figure with ``1 + len(layers)`` axes, titled with each layer's name and its
        map's resolution.
    """
    layers = list(layers) if layers is not None else engine.candidate_layers(model, inputs)
    # One pass gives the logits with the maps: no separate forward for the title.
    result = engine.explain(model, inputs, [target], layers)
    maps = result.maps(method)
    probabilities = classes.softmax(result.logits)
    names = classes.class_names(class_names, result.logits.shape[1])
    cls = int(result.targets[0][0])
    picture = _pictures(model, inputs, None if image is None else [image], 1)[0]
    figure, axes = _panels(1 + len(layers), columns, panel_size, picture)
    axes[0].imshow(picture)
    axes[0].set_title("input", fontsize=9)
    for axis, layer in zip(axes[1:], layers, strict=True):
        heat = maps[layer][0]
        axis.imshow(render.overlay(picture, heat, alpha=alpha, colormap=colormap))
        axis.set_title(f"{layer}\n{heat.shape[0]}x{heat.shape[1]}", fontsize=9)
    for axis in axes:
        _blank(axis)
    label = METHODS[method].label
    figure.suptitle(f"{label} of class {_label(cls, names, probabilities[0])}, layer by layer")
    figure.tight_layout()
    return figure


def class_grid(
    model: Any,
    inputs: Any,
    targets: Sequence[int] | None = None,
    layer: str | None = None,
    image: np.ndarray | None = None,
    *,
    top_k: int = 3,
    class_names: Names = None,
    alpha: float = 0.5,
    colormap: str = "jet",
    columns: int | None = None,
    panel_size: float = 2.6,
    method: str = "gradcam",
) -> Figure:
    """One image, several classes: the picture, then one overlay per class.

    Args:
        model: a ``torch.nn.Module`` or ``keras.Model``.
        inputs: one preprocessed image (a batch of one) in the model's layout.
        targets: class indices; default the ``top_k`` predictions.
        layer: the layer; default the last candidate layer.
        image: the picture to draw under the maps; default derived from ``inputs``.
        top_k: how many top classes when ``targets`` is None.
        class_names: list or dict of class names.
        alpha: the heatmap's weight in each overlay.
        colormap: a matplotlib colormap name.
        columns: panels per row (default all in one row).
        panel_size: width of one panel in inches.
        method: a gradient method of ``gw.METHODS``; its label titles the figure.

    Returns:
        A figure with ``1 + len(targets)`` axes, titled with each class and probability;
        all maps come from one forward pass (:func:`~gradcam_widgets.gradcam_multi`).
    """
    probabilities, names = _scores(model, inputs, class_names)
    if targets is None:
        targets = [int(c) for c in np.argsort(-probabilities[0], kind="stable")[:top_k]]
    targets = [int(t) for t in targets]
    per_class = engine.gradcam_multi(model, inputs, targets, layer, method=method)
    layer_name = next(iter(per_class[0]))
    picture = _pictures(model, inputs, None if image is None else [image], 1)[0]
    figure, axes = _panels(1 + len(targets), columns, panel_size, picture)
    axes[0].imshow(picture)
    axes[0].set_title("input", fontsize=9)
    for axis, cls, maps in zip(axes[1:], targets, per_class, strict=True):
        axis.imshow(render.overlay(picture, maps[layer_name][0], alpha=alpha, colormap=colormap))
        axis.set_title(_label(cls, names, probabilities[0]), fontsize=9)
    for axis in axes:
        _blank(axis)
    figure.suptitle(f"{METHODS[method].label} at layer {layer_name}, class by class")
    figure.tight_layout()
    return figure


def image_grid(
    model: Any,
    inputs: Any,
    target: int | Sequence[int] | None = None,
    layers: str | Sequence[str] | None = None,
    images: Sequence[np.ndarray] | np.ndarray | None = None,
    *,
    class_names: Names = None,
    row_labels: Sequence[str] | None = None,
    alpha: float = 0.5,
    colormap: str = "jet",
    panel_size: float = 1.8,
    method: str = "gradcam",
) -> Figure:
    """Several images, one class each: one row per image, one column per layer.

    Args:
        model: a ``torch.nn.Module`` or ``keras.Model``.
        inputs: a batch of preprocessed images in the model's layout.
        target: ``None`` for each image's top class, an int for the same class in every
            row, or one class per image.
        layers: a layer name or a list; default the last candidate layer.
        images: the pictures to draw under the maps (one per image); default derived
            from ``inputs``.
        class_names: list or dict of class names.
        row_labels: a label per row (e.g. the true digit); default none.
        alpha: the heatmap's weight in each overlay.
        colormap: a matplotlib colormap name.
        panel_size: width of one panel in inches.
        method: a gradient method of ``gw.METHODS``; its label titles the figure.

    Returns:
        A figure with ``N * (1 + len(layers))`` axes: per row, the picture and one overlay
        per layer. All maps come from one :func:`~gradcam_widgets.gradcam` call.
    """
    probabilities, names = _scores(model, inputs, class_names)
    count = probabilities.shape[0]
    if target is None:
        chosen = probabilities.argmax(axis=1)
    elif isinstance(target, (int, np.integer)):
        chosen = np.full(count, int(target))
    else:
        chosen = np.asarray(list(target), dtype=int)
    if layers is None:
        layers = [engine.candidate_layers(model, inputs)[-1]]
    elif isinstance(layers, str):
        layers = [layers]
    layers = list(layers)
    maps = engine.gradcam(
        model, inputs, target=[int(c) for c in chosen], layer=layers, method=method
    )
    pictures = _pictures(model, inputs, images, count)
    if row_labels is not None and len(row_labels) != count:
        raise ValueError(f"got {len(row_labels)} row labels for {count} images.")
    figure = GridFigure(figsize=(panel_size * (1 + len(layers)), panel_size * 1.15 * count))
    axes = figure.subplots(count, 1 + len(layers), squeeze=False)
    for row in range(count):
        cls = int(chosen[row])
        axes[row, 0].imshow(pictures[row])
        title = f"class {_label(cls, names, probabilities[row])}"
        if row_labels is not None:
            title = f"{row_labels[row]}\n{title}"
        axes[row, 0].set_title(title, fontsize=8)
        for column, layer in enumerate(layers, start=1):
            heat = maps[layer][row]
            axes[row, column].imshow(
                render.overlay(pictures[row], heat, alpha=alpha, colormap=colormap)
            )
            if row == 0:
                axes[row, column].set_title(f"{layer}\n{heat.shape[0]}x{heat.shape[1]}", fontsize=8)
    for axis in axes.ravel():
        _blank(axis)
    figure.tight_layout()
    return figure


def top_channels(activations: np.ndarray, weights: np.ndarray, top: int = 4) -> np.ndarray:
    """The channels that add most to ``sum_k w_k A^k``, largest contribution first.

    A channel's contribution is ``w_k * mean(A^k)``, its share of the map's average (on a
    GAP network, its share of the class score minus the bias).

    Args:
        activations: one image's feature maps, channels last, ``(h, w, K)``.
        weights: one weight per channel, ``(K,)``.
        top: how many channels.

    Returns:
        ``top`` channel indices, int.
    """
    maps, kernel = _channels_last(activations, weights)
    contribution = kernel * maps.mean(axis=(0, 1))
    return np.argsort(-contribution, kind="stable")[:top]


def _channels_last(activations: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    maps = np.asarray(activations, dtype=np.float64)
    kernel = np.asarray(weights, dtype=np.float64).reshape(-1)
    if maps.ndim == 4 and maps.shape[0] == 1:
        maps = maps[0]
    if maps.ndim != 3 or maps.shape[-1] != kernel.size:
        raise ValueError(
            f"activations {np.shape(activations)} and weights {np.shape(weights)} do not fit: "
            "give one image's maps channels last, (h, w, K), and K weights."
        )
    return maps, kernel


def weighted_sum(
    activations: np.ndarray,
    weights: np.ndarray,
    top: int = 4,
    *,
    symbol: str = "w",
    relu: bool = False,
    image: np.ndarray | None = None,
    panel_size: float = 1.7,
) -> Figure:
    """How a CAM or Grad-CAM map is built: single feature maps, weights, weighted sum.

    Top row: the ``top`` channels' maps ``A^k`` as the layer outputs them (each on its own
    grey scale), with their weights. Bottom row: the same maps times their weights on one
    shared red-blue scale, the sum of all the other channels, and the total
    ``sum_k w_k A^k`` (then ``ReLU`` of it, for Grad-CAM). The bottom row adds up exactly.

    Args:
        activations: one image's feature maps, channels last, ``(h, w, K)``.
        weights: one weight per channel, ``(K,)``: ``w_k^c`` for CAM, ``alpha_k^c`` for
            Grad-CAM.
        top: how many single channels to draw, chosen by :func:`top_channels`.
        symbol: the weight's name in the titles (``"w"`` or ``"alpha"``).
        relu: add a last panel with ``ReLU`` of the sum (Grad-CAM's final step).
        image: the input picture, drawn in the top row's last panel if given.
        panel_size: width of one panel in inches.

    Returns:
        A figure with two rows of ``top + 2 + relu`` panels.
    """
    maps, kernel = _channels_last(activations, weights)
    chosen = [int(k) for k in top_channels(maps, kernel, top)]
    parts = [kernel[k] * maps[..., k] for k in chosen]
    total = maps @ kernel
    rest = total - sum(parts)
    columns = len(chosen) + 2 + int(relu)
    figure = GridFigure(figsize=(panel_size * columns, panel_size * 2.5))
    axes = figure.subplots(2, columns, squeeze=False)
    limit = max(float(np.abs(p).max()) for p in [*parts, rest, total]) or 1.0
    tex = "\\alpha" if symbol == "alpha" else symbol
    shared = {"cmap": "RdBu_r", "vmin": -limit, "vmax": limit}
    for column, (k, part) in enumerate(zip(chosen, parts, strict=True)):
        axes[0, column].imshow(maps[..., k], cmap="gray")
        axes[0, column].set_title(f"$A^{{{k}}}$\n${tex}_{{{k}}}$ = {kernel[k]:.3g}", fontsize=8)
        axes[1, column].imshow(part, **shared)
        sign = "" if column == 0 else "+ "
        axes[1, column].set_title(f"{sign}${tex}_{{{k}}} A^{{{k}}}$", fontsize=8)
    axes[1, len(chosen)].imshow(rest, **shared)
    axes[1, len(chosen)].set_title(f"+ {maps.shape[-1] - len(chosen)} other\nchannels", fontsize=8)
    shown = axes[1, len(chosen) + 1].imshow(total, **shared)
    axes[1, len(chosen) + 1].set_title(f"$= \\sum_k {tex}_k A^k$", fontsize=8)
    if relu:
        axes[1, -1].imshow(np.maximum(total, 0.0), cmap="jet")
        axes[1, -1].set_title("ReLU(sum)\njet, own scale", fontsize=8)
    if image is not None:
        axes[0, -1].imshow(image, cmap="gray" if np.ndim(image) == 2 else None)
        axes[0, -1].set_title("input", fontsize=8)
    for axis in axes.ravel():
        _blank(axis)
    for axis in axes[0, len(chosen) :]:
        if not axis.images:
            axis.set_visible(False)
    # the red-blue scale belongs to the weighted maps and their sum, not to the ReLU panel:
    # with that panel last, the bar goes on the row's left, away from it
    figure.colorbar(
        shown,
        ax=list(axes[1, : len(chosen) + 2]),
        fraction=0.02,
        pad=0.01,
        location="left" if relu else "right",
    )
    figure.suptitle(f"top row: single feature maps $A^k$; bottom row: ${tex}_k A^k$, added up")
    return figure
