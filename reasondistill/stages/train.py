"""`train` stage: train a model on one or several rows stages under a registered objective.

```yaml
student:
  kind: train
  rows: student_rows              # or [{stage: a, weight: 1.0}, {stage: b, weight: 0.5}] (train/mix.py)
  model: {tiny: {...}, tokenizer: tokenizer}   # or {stage: s} | {path: dir / hub id} | {pretrained: name}
  objective: {kind: nll}          # the default; {kind: kd, teacher: ..., loss: ...} (train/objectives/)
  train: {max_steps: 500, lr: 3.0e-3, ...}     # train/config.py TrainConfig
  lora: {r: 8, alpha: 16}         # optional
  max_rows: 1000                  # first N rows of each source, so students get equal data
```
Runs on every rank under `accelerate launch` (distributed = True). Before anything is written,
it reads every rows source and checks it holds the rows the objective needs (prompt/completion
or prompt/chosen/rejected), loads the initial model, and builds the objective, which runs the
objective's own checks (a KD teacher's vocabulary, a logit cache's rows). A killed run resumes
from out_dir/checkpoint (train/checkpoint.py). Outputs: see train/trainer.py.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from reasondistill.artifacts import Artifact, model_dir
from reasondistill.models.lora import LoraSpec
from reasondistill.models.source import InitModel
from reasondistill.stages.base import STAGES, Stage, StageConfig, StageContext
from reasondistill.train.config import TrainConfig
from reasondistill.train.mix import RowsField, RowSource
from reasondistill.train.objectives import OBJECTIVES


class TrainStageConfig(StageConfig):
    kind: Literal["train"]
    rows: RowsField = Field(
        description="a rows stage, or a list of {stage, weight} sources mixed by weight (train/mix.py)"
    )
    model: InitModel
    objective: OBJECTIVES.config_union() = Field(  # type: ignore[valid-type]
        default_factory=lambda: OBJECTIVES.config("nll")(), description="the loss, by `kind` (default nll)"
    )
    train: TrainConfig = Field(default_factory=TrainConfig)
    lora: LoraSpec | None = None
    max_rows: int | None = Field(
        None, ge=1, description="first N rows of each source, so students get equal data"
    )

    @model_validator(mode="after")
    def _fits(self):
        if isinstance(self.rows, list) and not self.rows:
            raise ValueError("rows: give a rows stage or a non-empty list of {stage, weight} sources")
        tiny = self.model.tiny
        if tiny is not None and self.train.max_length > tiny.max_position_embeddings:
            raise ValueError(
                f"train.max_length ({self.train.max_length}) exceeds "
                f"model.tiny.max_position_embeddings ({tiny.max_position_embeddings})"
            )
        return self

    def sources(self) -> list[RowSource]:
        """`rows` as a list of sources (a single stage is one source at weight 1)."""
        return self.rows if isinstance(self.rows, list) else [RowSource(stage=self.rows)]

    def train_seed(self) -> int:
        """Data order, dropout and the mix's subsets: train.seed, else the stage's seed."""
        return self.train.seed if self.train.seed is not None else self.seed


class TrainStage(Stage):
    Config = TrainStageConfig
    produces = frozenset({Artifact.MODEL})
    distributed = True

    @classmethod
    def check_plan(cls, cfg: TrainStageConfig, configs) -> list[str]:
        """White-box KD needs one tokenizer: refuse, at plan time, a teacher and student whose
        tokenizers are known to differ (trained by two tokenizer stages, or two local model
        directories with different vocabularies). Other pairs are checked when the stage starts."""
        from reasondistill.models.source import same_tokenizer, tokenizer_origin

        teacher = getattr(cfg.objective, "teacher", None)
        if teacher is None:
            return []
        source = teacher.model if teacher.model is not None else teacher.cache
        t, s = tokenizer_origin(source, configs), tokenizer_origin(cfg.model, configs)
        problem = same_tokenizer(t, s)
        return [f"objective.teacher: {problem}"] if problem else []

    def run(self, ctx: StageContext) -> dict:
        from reasondistill.models.lora import apply_lora
        from reasondistill.traces.templates import rows_template, write_template_record
        from reasondistill.train.mix import read_mix
        from reasondistill.train.trainer import train_model

        cfg: TrainStageConfig = ctx.cfg
        kind = cfg.objective.kind
        spec = OBJECTIVES.get(kind)
        # Every check before anything is written: the rows, then the objective's own inputs.
        rows = read_mix(ctx, cfg.sources(), spec.rows, kind, cfg.max_rows, cfg.train_seed())
        # The template the rows were rendered with goes into the model directory, so evaluating
        # or sampling it with another template fails before any work (traces/templates).
        record = rows_template([ctx.path(s.stage) for s in cfg.sources()], f"train stage {ctx.name!r}")
        model, tokenizer = cfg.model.load(ctx, seed=cfg.seed)
        objective = spec.build(cfg.objective, ctx, model, tokenizer, rows)
        if cfg.lora is not None:
            model = apply_lora(model, cfg.lora, seed=cfg.seed)
        train = cfg.train.model_copy(update={"seed": cfg.train_seed()})
        summary = train_model(model, tokenizer, rows.rows, train, ctx.out_dir, objective, desc=kind)
        if record is not None:
            write_template_record(model_dir(ctx.out_dir), record)
        return {**summary, "objective": kind, **objective.summary()}


STAGES.register(
    "train", TrainStage, description="train a model on rows stages under an objective (nll, kd, ...)"
)
