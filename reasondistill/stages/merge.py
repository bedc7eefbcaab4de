"""`merge` stage: merge models with a mergekit method into a plain Hugging Face model directory.

```yaml
merged:
  kind: merge
  method: {kind: dare_linear}          # linear | task_arithmetic | ties | dare_linear | dare_ties | breadcrumbs
  base: {stage: base}                  # theta_0: task vectors are taken against it
  models: [{model: {stage: student}, weight: 0.5, density: 0.8}]
  seed: 0                              # DARE's random drops (per tensor, from this seed)
```
That example is IMM's merge-back (Yuan et al., EMNLP 2025, arXiv 2503.02103):
theta_0 + 0.5 * DARE_0.2(theta_t - theta_0), read from the authors' released command (MergeLM
`mask_merging`, weight_mask_rate 0.2, rescale, `average_merging` with theta_0): an inference
from the command, not a formula the paper states in what we could read. merge/methods.py lists
the methods and the two mergekit traps they guard.

Output: out_dir/model (safetensors, the fine-tuned model's config, tokenizer and prompt-template
record: usable anywhere a model is) and out_dir/merge_config.yaml (mergekit's format with the
exact parameters passed, so `mergekit-yaml` reproduces it, plus the recipe's knobs). Bad input
fails before any merge work with one message: densities outside (0, 1], weights summing to 0
under normalisation (plan time); architectures, shapes, tokenizers or templates that differ
(plan time where the recipe shows it, else when the stage starts). No partial model/ is left.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from reasondistill.artifacts import Artifact, model_dir
from reasondistill.config import ModelSource, StrictModel
from reasondistill.merge.methods import MERGE_METHODS, Weighted
from reasondistill.stages.base import STAGES, Stage, StageConfig, StageContext

CONFIG_FILE = "merge_config.yaml"


class MergeInput(StrictModel):
    model: ModelSource
    weight: float = Field(1.0, description="the model's weight (IMM's alpha for one model)")
    density: float = Field(
        1.0, gt=0, le=1, description="fraction of its task vector kept (ties, dare_*, breadcrumbs)"
    )


class MergeConfig(StageConfig):
    kind: Literal["merge"]
    method: MERGE_METHODS.config_union() = Field(description="the merge method, by `kind`")  # type: ignore[valid-type]
    base: ModelSource | None = Field(None, description="theta_0 (required by every method but linear)")
    models: list[MergeInput] = Field(min_length=1)
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="output dtype of floating tensors; auto: the inputs'"
    )
    device: str = Field("cpu", description="where the tensor math runs (cuda for large models)")
    max_shard_gb: float = Field(5.0, gt=0, description="safetensors shard size of the output")

    @model_validator(mode="after")
    def _method_fits(self):
        weighted = [Weighted(m.weight, m.density) for m in self.models]
        problems = self.method.problems(weighted, self.base is not None)
        if problems:
            raise ValueError("; ".join(problems))
        return self


class MergeStage(Stage):
    Config = MergeConfig
    produces = frozenset({Artifact.MODEL})

    @classmethod
    def check_plan(cls, cfg: MergeConfig, configs) -> list[str]:
        """Models the plan already shows to differ: tiny models of different shapes or
        tokenizers, local directories whose config.json or tokenizer.json differ."""
        from reasondistill.merge.origin import compare, origin

        sources = ([("base", cfg.base)] if cfg.base is not None else []) + [
            (f"models.{i}.model", m.model) for i, m in enumerate(cfg.models)
        ]
        known = [(key, o) for key, s in sources if (o := origin(s, configs)) is not None]
        for key, o in known[1:]:
            problem = compare(known[0], (key, o))
            if problem:
                return [f"{key}: {problem}"]
        return []

    def run(self, ctx: StageContext) -> dict:
        import yaml

        from reasondistill.merge.engine import Input, merge_models

        cfg: MergeConfig = ctx.cfg
        base = None if cfg.base is None else Input("base", _path(cfg.base, ctx))
        models = [
            Input(f"models[{i}]", _path(m.model, ctx), m.weight, m.density) for i, m in enumerate(cfg.models)
        ]
        summary = merge_models(
            base,
            models,
            cfg.method,
            model_dir(ctx.out_dir),
            seed=cfg.seed,
            dtype=cfg.dtype,
            device=cfg.device,
            max_shard_bytes=int(cfg.max_shard_gb * 2**30),
        )
        call = summary["mergekit"]
        inputs = models if base is None or not call["with_base"] else [base, *models]
        ids = list(range(len(inputs)))
        non_base = ids[1:] if call["base_is_reference"] and base is not None else ids
        per_input = {k: v for k, v in call["parameters"].items() if isinstance(v, list)}
        config = {
            "merge_method": call["method"],
            **({"base_model": str(base.path)} if base is not None and call["base_is_reference"] else {}),
            "models": [
                {"model": str(inputs[i].path), "parameters": {k: v[j] for k, v in per_input.items()}}
                for j, i in enumerate(non_base)
            ],
            "parameters": {k: v for k, v in call["parameters"].items() if not isinstance(v, list)},
            "dtype": "float32",  # the math; the output keeps the inputs' dtype unless `dtype` says
            "reasondistill": {
                "method": cfg.method.model_dump(mode="json"),
                "inputs": [{"label": m.label, "weight": m.weight, "density": m.density} for m in inputs],
                "seed": cfg.seed,
                "note": "parameters are those passed to mergekit 0.1.5 merge_tensors; rescale: exact "
                "is folded into the weights (or lambda), see reasondistill/merge/methods.py",
            },
        }
        tmp = ctx.out_dir / (CONFIG_FILE + ".tmp")
        tmp.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        tmp.replace(ctx.out_dir / CONFIG_FILE)
        return {"method": cfg.method.kind, "tensors": summary["tensors"], "bytes": summary["bytes"]}


def _path(source: ModelSource, ctx: StageContext):
    from pathlib import Path

    return Path(source.resolve(ctx))


STAGES.register(
    "merge",
    MergeStage,
    description="merge models (linear, task arithmetic, TIES, DARE, breadcrumbs) via mergekit",
)
