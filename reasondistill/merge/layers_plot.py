"""Charts of the layer-wise analysis (matplotlib Figure + Agg: no pyplot state, no display).

plot_layers: one model: update heatmap (module x layer) and each split's accuracy drop per layer.
plot_update_iterations / plot_importance_iterations: a repeat block's analyses, one panel per
group (arm), rows = layer x module (or layer), columns = iterations, mean over seeds.
"""

from __future__ import annotations

import math
from pathlib import Path

from matplotlib.figure import Figure


def _layer_rows(rows: list[dict]) -> list[dict]:
    return [r for r in rows if r["layer"] is not None and r["module"] != "all"]


def plot_layers(rows: list[dict], splits: list[str], path: str | Path, title: str = "") -> None:
    """Left: rel. update per module (rows) and layer (columns); right: drop per layer per split."""
    body = _layer_rows(rows)
    layers = sorted({r["layer"] for r in body})
    modules = sorted({r["module"] for r in body})
    grid = [[math.nan] * len(layers) for _ in modules]
    for r in body:
        grid[modules.index(r["module"])][layers.index(r["layer"])] = r["rel_update"]
    fig = Figure(figsize=(10.0, max(3.5, 0.3 * len(modules) + 1.5)))
    ax, bx = fig.subplots(1, 2, width_ratios=[3, 2])
    im = ax.imshow(grid, aspect="auto", cmap="viridis")
    ax.set_xticks(range(len(layers)), [str(i) for i in layers])
    ax.set_yticks(range(len(modules)), modules, fontsize=7)
    ax.set_xlabel("layer")
    ax.set_title("||theta_t - theta_0|| / ||theta_0||", fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.046)
    width = 0.8 / max(1, len(splits))
    per_layer = {r["layer"]: r for r in rows if r["module"] == "all"}
    for j, split in enumerate(splits):
        xs = [i + (j - (len(splits) - 1) / 2) * width for i in range(len(layers))]
        drops = [per_layer[layer].get(f"drop_{split}") for layer in layers]  # None: not measured
        bx.bar(xs, [math.nan if d is None else 100 * d for d in drops], width, label=split)
    bx.axhline(0, color="black", linewidth=0.6)
    bx.set_xticks(range(len(layers)), [str(i) for i in layers])
    bx.set_xlabel("layer reset to theta_0")
    bx.set_ylabel("accuracy drop (points)")
    if splits:
        bx.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def _mean(values: list[float]) -> float:
    values = [v for v in values if v is not None and not math.isnan(v)]
    return sum(values) / len(values) if values else math.nan


def plot_update_iterations(analyses: list[dict], path: str | Path, title: str = "") -> None:
    """analyses: [{"group", "iter", "rows"}]; heatmap rows "L<layer> <module>", columns iterations."""
    groups = list(dict.fromkeys(a["group"] for a in analyses))
    keys = sorted({(r["layer"], r["module"]) for a in analyses for r in _layer_rows(a["rows"])})
    iters = sorted({a["iter"] for a in analyses})
    fig = Figure(
        figsize=(2.2 + 2.4 * len(groups) * max(1, len(iters)) ** 0.5, max(4.0, 0.22 * len(keys) + 1.5))
    )
    axes = fig.subplots(1, len(groups), squeeze=False)[0]
    grids = []
    for g in groups:
        cells: dict[tuple, list[float]] = {}
        for a in analyses:
            if a["group"] == g:
                for r in _layer_rows(a["rows"]):
                    cells.setdefault((r["layer"], r["module"], a["iter"]), []).append(r["rel_update"])
        grids.append([[_mean(cells.get((lay, mod, it), [])) for it in iters] for lay, mod in keys])
    top = max((v for grid in grids for row in grid for v in row if not math.isnan(v)), default=1.0)
    for ax, g, grid in zip(axes, groups, grids, strict=True):
        im = ax.imshow(grid, aspect="auto", cmap="viridis", vmin=0, vmax=top)
        ax.set_xticks(range(len(iters)), [str(i) for i in iters])
        ax.set_xlabel("iteration")
        ax.set_title(g or "all", fontsize=9)
        ax.set_yticks(
            range(len(keys)), [f"L{lay} {mod}" for lay, mod in keys] if ax is axes[0] else [], fontsize=6
        )
    fig.colorbar(im, ax=list(axes), fraction=0.03)
    fig.suptitle(
        (title + ": " if title else "")
        + "relative update ||theta_t - theta_0|| / ||theta_0|| (mean over seeds)",
        fontsize=10,
    )
    fig.savefig(path, dpi=110, bbox_inches="tight")


def plot_importance_iterations(
    analyses: list[dict], splits: list[str], path: str | Path, title: str = ""
) -> None:
    """One panel per (group, split): rows layers, columns iterations, colour = accuracy drop."""
    groups = list(dict.fromkeys(a["group"] for a in analyses))
    layers = sorted({r["layer"] for a in analyses for r in _layer_rows(a["rows"])})
    iters = sorted({a["iter"] for a in analyses})
    panels = [(g, s) for g in groups for s in splits]
    if not panels:
        return
    cols = min(4, len(panels))
    nrows = math.ceil(len(panels) / cols)
    fig = Figure(figsize=(2.0 + 2.6 * cols, 1.0 + (0.35 * len(layers) + 1.2) * nrows))
    axes = fig.subplots(nrows, cols, squeeze=False).reshape(-1)
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    for ax, (g, s) in zip(axes, panels, strict=False):
        cells: dict[tuple, list[float]] = {}
        for a in analyses:
            if a["group"] != g:
                continue
            for r in a["rows"]:
                if r["module"] == "all" and r.get(f"drop_{s}") is not None:
                    cells.setdefault((r["layer"], a["iter"]), []).append(100 * r[f"drop_{s}"])
        grid = [[_mean(cells.get((lay, it), [])) for it in iters] for lay in layers]
        im = ax.imshow(grid, aspect="auto", cmap="RdBu_r", vmin=-50, vmax=50)
        ax.set_xticks(range(len(iters)), [str(i) for i in iters], fontsize=7)
        ax.set_yticks(range(len(layers)), [f"L{lay}" for lay in layers], fontsize=7)
        ax.set_title(f"{g or 'all'}: {s}", fontsize=8)
    fig.colorbar(im, ax=list(axes), fraction=0.03, label="accuracy drop (points)")
    fig.suptitle(
        (title + ": " if title else "") + "accuracy drop when one layer is reset to theta_0", fontsize=10
    )
    fig.savefig(path, dpi=110, bbox_inches="tight")
