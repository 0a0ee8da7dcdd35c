"""What every Keras backend's gradient step provides (TensorFlow, JAX, PyTorch)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

#: Calls of a TensorFlow step run eagerly before it is compiled. Tracing and compiling a
#: ``keras.applications`` model costs about three to six eager calls (benchmarks/
#: zoo_keras.py), and a compiled call a small fraction of one. Renting before buying, as
#: in the ski-rental problem: a model explained once pays one eager call (the first call
#: is as fast as the Keras example's eager tape), one explained often pays for the
#: compilation once, on the third call, and then runs compiled. JAX compiles at once:
#: eager JAX compiles every operation on first sight, which costs more than compiling
#: the whole step; PyTorch has nothing to compile.
EAGER_CALLS = 2


@dataclass
class StepState:
    """What a step learned while it ran.

    Attributes:
        missing: feature maps the score turned out not to depend on (no gradient).
        traces: how often the Python function was traced for compilation; a test of
            "no retrace" counts these, never wall time.
        eager_runs: how often the step ran eagerly (see :data:`EAGER_CALLS`).
    """

    missing: set[str] = field(default_factory=set)
    traces: int = 0
    eager_runs: int = 0


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
