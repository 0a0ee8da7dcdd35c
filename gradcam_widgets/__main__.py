"""Command line: Grad-CAM of a photo with the offline EfficientNet-Lite0.

Usage::

    python -m gradcam_widgets IMAGE [--framework torch|keras] [--target CLASS]
                             [--contrast CLASS] [--evidence for|against]
                             [--method NAME] [--layer NAME] [--alpha A] -o out.png

Writes the heatmap blended over the photo, at the photo's size, as a PNG, and prints
the top-5 ImageNet classes. ``CLASS`` is an index (``285``) or a name (``"Egyptian cat"``,
``egyptian_cat``); by default the top class is explained. Bad input (a missing file, a
file that is not an image, an unknown class or layer) prints one line on stderr and
exits with status 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .methods import METHODS

MODEL = "efficientnet_lite0"


def gradient_methods() -> list[str]:
    """The registered methods the command line offers (those computed from gradients)."""
    return [name for name, method in METHODS.items() if method.needs_gradients]


class CliError(Exception):
    """A problem with the user's input, reported as one line and exit status 2."""


def _alpha(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m gradcam_widgets",
        description=(
            "Grad-CAM heatmap of a photo with the pretrained EfficientNet-Lite0 "
            "(ImageNet, works offline). Writes the overlay as a PNG at the photo's size "
            "and prints the top-5 classes."
        ),
    )
    parser.add_argument("image", help="the photo (any format Pillow reads)")
    parser.add_argument(
        "--framework",
        choices=("torch", "keras"),
        default="torch",
        help="run the network in PyTorch or in Keras (default: torch)",
    )
    parser.add_argument(
        "--target",
        metavar="CLASS",
        help="class to explain: an index 0-999 or an ImageNet name (default: the top class)",
    )
    parser.add_argument(
        "--contrast",
        metavar="CLASS",
        help="explain the target's score minus this class's: why the target rather than it",
    )
    parser.add_argument(
        "--evidence",
        choices=("for", "against"),
        default="for",
        help="'against' shows the regions that lower the score (default: for)",
    )
    methods = gradient_methods()
    parser.add_argument(
        "--method",
        choices=methods,
        default="gradcam",
        help="; ".join(f"{n}: {METHODS[n].label} ({METHODS[n].paper})" for n in methods),
    )
    parser.add_argument(
        "--layer",
        metavar="NAME",
        help="layer whose feature map is used (default: head, the last one before pooling)",
    )
    parser.add_argument(
        "--alpha",
        type=_alpha,
        default=0.4,
        help="heatmap opacity, 0 (photo only) to 1 (heatmap only); default 0.4",
    )
    parser.add_argument("-o", "--output", required=True, help="where to write the PNG")
    return parser


def read_image(path: str) -> np.ndarray:
    """Read a photo as uint8 RGB ``(H, W, 3)``, turned upright by its EXIF orientation.

    Raises:
        CliError: If the file is missing or is not an image Pillow can read.
    """
    file = Path(path)
    if not file.is_file():
        raise CliError(f"no such file: {path}")
    try:
        with Image.open(file) as opened:
            upright = ImageOps.exif_transpose(opened)
            return np.asarray(upright.convert("RGB"))
    except (UnidentifiedImageError, OSError, ValueError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise CliError(f"cannot read {path} as an image: {reason}") from None


def parse_target(text: str | None, class_names: Sequence[str]) -> int | None:
    """Turn ``--target`` into a class index, with :func:`gradcam_widgets.classes.lookup_class`.

    Args:
        text: An index (``"285"``) or a class name, matched ignoring case and with
            ``_`` read as a space (or a part of a name only one class contains);
            ``None`` for the top class.
        class_names: The model's class names.

    Returns:
        The index, or ``None``.

    Raises:
        CliError: For an index out of range, an unknown name, or a name two classes share.
    """
    if text is None:
        return None
    from gradcam_widgets.classes import ClassLookupError, lookup_class

    try:
        return lookup_class(text, class_names)
    except ClassLookupError as err:
        raise CliError(str(err)) from None


def run(args: argparse.Namespace) -> int:
    """Do the work of :func:`main` on parsed arguments.

    Raises:
        CliError: For bad input.
    """
    import gradcam_widgets as gw
    from gradcam_widgets import zoo

    image = read_image(args.image)
    output = Path(args.output)
    if not output.parent.is_dir():
        raise CliError(f"cannot write {args.output}: no such directory {output.parent}")
    class_names = gw.data.imagenet_class_names()
    target = parse_target(args.target, class_names)
    contrast = parse_target(args.contrast, class_names)

    try:
        net = zoo.load(MODEL, framework=args.framework)
    except ImportError as err:
        raise CliError(str(err).splitlines()[0]) from None
    batch = net.preprocess(image)
    top5 = net.decode(gw.predict(net.model, batch)[0], top=5)
    if target is None:
        target = top5[0][0]
    layer = args.layer or net.default_layer
    if args.layer is not None:
        candidates = gw.candidate_layers(net.model, batch)
        if layer not in candidates:
            raise CliError(
                f"unknown layer {layer!r}; the block outputs are {', '.join(net.layers)} "
                f"(any of the {len(candidates)} names gradcam_widgets.candidate_layers "
                "lists works)"
            )
    try:
        heatmap = gw.gradcam(
            net.model,
            batch,
            target=target,
            layer=layer,
            method=args.method,
            contrast=contrast,
            evidence=args.evidence,
        )[0]
    except ValueError as err:
        raise CliError(" ".join(str(err).split())) from None
    picture = gw.overlay(image, heatmap, alpha=args.alpha)
    try:
        Image.fromarray(picture).save(output, format="PNG")
    except OSError as err:
        raise CliError(f"cannot write {args.output}: {err}") from None

    print(f"top-5 classes ({MODEL}, {args.framework}):")
    for index, name, probability in top5:
        print(f"  {index:4d}  {name:<28s} {probability:6.1%}")
    height, width = picture.shape[:2]
    what = f"class {target} ({net.class_names[target]})"
    if contrast is not None:
        what += f" rather than {contrast} ({net.class_names[contrast]})"
    if args.evidence == "against":
        what = f"evidence against {what}"
    print(
        f"{METHODS[args.method].label} of {what} at layer {layer!r} "
        f"-> {args.output} ({width}x{height})"
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line.

    Args:
        argv: The arguments after the program name; ``None`` reads ``sys.argv``.

    Returns:
        The exit status: 0 on success, 2 for bad input (argparse's usage errors too).
    """
    args = _parser().parse_args(argv)
    if args.framework == "keras":
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        return run(args)
    except CliError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
