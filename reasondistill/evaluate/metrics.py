"""Accuracy with a Wilson score interval (honest at the small n of smoke runs)."""

from __future__ import annotations

import math
from collections.abc import Sequence


def wilson_interval(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for k successes in n trials; (0, 1) when n == 0 (no information).

    Unlike the normal approximation it stays inside [0, 1] and is not degenerate at k = 0 or
    k = n, which matters for accuracies measured on tens of examples.
    """
    if n == 0:
        return 0.0, 1.0
    if not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    p = k / n
    denom = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, center - half), min(1.0, center + half)


def accuracy_summary(correct: Sequence[bool], generated_tokens: Sequence[int]) -> dict:
    """{n, correct, accuracy, ci_low, ci_high, mean_generated_tokens} of one split.

    accuracy and mean_generated_tokens are None when n == 0.
    """
    n, k = len(correct), sum(bool(c) for c in correct)
    lo, hi = wilson_interval(k, n)
    return {
        "n": n,
        "correct": k,
        "accuracy": k / n if n else None,
        "ci_low": lo,
        "ci_high": hi,
        "mean_generated_tokens": sum(generated_tokens) / len(generated_tokens) if generated_tokens else None,
    }
