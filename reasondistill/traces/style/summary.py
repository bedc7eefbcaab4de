"""Per-group style summaries (correct / wrong / unknown / all) and their markdown table.

A group's summary is a flat dict of numbers in the shared metrics shape (artifacts.read_metrics),
so a `report` stage can tabulate, contrast and chart any of them (`metric:
share_3of4_pivot_types`); shares are fractions in [0, 1]. The headline figure follows
arXiv 2504.01738: the share of traces with at least 3 of the 4 pivot types (96.1% of
successful R1 traces), with a 95% Wilson interval.
"""

from __future__ import annotations

import statistics
from collections import Counter

from reasondistill.evaluate.metrics import wilson_interval
from reasondistill.traces.style.lexicon import PIVOT_TYPES
from reasondistill.traces.style.phases import PHASES
from reasondistill.traces.style.profile import TraceProfile

GROUPS = ("correct", "wrong", "unknown")
HEADLINE = "share_3of4_pivot_types"
_ABBREV = {"framing": "F", "exploration": "E", "verification": "V", "synthesis": "S"}


def group_of(correct: bool | None) -> str:
    return "unknown" if correct is None else ("correct" if correct else "wrong")


def summarize(profiles: list[TraceProfile], groups: list[str]) -> dict[str, dict]:
    """{"all": ..., "correct": ..., "wrong": ..., "unknown": ...}: one summary per group
    (`groups[i]` is profile i's group); empty groups have n = 0 and no other numbers."""
    by: dict[str, list[TraceProfile]] = {g: [] for g in GROUPS}
    for p, g in zip(profiles, groups, strict=True):
        by[g].append(p)
    return {"all": group_summary(profiles), **{g: group_summary(by[g]) for g in GROUPS}}


def group_summary(ps: list[TraceProfile]) -> dict:
    """The numbers of one group of profiles (see the module docstring)."""
    n = len(ps)
    if n == 0:
        return {"n": 0}
    k3 = sum(p.distinct_pivot_types >= 3 for p in ps)
    lo, hi = wilson_interval(k3, n)
    # At k = 0 or k = n the bound equals the share only up to rounding (1 - 1e-16): clamp it, so
    # error bars drawn from it are never negative.
    lo, hi = min(lo, k3 / n), max(hi, k3 / n)
    words = sorted(p.words for p in ps)
    total_words = sum(words)
    out: dict = {
        "n": n,
        HEADLINE: k3 / n,
        f"{HEADLINE}_ci_low": lo,
        f"{HEADLINE}_ci_high": hi,
        "distinct_pivot_types_mean": statistics.fmean(p.distinct_pivot_types for p in ps),
        # Pooled over the group: every pivot over every word (long traces weigh more).
        "pivots_per_1k_words": 1000 * sum(p.total_pivots for p in ps) / total_words if total_words else 0.0,
        "pivots_per_trace": statistics.fmean(p.total_pivots for p in ps),
    }
    for t in PIVOT_TYPES:
        counts = [p.pivots[t] for p in ps]
        out[f"{t}_per_trace"] = statistics.fmean(counts)
        out[f"{t}_share_present"] = sum(c > 0 for c in counts) / n
    out.update(
        words_mean=statistics.fmean(words),
        words_median=statistics.median(words),
        words_p10=words[int(0.1 * (n - 1))],
        words_p90=words[int(0.9 * (n - 1))],
        tokens_mean=statistics.fmean(p.tokens for p in ps),
    )
    for ph in PHASES:
        out[f"share_{ph}"] = statistics.fmean(p.phase_share[ph] for p in ps)
        out[f"has_{ph}"] = sum(p.phase_words[ph] > 0 for p in ps) / n
    dist = Counter(p.distinct_pivot_types for p in ps)
    out["distinct_pivot_types_dist"] = {str(k): dist.get(k, 0) / n for k in range(len(PIVOT_TYPES) + 1)}
    seqs = Counter(phase_string(p.phases) for p in ps)
    out["top_phase_sequences"] = [[s, c / n] for s, c in seqs.most_common(5)]
    return out


def phase_string(phases: list[str]) -> str:
    """ "F E V S" for [framing, exploration, verification, synthesis]; "-" for no phase."""
    return " ".join(_ABBREV[p] for p in phases) or "-"


_ROWS = [
    ("n", "traces", "{:.0f}"),
    (HEADLINE, "≥3 of 4 pivot types", "{:.1%}"),
    ("distinct_pivot_types_mean", "distinct pivot types (mean)", "{:.2f}"),
    ("pivots_per_1k_words", "pivots per 1k words", "{:.1f}"),
    *[(f"{t}_per_trace", f"{t} per trace", "{:.2f}") for t in PIVOT_TYPES],
    ("words_mean", "words (mean)", "{:.1f}"),
    ("words_median", "words (median)", "{:.0f}"),
    ("tokens_mean", "tokens (mean)", "{:.1f}"),
    *[(f"share_{ph}", f"{ph} share of words", "{:.1%}") for ph in PHASES],
]


def markdown(groups: dict[str, dict], title: str = "Style profile") -> str:
    """A markdown table: one row per number, one column per group."""
    names = ["all", *GROUPS]
    lines = [f"# {title}", "", "| | " + " | ".join(names) + " |", "|" + "---|" * (len(names) + 1)]
    for key, label, f in _ROWS:
        cells = []
        for g in names:
            v = groups.get(g, {}).get(key)
            if key == HEADLINE and v is not None:
                lo, hi = groups[g][f"{HEADLINE}_ci_low"], groups[g][f"{HEADLINE}_ci_high"]
                cells.append(f"{v:.1%} [{lo:.1%}, {hi:.1%}]")
            else:
                cells.append("—" if v is None else f.format(v))
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += ["", "Most common phase sequences (F framing, E exploration, V verification, S synthesis):", ""]
    for g in names:
        top = groups.get(g, {}).get("top_phase_sequences")
        if top:
            lines.append(f"- {g}: " + "; ".join(f"`{s}` {share:.0%}" for s, share in top))
    return "\n".join(lines) + "\n"
