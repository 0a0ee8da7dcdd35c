"""Measures of saliency maps, grouped by job (lessons 03-06).

* :mod:`.regions`: where a map puts its mass: :func:`region_share` (with
  :func:`ink_share` and :func:`top_share` built on it), :func:`corner_box`,
  :func:`upsample_maps`.
* :mod:`.pointing`: the pointing game (:func:`pointing_game`) and its chance level
  (:func:`random_baseline`).
* :mod:`.randomisation`: Adebayo et al.'s sanity check (:func:`cascading_randomization`,
  :func:`randomized_copy`, :func:`weighted_layers`), :func:`rank_correlation` and the
  :func:`edge_map` baseline.
* :mod:`.faithfulness`: does the score follow the map? :func:`deletion` and
  :func:`insertion` curves and their areas (Petsiuk et al. 2018), with the
  :func:`random_map` and :func:`centre_map` baselines to compare a map against.

**One rule for all-zero maps.** A map with no positive value (or, for rank correlation,
no variation) carries no evidence: its share of any region is 0.0, never NaN; in the
pointing game it is a miss; its rank correlation with any map is 0.0.

Nothing here imports a framework at module level.
"""

from __future__ import annotations

from ..typing import Box
from .faithfulness import (
    FaithfulnessCurve,
    centre_map,
    deletion,
    insertion,
    random_map,
)
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
    "FaithfulnessCurve",
    "cascading_randomization",
    "centre_map",
    "corner_box",
    "deletion",
    "edge_map",
    "ink_share",
    "insertion",
    "pointing_game",
    "random_baseline",
    "random_map",
    "randomized_copy",
    "rank_correlation",
    "region_share",
    "top_share",
    "upsample_maps",
    "weighted_layers",
]
