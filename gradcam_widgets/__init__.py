"""gradcam_widgets: learn and use Grad-CAM with PyTorch or Keras.

The public API, loaded lazily (PEP 562) so that ``import gradcam_widgets`` imports
neither torch nor TensorFlow::

    import gradcam_widgets as gw

    gw.candidate_layers(model, inputs)            # layers with a spatial feature map
    maps = gw.gradcam(model, inputs, target=281)  # float32 (N, h, w)
    picture = gw.overlay(image, maps[0], alpha=0.4)
    gw.Explorer(model, inputs, image=image)       # sliders for layer, class, alpha
    gw.METHODS                                    # "gradcam", "gradcam++", "hirescam", "cam"
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

#: The one version source: pyproject.toml reads it (``[tool.setuptools.dynamic]``).
__version__ = "0.1.0"

_EXPORTS = {
    "candidate_layers": "engine",
    "gradcam": "engine",
    "gradcam_multi": "engine",
    "explain": "engine",
    "Explanation": "engine",
    "cam": "engine",
    "predict": "engine",
    "METHODS": "methods",
    "Method": "methods",
    "register_method": "methods",
    "clear_caches": "backends",
    "overlay": "render",
    "Explorer": "explorer",
    "data": None,
    "datasets": None,
    "metrics": None,
    "typing": None,
    "zoo": None,
    "figures": None,
    "exercises": None,
    "engine": None,
    "methods": None,
    "saliency": None,
}

__all__ = [
    "METHODS",
    "Explanation",
    "Explorer",
    "Method",
    "cam",
    "candidate_layers",
    "clear_caches",
    "data",
    "datasets",
    "engine",
    "exercises",
    "explain",
    "figures",
    "gradcam",
    "gradcam_multi",
    "methods",
    "metrics",
    "overlay",
    "predict",
    "register_method",
    "saliency",
    "typing",
    "zoo",
]

if TYPE_CHECKING:  # pragma: no cover
    from . import (
        data,
        datasets,
        engine,
        exercises,
        figures,
        methods,
        metrics,
        saliency,
        typing,
        zoo,
    )
    from .backends import clear_caches
    from .engine import Explanation, cam, candidate_layers, explain, gradcam, gradcam_multi, predict
    from .explorer import Explorer
    from .methods import METHODS, Method, register_method
    from .render import overlay


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'gradcam_widgets' has no attribute {name!r}")
    module_name = _EXPORTS[name]
    if module_name is None:
        return importlib.import_module(f".{name}", __name__)
    return getattr(importlib.import_module(f".{module_name}", __name__), name)


def __dir__() -> list[str]:
    return __all__
