"""Accuracy bar chart with 95% CI error bars (matplotlib, no display needed)."""

from __future__ import annotations

import textwrap
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
    ax.set_title(_wrap(results.get("title") or "Accuracy", fig, 12), fontsize=10)
    if splits:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def plot_over_seeds(results: dict, path: str | Path) -> None:
    """Two panels over the over-seeds groups (one group per matrix cell, seed aside):
    accuracy mean with ±1 std whiskers and each seed's value as a dot, one bar per split; and
    mean generated tokens per answer (what label-first evaluation saves)."""
    groups, splits = results["over_seeds"], results["splits"]
    width = 0.8 / max(1, len(splits))
    labels = [",".join(g["coords"].values()) or "—" for g in groups]
    fig = Figure(figsize=(max(6.0, 0.9 * len(groups) * max(1, len(splits)) ** 0.5 + 3), 7.0))
    acc_ax, tok_ax = fig.subplots(2, 1, sharex=True, height_ratios=[2, 1])
    top = 0.0
    for j, split in enumerate(splits):
        offset = (j - (len(splits) - 1) / 2) * width
        xs, ys, err, toks, dots_x, dots_y = [], [], [], [], [], []
        for i, g in enumerate(groups):
            st = g["splits"].get(split)
            if st is None or st["mean"] is None:
                continue
            xs.append(i + offset)
            ys.append(100 * st["mean"])
            err.append(100 * (st["std"] or 0.0))
            toks.append(st.get("tokens") or 0.0)
            dots_x += [i + offset] * len(st["values"])
            dots_y += [100 * v for v in st["values"].values()]
        bars = acc_ax.bar(xs, ys, width, yerr=err, capsize=3, label=split, alpha=0.8)
        acc_ax.scatter(dots_x, dots_y, s=14, color="dimgray", edgecolors="white", linewidths=0.5, zorder=3)
        top = max([top, *(y + e for y, e in zip(ys, err, strict=True)), *dots_y])
        tok_ax.bar(xs, toks, width, color=bars.patches[0].get_facecolor() if bars.patches else None)
    acc_ax.set_ylabel("accuracy % (mean ± std; dots: seeds)")
    acc_ax.set_ylim(0, min(100.0, max(5.0, 1.15 * top)))  # zoomed: small accuracies stay readable
    acc_ax.set_title(_wrap((results.get("title") or "Accuracy") + " — over seeds", fig, 12), fontsize=10)
    if splits:
        acc_ax.legend(fontsize=8)
    tok_ax.set_ylabel("generated tokens / answer")
    axes = ", ".join(dict.fromkeys(k for g in groups for k in g["coords"]))
    tok_ax.set_xticks(range(len(groups)), labels, rotation=30, ha="right", fontsize=8)
    tok_ax.set_xlabel(axes)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def _wrap(title: str, fig: Figure, chars_per_inch: int) -> str:
    """Break a long recipe title into lines that fit the figure (matplotlib clips, never wraps)."""
    return "\n".join(textwrap.wrap(title, max(20, int(fig.get_figwidth() * chars_per_inch))))
