"""`evaluate` stage: accuracy of a model on splits of a data stage, with 95% Wilson intervals.

Questions are prompted and answers parsed through `template`, which must be the one the model
was trained with: a model directory that records its template (templates/base.py) is checked
against it before anything is read or generated.

Output: out_dir/predictions.jsonl (one row per example and split) and out_dir/metrics.json
{split: {n, correct, accuracy, ci_low, ci_high, mean_generated_tokens}}, both written
atomically at the end, and the metrics as TensorBoard scalars in out_dir/logs (at the evaluated
model's training step); per-split partial files let a killed run resume.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from pydantic import Field, model_validator

from reasondistill.artifacts import METRICS_FILE, PREDICTIONS_FILE, Artifact, read_examples
from reasondistill.config import ModelSource, Ref
from reasondistill.records import Example, write_json_atomic, write_jsonl_atomic
from reasondistill.stages.base import STAGES, Stage, StageConfig, StageContext
from reasondistill.traces.templates import (
    TemplateConfig,
    build_template,
    check_trained_template,
    template_field,
)


class EvaluateConfig(StageConfig):
    kind: Literal["evaluate"]
    model: ModelSource
    data: Ref(Artifact.EXAMPLES)
    splits: list[str] = Field(min_length=1)
    limit: int | None = Field(None, ge=1, description="first N examples of each split")
    batch_size: int = Field(64, ge=1)
    max_new_tokens: int = Field(64, ge=1)
    # Stop after the answer line: no test-time reasoning (arXiv 2406.14511); meant for
    # students trained with placement "after" or "none".
    label_first: bool = False
    temperature: float = Field(0.0, ge=0, description="0 = greedy")
    template: TemplateConfig = template_field("the prompt template the model was trained with")

    @model_validator(mode="after")
    def _label_first_form(self):
        if self.label_first and build_template(self.template).stop is None:
            raise ValueError(
                f"label_first: template {self.template.kind!r} has no label-first form (its answer follows "
                "the reasoning)"
            )
        return self


def load_inputs(
    cfg: EvaluateConfig, ctx: StageContext
) -> tuple[Any, Any, Callable, dict[str, list[Example]]]:
    """(model, tokenizer, verify, {split: examples}). Tests replace this to avoid real models/tasks."""
    from reasondistill.evaluate.generate import default_device
    from reasondistill.models.load import load_model
    from reasondistill.tasks import load_task

    path = cfg.model.resolve(ctx)
    check_trained_template(path, cfg.template, f"evaluate stage {ctx.name!r}")
    data_dir = ctx.path(cfg.data)
    splits = {s: read_examples(data_dir, s, cfg.limit) for s in cfg.splits}  # bad split fails early
    verify = load_task(data_dir).verify
    model, tokenizer = load_model(path, device=default_device())
    return model, tokenizer, verify, splits


class EvaluateStage(Stage):
    Config = EvaluateConfig
    produces = frozenset({Artifact.METRICS})

    @classmethod
    def split_refs(cls, cfg: EvaluateConfig) -> list[tuple[tuple, str, str]]:
        return [(("splits", i), str(cfg.data), s) for i, s in enumerate(cfg.splits)]

    def run(self, ctx: StageContext) -> dict:
        from reasondistill.evaluate.metrics import accuracy_summary, log_metrics, trained_steps
        from reasondistill.evaluate.predict import predict_split

        cfg: EvaluateConfig = ctx.cfg
        model, tokenizer, verify, splits = load_inputs(cfg, ctx)
        model.eval()
        rows, metrics = [], {}
        for split, examples in splits.items():
            partial = ctx.out_dir / f"predictions.{split}.partial.jsonl"
            preds = predict_split(
                model,
                tokenizer,
                examples,
                verify,
                split=split,
                partial_path=partial,
                batch_size=cfg.batch_size,
                max_new_tokens=cfg.max_new_tokens,
                label_first=cfg.label_first,
                temperature=cfg.temperature,
                seed=cfg.seed,
                template=build_template(cfg.template),
            )
            metrics[split] = accuracy_summary(
                [p["correct"] for p in preds], [p["generated_tokens"] for p in preds]
            )
            ctx.log.info("%s %s: accuracy %s on %d", ctx.name, split, metrics[split]["accuracy"], len(preds))
            rows.extend(preds)
        write_jsonl_atomic(ctx.out_dir / PREDICTIONS_FILE, rows)
        write_json_atomic(ctx.out_dir / METRICS_FILE, metrics)
        log_metrics(ctx.out_dir, metrics, trained_steps(cfg.model.resolve(ctx)) if cfg.model.stage else 0)
        for split in splits:
            (ctx.out_dir / f"predictions.{split}.partial.jsonl").unlink(missing_ok=True)
        return {s: {"accuracy": m["accuracy"], "n": m["n"]} for s, m in metrics.items()}


STAGES.register(
    "evaluate", EvaluateStage, description="accuracy of a model on splits of a data stage, with 95% Wilson intervals"
)
