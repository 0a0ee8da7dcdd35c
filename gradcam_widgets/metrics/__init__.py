"""Measures of saliency maps, grouped by job (lessons 03-06).

* :mod:`.regions`: where a map puts its mass: :func:`region_share` (with
  :func:`ink_share` and :func:`top_share` built on it), :func:`corner_box`,
  :func:`upsample_maps`.
* :mod:`.pointing`: the pointing game (:func:`pointing_game`) and its chance level
  (:func:`random_baseline`).
* :mod:`.randomisation`: Adebayo et al.'s sanity check (:func:`cascading_randomization`,
  :func:`randomized_copy`, :func:`weighted_layers`), :func:`rank_correlation` and the
  :func:`edge_map` baseline.
* :mod:`.faithfulness`: deletion and insertion curves (import it as
  ``from gradcam_widgets.metrics import faithfulness``).

**One rule for all-zero maps.** A map with no positive value (or, for rank correlation,
no variation) carries no evidence: its share of any region is 0.0, never NaN; in the
pointing game it is a miss; its rank correlation with any map is 0.0.

Nothing here imports a framework at module level.
"""

from __future__ import annotations

from .pointing import pointing_game, random_baseline
from .randomisation import (
    CascadeResult,
    cascading_randomization,
    edge_map,
    randomized_copy,
    rank_correlation,
    weighted_layers,
)
from .regions import (
    CORNERS,
    Box,
    corner_box,
    ink_share,
    region_share,
    top_share,
    upsample_maps,
)

__all__ = [
    "CORNERS",
    "Box",
    "CascadeResult",
    "cascading_randomization",
    "corner_box",
    "edge_map",
    "ink_share",
    "pointing_game",
    "random_baseline",
    "randomized_copy",
    "rank_correlation",
    "region_share",
    "top_share",
    "upsample_maps",
    "weighted_layers",
]
