"""`layers` stage: where a fine-tune changed its start model, and which layers' changes matter.

```yaml
layers:                                  # inside a repeat block: one analysis per iteration
  kind: layers
  model: {stage: merged}                 # theta_t
  base: {stage: base}                    # theta_0
  splits:                                # importance: accuracy drop with one layer reset to theta_0
    - {stage: add, split: add_test, limit: 100}     # in-domain
    - {stage: mul, split: mul_test, limit: 100}     # out-of-domain
  importance_layers: {every: 5}          # optional: reset only these layers (default: every layer)
```
For every transformer layer and module type it measures ||theta_t - theta_0||_F / ||theta_0||_F,
and for every layer the accuracy drop on each split when that layer alone is reset to theta_0
(IMM, arXiv 2503.02103: reasoning-critical layers are claimed to get the smaller updates; see
merge/layers.py for the measures and where they depart from the paper). Importance costs one
evaluation per layer and split, so a 30-layer model on a CPU can measure it on a subset
(`importance_layers`, the `keep_layers` syntax: `{every: k, offset: o}` or a list); update sizes
always cover every layer, the correlation only the measured ones, and the CSV leaves the drops
of the others empty.

Outputs: layers.csv (one row per layer and module, plus a module "all" row per layer, with the
layer's drops), layers.png (this model's update heatmap and drops) and metrics.json in the shared
shape: {"update": {rel_update, rel_update_max, n}, <split>: {accuracy, ci_low, ci_high, n,
drop_mean, drop_max, spearman, spearman_ci_low, spearman_ci_high, layers}}, so a `report` with
`metric: spearman` draws the correlation over a repeat block's iterations; `layers_report`
draws the heatmap over iterations.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from reasondistill.artifacts import METRICS_FILE, Artifact
from reasondistill.config import ExampleSource, ModelSource
from reasondistill.models.prune import KeepLayers
from reasondistill.stages.base import STAGES, Stage, StageConfig, StageContext
from reasondistill.traces.templates import (
    TemplateConfig,
    build_template,
    check_trained_template,
    template_field,
)

CSV_FILE, CHART = "layers.csv", "layers.png"


class LayersConfig(StageConfig):
    kind: Literal["layers"]
    model: ModelSource = Field(description="theta_t: the fine-tuned (or merged) model")
    base: ModelSource = Field(description="theta_0: the model it started from")
    splits: list[ExampleSource] = Field(
        default_factory=list, description="splits whose accuracy drop measures layer importance; [] skips it"
    )
    importance_layers: KeepLayers | None = Field(
        None, description="layers whose importance is measured ({every, offset} or a list); default all"
    )
    batch_size: int = Field(64, ge=1)
    max_new_tokens: int = Field(64, ge=1)
    template: TemplateConfig = template_field("the prompt template the model was trained with")

    @model_validator(mode="after")
    def _distinct_splits(self):
        names = [s.split for s in self.splits]
        if len(set(names)) != len(names):
            raise ValueError(f"splits: split names must be distinct (they name the CSV columns): {names}")
        return self


class LayersStage(Stage):
    Config = LayersConfig
    produces = frozenset({Artifact.METRICS})

    def run(self, ctx: StageContext) -> dict:
        from pathlib import Path

        from reasondistill.merge.checkpoint import Checkpoint
        from reasondistill.merge.engine import Input, check_compatible
        from reasondistill.merge.layers import n_layers, spearman, update_rows, write_csv
        from reasondistill.merge.layers_plot import plot_layers
        from reasondistill.records import write_json_atomic

        cfg: LayersConfig = ctx.cfg
        path_t, path_0 = Path(cfg.model.resolve(ctx)), Path(cfg.base.resolve(ctx))
        check_compatible([Input("base", path_0), Input("model", path_t)])  # same tensors, or one clear error
        if cfg.splits:
            check_trained_template(str(path_t), cfg.template, f"layers stage {ctx.name!r}")
        rows = update_rows(Checkpoint(path_0), Checkpoint(path_t))
        layers = sorted({r["layer"] for r in rows if r["layer"] is not None})
        per_layer = {r["layer"]: r["rel_update"] for r in rows if r["module"] == "all"}
        metrics: dict = {
            "update": {
                "rel_update": sum(per_layer.values()) / max(1, len(per_layer)),
                "rel_update_max": max(per_layer.values(), default=0.0),
                "n": n_layers(rows),
            }
        }
        measured = _measured_layers(cfg, layers)
        drops = _importance(cfg, ctx, path_t, path_0, measured) if cfg.splits else {}
        for split, (summary, drop) in drops.items():
            for r in rows:
                r[f"drop_{split}"] = drop.get(r["layer"]) if r["layer"] is not None else None
            rho, lo, hi = spearman([per_layer[i] for i in measured], [drop[i] for i in measured])
            metrics[split] = {
                **summary,
                "drop_mean": sum(drop.values()) / len(drop),
                "drop_max": max(drop.values()),
                "spearman": rho,
                "spearman_ci_low": lo,
                "spearman_ci_high": hi,
                "layers": len(measured),
            }
        write_csv(ctx.out_dir / CSV_FILE, rows)
        plot_layers(rows, list(drops), ctx.out_dir / (CHART + ".tmp.png"), title=ctx.name)
        (ctx.out_dir / (CHART + ".tmp.png")).replace(ctx.out_dir / CHART)
        write_json_atomic(ctx.out_dir / METRICS_FILE, metrics)
        return {"layers": len(layers), **{s: m.get("spearman") for s, m in metrics.items() if s != "update"}}


def _measured_layers(cfg: LayersConfig, layers: list[int]) -> list[int]:
    """The layers whose importance is measured: all, or those `importance_layers` picks."""
    if cfg.importance_layers is None:
        return layers
    return [layers[i] for i in cfg.importance_layers.indices(len(layers), "importance_layers")]


def _importance(cfg: LayersConfig, ctx: StageContext, path_t, path_0, layers: list[int]) -> dict:
    """{split: (accuracy summary of theta_t, {layer: accuracy drop with that layer reset})}."""
    from reasondistill.artifacts import read_examples
    from reasondistill.evaluate.generate import default_device
    from reasondistill.evaluate.metrics import accuracy_summary
    from reasondistill.evaluate.predict import predict_split
    from reasondistill.merge.checkpoint import Checkpoint
    from reasondistill.merge.layers import layer_params, reset_layer
    from reasondistill.models.load import load_model
    from reasondistill.tasks import load_task

    model, tokenizer = load_model(str(path_t), device=default_device())
    model.eval()
    base = Checkpoint(path_0)
    base_state = {n: base.read(n) for i in layers for n, _ in layer_params(model, i)}
    template = build_template(cfg.template)
    out = {}
    for src in cfg.splits:
        data_dir = ctx.path(src.stage)
        examples, verify = read_examples(data_dir, src.split, src.limit), load_task(data_dir).verify

        def accuracy(tag: str, examples=examples, verify=verify, split=src.split) -> list[bool]:
            preds = predict_split(
                model,
                tokenizer,
                examples,
                verify,
                split=f"{split} {tag}",
                partial_path=ctx.out_dir / f"predictions.{split}.{tag}.partial.jsonl",
                batch_size=cfg.batch_size,
                max_new_tokens=cfg.max_new_tokens,
                seed=cfg.seed,
                template=template,
            )
            return [p["correct"] for p in preds]

        full = accuracy("model")
        summary = accuracy_summary(full, [0] * len(full))
        summary.pop("mean_generated_tokens", None)
        drop = {}
        for i in layers:
            with reset_layer(model, base_state, i):
                reset = accuracy(f"reset{i}")
            drop[i] = (sum(full) - sum(reset)) / len(full)
        out[src.split] = (summary, drop)
    for p in ctx.out_dir.glob("predictions.*.partial.jsonl"):
        p.unlink()
    return out


STAGES.register(
    "layers",
    LayersStage,
    description="per-layer update size vs theta_0 and layer importance (accuracy drop when reset)",
    paper="arXiv 2503.02103",
)
