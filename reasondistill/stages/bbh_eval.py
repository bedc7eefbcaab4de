"""`bbh_eval` stage: BIG-Bench-Hard 3-shot CoT accuracy of a model, as a recipe step.

The evaluation of white-box KD with CoT (Do, Doddipatla & Knill, arXiv 2511.05184) on BBH
(Suzgun et al., arXiv 2210.09261), scored as evaluate/bbh.py does (matching the published BBH
per-task results). The same evaluation as `reasondistill eval`, but hashed, cached and
reportable: out_dir/metrics.json holds one group per task plus `average` (macro: the mean of the
per-task accuracies, the mean of their Wilson bounds as its interval), in the shared metrics
shape, so a `report` stage tabulates and contrasts it; out_dir/predictions.jsonl every answer.

```yaml
kind: bbh_eval
model: {stage: student}
bbh_dir: data/bbh               # <task>.json files; few-shot prompts from cot-prompts/ in or beside it
limit: 50                       # first N examples per task (None: all)
```
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from reasondistill.artifacts import METRICS_FILE, PREDICTIONS_FILE, Artifact
from reasondistill.config import ModelSource
from reasondistill.records import write_json_atomic, write_jsonl_atomic
from reasondistill.stages.base import STAGES, Stage, StageConfig, StageContext
from reasondistill.stages.data import file_digest


class BBHEvalConfig(StageConfig):
    kind: Literal["bbh_eval"]
    model: ModelSource
    bbh_dir: str = Field(description="a directory of BBH <task>.json files (or one file)")
    prompts_dir: str | None = Field(None, description="cot-prompts/<task>.txt (default: found in or beside bbh_dir)")
    limit: int | None = Field(None, ge=1, description="first N examples of each task")
    batch_size: int = Field(16, ge=1)
    max_new_tokens: int = Field(256, ge=1)


class BBHEvalStage(Stage):
    Config = BBHEvalConfig
    produces = frozenset({Artifact.METRICS})

    @classmethod
    def fingerprint(cls, cfg: BBHEvalConfig) -> dict:
        """The task and prompt files' contents: editing them reruns the evaluation."""
        paths = [p for p in (cfg.bbh_dir, cfg.prompts_dir) if p and Path(p).exists()]
        return {p: file_digest(Path(p)) for p in paths}

    def run(self, ctx: StageContext) -> dict:
        from reasondistill.evaluate.bbh import evaluate_bbh, find_prompts
        from reasondistill.evaluate.generate import default_device
        from reasondistill.evaluate.metrics import log_metrics, trained_steps
        from reasondistill.models.load import load_model
        from reasondistill.tasks.bbh import load_bbh

        cfg: BBHEvalConfig = ctx.cfg
        tasks = load_bbh(Path(cfg.bbh_dir))  # every file parsed before the model loads
        prompts, _ = find_prompts(Path(cfg.bbh_dir), Path(cfg.prompts_dir) if cfg.prompts_dir else None, list(tasks))
        model, tokenizer = load_model(cfg.model.resolve(ctx), device=default_device())
        results = evaluate_bbh(
            model, tokenizer, tasks, prompts,
            batch_size=cfg.batch_size, max_new_tokens=cfg.max_new_tokens, limit=cfg.limit,
        )  # fmt: skip
        truncated = sum(m["prompts_truncated"] for m in results["tasks"].values())
        if truncated:  # the few-shot prefix lost its start to fit the context: say so
            ctx.log.warning("%s: %d BBH prompts were cut at the start to fit the context", ctx.name, truncated)
        average = {k: v for k, v in results["average"].items() if k != "micro"}
        write_jsonl_atomic(ctx.out_dir / PREDICTIONS_FILE, results["predictions"])
        write_json_atomic(ctx.out_dir / METRICS_FILE, {**results["tasks"], "average": average})
        steps = trained_steps(cfg.model.resolve(ctx)) if cfg.model.stage else 0
        log_metrics(ctx.out_dir, {**results["tasks"], "average": average}, steps, prefix="bbh")
        return {"tasks": len(results["tasks"]), "accuracy": average["accuracy"], "prompts_truncated": truncated}


STAGES.register(
    "bbh_eval", BBHEvalStage, description="BIG-Bench-Hard 3-shot CoT accuracy of a model (cached, reportable)",
    paper="arXiv 2511.05184",
)
