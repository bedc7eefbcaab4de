"""`report` stage: one table and charts over metrics stages (evaluate, or any analysis stage).

`metric` (default accuracy) picks which of the shared-shape metrics (artifacts.read_metrics) is
tabulated, summarised over seeds, contrasted and plotted; instances of a repeat block add
out_dir/results_iterations.png (the metric over iterations).

Outputs: out_dir/results.json (all numbers plus each instance's matrix coordinates),
out_dir/results.md, out_dir/results.png (one bar per instance, 95% Wilson CIs) and, when
instances differ by a `seed` coordinate, out_dir/results_seeds.png (mean ± std over seeds,
each seed a dot, generated tokens per answer). `contrasts` add differences between groups
with standard errors (report/contrasts.py). A matrix-expanded `evals` entry arrives here as
all its instances (the pipeline expands it); their labels come from each stage's
stage.json.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from reasondistill.artifacts import Artifact
from reasondistill.config import Ref
from reasondistill.records import write_json_atomic
from reasondistill.report.contrasts import Contrast
from reasondistill.stages.base import STAGES, Stage, StageConfig, StageContext


class ReportConfig(StageConfig):
    kind: Literal["report"]
    evals: list[Ref(Artifact.METRICS)] = Field(min_length=1)
    title: str | None = None
    metric: str = Field("accuracy", description="which metric of the evals' metrics.json to report")
    contrasts: list[Contrast] = Field(
        default_factory=list, description="differences between over-seeds groups, e.g. {label, a: {arm: after}, b: {arm: before}}"
    )


class ReportStage(Stage):
    Config = ReportConfig
    produces = frozenset({Artifact.REPORT})

    def run(self, ctx: StageContext) -> dict:
        from reasondistill.report.plot import plot_accuracy, plot_iterations, plot_over_seeds
        from reasondistill.report.results import (
            ITER,
            ITERATIONS_CHART,
            SEEDS_CHART,
            build_results,
            load_eval,
            to_markdown,
        )

        cfg: ReportConfig = ctx.cfg
        evals = [load_eval(ctx.path(ref), ref) for ref in cfg.evals]
        results = build_results(evals, cfg.title, cfg.contrasts, cfg.metric)  # bad contrast/metric: no file
        out = ctx.out_dir
        # Each file is replaced atomically; the pipeline's completion marker comes after all of them.
        plot_accuracy(results, out / "results.tmp.png")
        (out / "results.tmp.png").replace(out / "results.png")
        if results["over_seeds"]:
            plot_over_seeds(results, out / "results_seeds.tmp.png")
            (out / "results_seeds.tmp.png").replace(out / SEEDS_CHART)
        if any(ITER in e["coords"] for e in evals):
            plot_iterations(results, out / "results_iterations.tmp.png")
            (out / "results_iterations.tmp.png").replace(out / ITERATIONS_CHART)
        (out / "results.md.tmp").write_text(to_markdown(results), encoding="utf-8")
        (out / "results.md.tmp").replace(out / "results.md")
        write_json_atomic(out / "results.json", results)
        return {"evals": len(evals), "splits": results["splits"]}


STAGES.register("report", ReportStage, description="one table and charts over metrics stages, with contrasts over seeds")
