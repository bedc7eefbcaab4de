"""Contrasts between over-seeds groups: the differences a paper's questions are about, with error bars.

A contrast names two groups by their matrix coordinates (the seed axis aside), e.g. for
arXiv 2406.14511's first question, `{label: "after - before", a: {arm: after}, b: {arm: before}}`.
Per split it gives, in accuracy points:
- diff: mean_a - mean_b over seeds;
- se: the Welch standard error sqrt(std_a^2 / n_a + std_b^2 / n_b) (None with one seed);
- paired: {seed: acc_a - acc_b} for the seeds both groups have (same seed = same student
  init and data order, so a difference that keeps its sign across seeds is worth noting).
"""

from __future__ import annotations

import math

from pydantic import Field

from reasondistill.config import StrictModel
from reasondistill.errors import ReasonDistillError


class Contrast(StrictModel):
    label: str = Field(description="what the row answers, e.g. 'Q1: after - before'")
    a: dict[str, str] = Field(description="coordinates of the first group, e.g. {arm: after}")
    b: dict[str, str] = Field(description="coordinates of the group subtracted")


def _group(over_seeds: list[dict], coords: dict[str, str], label: str) -> dict:
    found = [g for g in over_seeds if all(g["coords"].get(k) == str(v) for k, v in coords.items())]
    if len(found) != 1:
        have = "; ".join(", ".join(f"{k}={v}" for k, v in g["coords"].items()) for g in over_seeds) or "none"
        what = "no" if not found else f"{len(found)}"
        raise ReasonDistillError(
            f"report: contrast {label!r}: {what} over-seeds group matches {coords}; groups: {have}"
        )
    return found[0]


def compute_contrasts(over_seeds: list[dict], contrasts: list) -> list[dict]:
    """One result per contrast (see the module docstring); raises on coordinates that name no group."""
    out = []
    for c in contrasts:
        c = Contrast.model_validate(c) if isinstance(c, dict) else c
        ga, gb = _group(over_seeds, c.a, c.label), _group(over_seeds, c.b, c.label)
        splits = {}
        for split in ga["splits"]:
            sa, sb = ga["splits"][split], gb["splits"].get(split)
            if sb is None or sa["mean"] is None or sb["mean"] is None:
                continue
            se = None
            if sa["std"] is not None and sb["std"] is not None:
                se = math.sqrt(sa["std"] ** 2 / len(sa["values"]) + sb["std"] ** 2 / len(sb["values"]))
            paired = {s: sa["values"][s] - sb["values"][s] for s in sa["values"] if s in sb["values"]}
            splits[split] = {"diff": sa["mean"] - sb["mean"], "se": se, "paired": paired}
        out.append({"label": c.label, "a": c.a, "b": c.b, "splits": splits})
    return out


def _pts(x: float | None, sign: bool = True, scale: float = 100.0) -> str:
    if x is None:
        return "—"
    if scale != 100.0:
        return f"{x:+.4g}" if sign else f"{x:.4g}"
    return f"{scale * x:+.1f}" if sign else f"{scale * x:.1f}"


def contrasts_markdown(contrasts: list[dict], splits: list[str], metric: str = "accuracy") -> list[str]:
    """Lines of a markdown table: one row per contrast, 'diff ± SE (paired per-seed diffs)' per split."""
    unit, scale = ("accuracy points", 100.0) if metric == "accuracy" else (metric, 1.0)
    lines = [
        f"## Contrasts ({unit}: mean difference ± standard error over seeds; per-seed differences)",
        "",
        "| contrast | " + " | ".join(splits) + " |",
        "|" + "---|" * (len(splits) + 1),
    ]
    for c in contrasts:
        cells = [c["label"]]
        for s in splits:
            st = c["splits"].get(s)
            if st is None:
                cells.append("—")
                continue
            paired = ", ".join(f"{k}: {_pts(v, scale=scale)}" for k, v in st["paired"].items())
            cells.append(f"{_pts(st['diff'], scale=scale)} ± {_pts(st['se'], sign=False, scale=scale)} ({paired})")
        lines.append("| " + " | ".join(cells) + " |")
    return lines
