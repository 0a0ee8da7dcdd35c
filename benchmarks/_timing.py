"""Side-by-side timing: every contender runs in each round, in turn, and medians compare.

Interleaving the contenders round by round spreads the machine's noise over all of them,
so the ratios printed are meaningful even when the absolute times drift.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def measure(contenders: dict[str, Callable[[], object]], rounds: int = 7, warmup: int = 2):
    """Return {name: median seconds} over ``rounds`` interleaved rounds."""
    for _ in range(warmup):
        for run in contenders.values():
            run()
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, run in contenders.items():
            start = time.perf_counter()
            run()
            samples[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in samples.items()}


def report(title: str, medians: dict[str, float], rows: list[tuple[str, str, str, float | None]]):
    """Print medians, then each ``(label, numerator, denominator, target)`` ratio."""
    print(f"\n== {title}")
    for name, seconds in medians.items():
        print(f"  {name:<44} {seconds * 1000:9.1f} ms")
    print("  ratios (target):")
    all_met = True
    for label, numerator, denominator, target in rows:
        ratio = medians[numerator] / medians[denominator]
        verdict = ""
        if target is not None:
            met = ratio <= target
            all_met &= met
            verdict = f"(<= {target})  {'OK' if met else 'MISSED'}"
        print(f"  {label:<44} {ratio:6.2f}  {verdict}")
    return all_met
