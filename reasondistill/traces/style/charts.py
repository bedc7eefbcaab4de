"""PNG charts of a style analysis, one bar group per trace group (correct / wrong / unknown).

style_pivots.png   pivots per trace by type, and the distribution of distinct pivot types
style_phases.png   share of words per phase (stacked), and trace length in words
"""

from __future__ import annotations

from pathlib import Path

from reasondistill.traces.style.lexicon import PIVOT_TYPES
from reasondistill.traces.style.phases import PHASES
from reasondistill.traces.style.profile import TraceProfile
from reasondistill.traces.style.summary import GROUPS

CHARTS = ("style_pivots.png", "style_phases.png")
_COLORS = ("#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3")


def plot_style(
    groups: dict[str, dict], profiles: dict[str, list[TraceProfile]], out_dir: Path, title: str
) -> list[Path]:
    """Write CHARTS into `out_dir` (each via a temp name, then renamed); returns their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [g for g in GROUPS if groups.get(g, {}).get("n")]
    paths = []
    # 1. pivots by type, and distinct types
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    width = 0.8 / max(len(names), 1)
    for j, g in enumerate(names):
        xs = [i + j * width for i in range(len(PIVOT_TYPES))]
        a.bar(
            xs,
            [groups[g][f"{t}_per_trace"] for t in PIVOT_TYPES],
            width,
            label=f"{g} (n={groups[g]['n']})",
            color=_COLORS[j],
        )
        dist = groups[g]["distinct_pivot_types_dist"]
        b.bar(
            [k + j * width for k in range(5)],
            [dist[str(k)] for k in range(5)],
            width,
            label=g,
            color=_COLORS[j],
        )
    a.set_xticks([i + 0.4 - width / 2 for i in range(len(PIVOT_TYPES))], PIVOT_TYPES)
    a.set_ylabel("pivots per trace (mean)")
    a.legend(fontsize=8)
    b.set_xticks([k + 0.4 - width / 2 for k in range(5)], [str(k) for k in range(5)])
    b.set_xlabel("distinct pivot types in a trace")
    b.set_ylabel("share of traces")
    fig.suptitle(f"{title}: pivots", fontsize=10)
    fig.tight_layout()
    paths.append(_save(fig, out_dir / CHARTS[0]))
    plt.close(fig)
    # 2. phase shares, and length
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    bottom = [0.0] * len(names)
    for k, ph in enumerate(PHASES):
        vals = [groups[g][f"share_{ph}"] for g in names]
        a.bar(names, vals, bottom=bottom, label=ph, color=_COLORS[k])
        bottom = [x + y for x, y in zip(bottom, vals, strict=True)]
    a.set_ylabel("share of words (mean over traces)")
    a.legend(fontsize=8)
    for j, g in enumerate(names):
        b.hist([p.words for p in profiles[g]], bins=30, alpha=0.6, label=g, color=_COLORS[j])
    b.set_xlabel("words per trace")
    b.set_ylabel("traces")
    if names:
        b.legend(fontsize=8)
    fig.suptitle(f"{title}: phases and length", fontsize=10)
    fig.tight_layout()
    paths.append(_save(fig, out_dir / CHARTS[1]))
    plt.close(fig)
    return paths


def _save(fig, path: Path) -> Path:
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp, dpi=100)
    tmp.replace(path)
    return path
