"""Accuracy with a Wilson score interval (honest at the small n of smoke runs)."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path


def wilson_interval(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for k successes in n trials; (0, 1) when n == 0 (no information).

    Unlike the normal approximation it stays inside [0, 1] and is not degenerate at k = 0 or
    k = n, which matters for accuracies measured on tens of examples.
    """
    if n == 0:
        return 0.0, 1.0
    if not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    return _wilson(k / n, n, z)


def _wilson(p: float, n: float, z: float) -> tuple[float, float]:
    denom = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(max(0.0, p * (1 - p)) / n + z * z / (4 * n * n)) / denom
    return max(0.0, center - half), min(1.0, center + half)


def stratified_wilson(strata: Sequence[tuple[int, int]], z: float = 1.96) -> tuple[float, float]:
    """95% interval of the equal-weight mean of several accuracies (k_i of n_i each): the
    stratified Wilson interval (Yan & Su, Statistics in Biopharmaceutical Research 2010).

    It is Wilson's interval around the macro mean with the effective size
    n_eff = 1 / sum_i (w_i^2 / n_i), w_i = 1/T: with equal n per stratum, n_eff is the total
    count, so 0 of 6 items over 3 tasks gives Wilson(0, 6) = [0, 0.39], where averaging the
    per-task Wilson bounds gave [0, 0.66]. The tasks are fixed strata: the interval says how
    precisely these tasks' items measure their mean, not how it would move over other tasks.
    Strata with n = 0 are left out; none left: (0, 1).
    """
    scored = [(k, n) for k, n in strata if n]
    if not scored:
        return 0.0, 1.0
    w = 1 / len(scored)
    mean = sum(w * k / n for k, n in scored)
    n_eff = 1 / sum(w * w / n for _, n in scored)
    return _wilson(mean, n_eff, z)


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


def log_metrics(out_dir: str | Path, metrics: dict[str, dict], step: int = 0, prefix: str = "eval") -> None:
    """Every numeric metric of {group: {metric: value}} as a TensorBoard scalar `eval/<group>/<metric>`
    in out_dir/logs, at `step` (the evaluated model's training steps, so evaluation points sit on
    the training curve). Rewritten whole, so a rerun of an interrupted stage leaves no duplicates."""
    import shutil

    from torch.utils.tensorboard import SummaryWriter  # imports tensorboard: only where used

    logs = Path(out_dir) / "logs"
    shutil.rmtree(logs, ignore_errors=True)
    with SummaryWriter(str(logs)) as writer:
        for group, values in metrics.items():
            for name, value in values.items():
                if isinstance(value, int | float) and not isinstance(value, bool):
                    writer.add_scalar(f"{prefix}/{group}/{name}", value, step)


def trained_steps(model_path: str | Path) -> int:
    """Optimizer steps of a model a train stage wrote (its train_state.json); 0 for any other model."""
    state = Path(model_path).parent / "train_state.json"
    try:
        return int(json.loads(state.read_text(encoding="utf-8"))["steps"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0
