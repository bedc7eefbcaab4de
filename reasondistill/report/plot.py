"""Accuracy bar chart with 95% CI error bars (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure  # Figure + Agg canvas: no pyplot global state, no GUI backend


def plot_accuracy(results: dict, path: str | Path) -> None:
    """Grouped bars: one group per eval instance, one bar per split, Wilson 95% CI whiskers."""
    evals, splits = results["evals"], results["splits"]
    width = 0.8 / max(1, len(splits))
    fig = Figure(figsize=(max(4.0, 1.2 * len(evals) * max(1, len(splits)) ** 0.5 + 2), 4.0))
    ax = fig.add_subplot()
    for j, split in enumerate(splits):
        xs, ys, lo, hi = [], [], [], []
        for i, e in enumerate(evals):
            m = e["metrics"].get(split)
            if m is None or m.get("accuracy") is None:
                continue
            xs.append(i + (j - (len(splits) - 1) / 2) * width)
            ys.append(100 * m["accuracy"])
            lo.append(100 * (m["accuracy"] - m["ci_low"]))
            hi.append(100 * (m["ci_high"] - m["accuracy"]))
        ax.bar(xs, ys, width, yerr=[lo, hi], capsize=3, label=split)
    ax.set_xticks(range(len(evals)), [e["name"] for e in evals], rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("accuracy % (95% CI)")
    ax.set_ylim(0, 100)
    ax.set_title(results.get("title") or "Accuracy")
    if splits:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
