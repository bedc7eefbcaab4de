"""`layers_report` stage: the layer analyses of a repeat block drawn over its iterations.

```yaml
layers_report: {kind: layers_report, analyses: [layers]}   # every iteration of every arm
```
Each `layers` instance (stages/layers.py) is grouped by its matrix coordinates without `seed`
(the arm) and placed at its iteration. Outputs: layers_all.csv (every row of every analysis,
with group, seed and iter columns), layers_update.png (relative update per layer x module over
iterations, one panel per group, mean over seeds), layers_importance.png (accuracy drop per
layer over iterations, per group and split) and layers_report.md (per group and iteration: mean
relative update and the update-importance Spearman correlation of each split).
"""

from __future__ import annotations

import json
from typing import Literal

from pydantic import Field

from reasondistill.artifacts import Artifact, read_metrics
from reasondistill.config import Ref
from reasondistill.stages.base import STAGES, Stage, StageConfig, StageContext


class LayersReportConfig(StageConfig):
    kind: Literal["layers_report"]
    analyses: list[Ref(Artifact.METRICS)] = Field(min_length=1, description="layers stages (every iteration)")
    title: str | None = None


class LayersReportStage(Stage):
    Config = LayersReportConfig
    produces = frozenset({Artifact.REPORT})

    @classmethod
    def check_plan(cls, cfg: LayersReportConfig, configs) -> list[str]:
        for i, name in enumerate(cfg.analyses):
            kinds = {c.kind for c in configs(str(name))}
            if kinds and kinds != {"layers"}:
                return [
                    f"analyses.{i}: stage {name!r} is of kind {'/'.join(sorted(kinds))}; this needs layers stages"
                ]
        return []

    def run(self, ctx: StageContext) -> dict:
        from reasondistill.merge.layers import write_csv
        from reasondistill.merge.layers_plot import plot_importance_iterations, plot_update_iterations

        cfg: LayersReportConfig = ctx.cfg
        analyses = [_load(ctx.path(ref)) for ref in cfg.analyses]
        splits = list(dict.fromkeys(s for a in analyses for s in a["metrics"] if s != "update"))
        rows = [
            {"group": a["group"], "seed": a["seed"], "iter": a["iter"], "stage": a["name"], **r}
            for a in analyses
            for r in a["rows"]
        ]
        out = ctx.out_dir
        write_csv(out / "layers_all.csv", rows)
        for name, draw in (
            ("layers_update.png", lambda p: plot_update_iterations(analyses, p, cfg.title or "")),
            (
                "layers_importance.png",
                lambda p: plot_importance_iterations(analyses, splits, p, cfg.title or ""),
            ),
        ):
            draw(out / f"{name}.tmp.png")
            if (out / f"{name}.tmp.png").exists():
                (out / f"{name}.tmp.png").replace(out / name)
        (out / "layers_report.md.tmp").write_text(_markdown(analyses, splits, cfg.title), encoding="utf-8")
        (out / "layers_report.md.tmp").replace(out / "layers_report.md")
        return {"analyses": len(analyses), "splits": splits}


def _load(stage_dir) -> dict:
    import csv

    from reasondistill.stages.layers import CSV_FILE

    label = json.loads((stage_dir / "stage.json").read_text(encoding="utf-8"))
    coords = {str(k): str(v) for k, v in (label.get("coords") or {}).items()}
    with open(stage_dir / CSV_FILE, encoding="utf-8") as f:
        rows = [_parse(r) for r in csv.DictReader(f)]
    return {
        "name": label.get("name", stage_dir.name),
        "group": ",".join(f"{k}={v}" for k, v in coords.items() if k != "seed"),
        "seed": coords.get("seed", ""),
        "iter": int(label["iteration"]) if label.get("iteration") is not None else 0,
        "rows": rows,
        "metrics": read_metrics(stage_dir),
    }


def _parse(row: dict) -> dict:
    out: dict = {}
    for k, v in row.items():
        if k == "module":
            out[k] = v
        elif v == "":
            out[k] = None
        else:
            out[k] = int(v) if k in ("layer", "params") else float(v)
    return out


def _markdown(analyses: list[dict], splits: list[str], title: str | None) -> str:
    """Per group and iteration: mean relative update and Spearman(update, drop) per split (mean over seeds)."""
    lines = [f"# {title or 'Layer-wise analysis'}", ""]
    lines += [
        "Spearman correlation between a layer's relative update and its accuracy drop when reset "
        "(negative: the layers that matter moved least, the claim of arXiv 2503.02103); mean over seeds.",
        "",
    ]
    head = ["group", "iter", "seeds", "rel. update (mean over layers)", *(f"spearman {s}" for s in splits)]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    keys = sorted({(a["group"], a["iter"]) for a in analyses})
    for group, it in keys:
        members = [a for a in analyses if a["group"] == group and a["iter"] == it]
        cells = [
            group or "—",
            str(it),
            str(len(members)),
            _fmt([a["metrics"]["update"]["rel_update"] for a in members]),
        ]
        cells += [_fmt([(a["metrics"].get(s) or {}).get("spearman") for a in members]) for s in splits]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "![update](layers_update.png)", "", "![importance](layers_importance.png)"]
    return "\n".join(lines) + "\n"


def _fmt(values: list) -> str:
    values = [v for v in values if v is not None]
    return "—" if not values else f"{sum(values) / len(values):.3g}"


STAGES.register(
    "layers_report",
    LayersReportStage,
    description="layer analyses over a repeat block's iterations: update and importance heatmaps",
    paper="arXiv 2503.02103",
)
