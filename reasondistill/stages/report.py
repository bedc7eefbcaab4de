"""`report` stage: one table and one plot over evaluate instances.

Outputs: out_dir/results.json (all numbers plus each instance's matrix coordinates),
out_dir/results.md, out_dir/results.png. A matrix-expanded `evals` entry arrives here as
all its instances (the pipeline expands it); their labels come from each stage's
stage.json.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from reasondistill.records import write_json_atomic
from reasondistill.report.plot import plot_accuracy
from reasondistill.report.results import build_results, load_eval, to_markdown
from reasondistill.stages.base import STAGES, Ref, Stage, StageConfig, StageContext


class ReportConfig(StageConfig):
    kind: Literal["report"]
    evals: list[Ref] = Field(min_length=1)  # evaluate stages
    title: str | None = None


class ReportStage(Stage):
    Config = ReportConfig

    def run(self, ctx: StageContext) -> dict:
        cfg: ReportConfig = ctx.cfg
        evals = [load_eval(ctx.path(ref), ref) for ref in cfg.evals]
        results = build_results(evals, cfg.title)
        out = ctx.out_dir
        # Each file is replaced atomically; the pipeline's completion marker comes after all three.
        plot_accuracy(results, out / "results.tmp.png")
        (out / "results.tmp.png").replace(out / "results.png")
        (out / "results.md.tmp").write_text(to_markdown(results), encoding="utf-8")
        (out / "results.md.tmp").replace(out / "results.md")
        write_json_atomic(out / "results.json", results)
        return {"evals": len(evals), "splits": results["splits"]}


STAGES.register("report", ReportStage)
