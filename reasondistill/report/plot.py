"""Report charts (matplotlib, no display needed): the metric per instance with its interval, over
seeds, and over the iterations of a repeat block."""

from __future__ import annotations

import textwrap
from pathlib import Path

from matplotlib.figure import Figure  # Figure + Agg canvas: no pyplot global state, no GUI backend

from reasondistill.report.results import ITER, value


def _scale(results: dict) -> tuple[float, str]:
    metric = results.get("metric", "accuracy")
    return (100.0, "accuracy %") if metric == "accuracy" else (1.0, metric)


def plot_accuracy(results: dict, path: str | Path) -> None:
    """Grouped bars: one group per instance, one bar per split (group), 95% CI whiskers if given."""
    evals, splits = results["evals"], results["splits"]
    metric, (k, label) = results.get("metric", "accuracy"), _scale(results)
    width = 0.8 / max(1, len(splits))
    fig = Figure(figsize=(max(4.0, 1.2 * len(evals) * max(1, len(splits)) ** 0.5 + 2), 4.0))
    ax = fig.add_subplot()
    for j, split in enumerate(splits):
        xs, ys, lo, hi = [], [], [], []
        for i, e in enumerate(evals):
            v, low, high = value(e["metrics"].get(split), metric)
            if v is None:
                continue
            xs.append(i + (j - (len(splits) - 1) / 2) * width)
            ys.append(k * v)
            # max(0, .): a bound that misses the value only by float rounding (1e-18) must not
            # become a negative error bar, which matplotlib refuses.
            lo.append(0.0 if low is None else max(0.0, k * (v - low)))
            hi.append(0.0 if high is None else max(0.0, k * (high - v)))
        ax.bar(xs, ys, width, yerr=[lo, hi], capsize=3, label=split)
    ax.set_xticks(range(len(evals)), [e["name"] for e in evals], rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(f"{label} (95% CI)")
    if metric == "accuracy":
        ax.set_ylim(0, 100)
    ax.set_title(_wrap(results.get("title") or label, fig, 12), fontsize=10)
    if splits:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def plot_over_seeds(results: dict, path: str | Path) -> None:
    """Two panels over the over-seeds groups (one group per matrix cell, seed aside):
    accuracy mean with ±1 std whiskers and each seed's value as a dot, one bar per split; and
    mean generated tokens per answer (what label-first evaluation saves)."""
    groups, splits = results["over_seeds"], results["splits"]
    k, label = _scale(results)
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
            ys.append(k * st["mean"])
            err.append(k * (st["std"] or 0.0))
            toks.append(st.get("tokens") or 0.0)
            dots_x += [i + offset] * len(st["values"])
            dots_y += [k * v for v in st["values"].values()]
        bars = acc_ax.bar(xs, ys, width, yerr=err, capsize=3, label=split, alpha=0.8)
        acc_ax.scatter(dots_x, dots_y, s=14, color="dimgray", edgecolors="white", linewidths=0.5, zorder=3)
        top = max([top, *(y + e for y, e in zip(ys, err, strict=True)), *dots_y])
        tok_ax.bar(xs, toks, width, color=bars.patches[0].get_facecolor() if bars.patches else None)
    acc_ax.set_ylabel(f"{label} (mean ± std; dots: seeds)")
    if k == 100.0:
        acc_ax.set_ylim(0, min(100.0, max(5.0, 1.15 * top)))  # zoomed: small accuracies stay readable
    acc_ax.set_title(_wrap((results.get("title") or label) + " — over seeds", fig, 12), fontsize=10)
    if splits:
        acc_ax.legend(fontsize=8)
    tok_ax.set_ylabel("generated tokens / answer")
    axes = ", ".join(dict.fromkeys(k for g in groups for k in g["coords"]))
    tok_ax.set_xticks(range(len(groups)), labels, rotation=30, ha="right", fontsize=8)
    tok_ax.set_xlabel(axes)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def plot_iterations(results: dict, path: str | Path) -> None:
    """The metric against the repeat block's iteration: one line per split and group of the other
    coordinates (mean over seeds, ±1 std band where there are several seeds)."""
    metric, (k, label) = results.get("metric", "accuracy"), _scale(results)
    lines: dict[tuple, dict[int, list[float]]] = {}
    for e in results["evals"]:
        if ITER not in e["coords"]:
            continue
        rest = ",".join(f"{a}={b}" for a, b in e["coords"].items() if a not in (ITER, "seed"))
        for split in results["splits"]:
            v = value(e["metrics"].get(split), metric)[0]
            if v is not None:
                lines.setdefault((rest, split), {}).setdefault(int(e["coords"][ITER]), []).append(k * v)
    fig = Figure(figsize=(6.5, 4.0))
    ax = fig.add_subplot()
    for (rest, split), points in sorted(lines.items()):
        its = sorted(points)
        means = [sum(points[i]) / len(points[i]) for i in its]
        ax.plot(its, means, marker="o", label=f"{rest} {split}".strip())
        if any(len(points[i]) > 1 for i in its):
            sd = [(sum((x - m) ** 2 for x in points[i]) / max(len(points[i]) - 1, 1)) ** 0.5 for i, m in zip(its, means, strict=True)]
            ax.fill_between(its, [m - s for m, s in zip(means, sd, strict=True)], [m + s for m, s in zip(means, sd, strict=True)], alpha=0.15)
    ax.set_xlabel("iteration")
    ax.set_ylabel(label)
    ax.set_title(_wrap((results.get("title") or label) + " — over iterations", fig, 12), fontsize=10)
    if lines:
        ax.legend(fontsize=7)
        ax.set_xticks(sorted({i for pts in lines.values() for i in pts}))
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def _wrap(title: str, fig: Figure, chars_per_inch: int) -> str:
    """Break a long recipe title into lines that fit the figure (matplotlib clips, never wraps)."""
    return "\n".join(textwrap.wrap(title, max(20, int(fig.get_figwidth() * chars_per_inch))))
