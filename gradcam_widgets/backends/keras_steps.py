"""What every Keras backend's gradient step provides (TensorFlow, JAX, PyTorch)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np


@dataclass
class StepState:
    """What a step learned while it was traced.

    Attributes:
        missing: feature maps the score turned out not to depend on (no gradient).
        traces: how often the Python function was traced (compiled steps), or run
            (eager steps); a test of "no retrace" counts these, never wall time.
    """

    missing: set[str] = field(default_factory=set)
    traces: int = 0


class Step(Protocol):
    """One compiled (or eager) forward and backward pass for fixed layers and targets.

    Called as ``step(batch, specs)`` with a float32 ``(N, H, W, C)`` numpy batch and
    ``specs`` an int64 ``(n_sets, 2, N)`` array (target row, contrast row; see
    :meth:`~gradcam_widgets.backends.base.TargetSet.stacked`), it returns backend
    tensors: ``{"logits", "activations": [...], "gradients": [[...] per set]}`` and,
    when a ``Dense`` layer produced the logits, its input ``"features"`` and ``"kernel"``.
    """

    state: StepState

    def __call__(self, batch: np.ndarray, specs: np.ndarray) -> dict[str, Any]:
        """Run the pass."""
