"""`sft` stage: supervised fine-tuning of a student on a format stage's rows.

Runs on every rank under `accelerate launch` (distributed = True). The initial weights
come from exactly one of: a tiny model built from a spec (+ a tokenizer stage), another
training stage's out_dir/model, or a local path / hub id. A killed run resumes from
out_dir/checkpoint (train/checkpoint.py). Outputs: see train/sft.py.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from reasondistill.artifacts import Artifact, model_dir, read_rows, tokenizer_dir
from reasondistill.config import Ref, StrictModel, exactly_one
from reasondistill.models.lora import LoraSpec
from reasondistill.models.tiny import TinyModelSpec
from reasondistill.stages.base import STAGES, Stage, StageConfig, StageContext
from reasondistill.train.config import SFTTrainConfig


class InitModel(StrictModel):
    """Where the initial weights come from: exactly one of tiny (+ tokenizer), stage, path."""

    tiny: TinyModelSpec | None = None
    tokenizer: Ref(Artifact.TOKENIZER) | None = None  # required with `tiny`, only with it
    stage: Ref(Artifact.MODEL) | None = None  # continue from another stage's model
    path: str | None = None  # local directory or hub id
    pretrained: str | None = None  # a catalog model (`reasondistill models list`)

    @model_validator(mode="after")
    def _exactly_one(self):
        exactly_one(self, "tiny", "stage", "path", "pretrained", hint="`tiny` comes with `tokenizer`")
        if self.tiny is not None and self.tokenizer is None:
            raise ValueError("`tiny` needs `tokenizer: <a tokenizer stage>` (a tiny model has no vocabulary)")
        if self.tiny is None and self.tokenizer is not None:
                raise ValueError("`tokenizer` is only used with `tiny`; any other model brings its own")
        return self


class SFTStageConfig(StageConfig):
    kind: Literal["sft"]
    rows: Ref(Artifact.ROWS)
    model: InitModel
    train: SFTTrainConfig = Field(default_factory=SFTTrainConfig)
    lora: LoraSpec | None = None
    max_rows: int | None = Field(None, ge=1, description="first N rows, so students get equal data")

    @model_validator(mode="after")
    def _fits(self):
        tiny = self.model.tiny
        if tiny is not None and self.train.max_length > tiny.max_position_embeddings:
            raise ValueError(
                f"train.max_length ({self.train.max_length}) exceeds "
                f"model.tiny.max_position_embeddings ({tiny.max_position_embeddings})"
            )
        return self


def load_rows(ctx: StageContext, cfg) -> list[dict]:
    """The `rows` stage's rows.jsonl, first `cfg.max_rows` of them; errors name `cfg.kind`.

    Shared by every stage that consumes rows (sft, kd, kd_cache): `cfg` has rows, max_rows, kind.
    """
    return read_rows(ctx.path(cfg.rows), f"{cfg.kind} stage {ctx.name!r}", cfg.max_rows)


def initial_model(ctx: StageContext, cfg: SFTStageConfig):
    """(model, tokenizer) to start from; a tiny model's init is seeded with the stage seed."""
    from transformers import AutoTokenizer

    from reasondistill.models.load import load_model
    from reasondistill.models.tiny import build_tiny_model

    m = cfg.model
    if m.tiny is not None:
        tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir(ctx.path(m.tokenizer))))
        return build_tiny_model(m.tiny, tokenizer, seed=cfg.seed), tokenizer
    if m.pretrained is not None:
        from reasondistill.models.pull import resolve_pretrained

        return load_model(resolve_pretrained(m.pretrained))
    return load_model(str(model_dir(ctx.path(m.stage))) if m.stage is not None else m.path)


class SFTStage(Stage):
    Config = SFTStageConfig
    produces = frozenset({Artifact.MODEL})
    distributed = True

    def run(self, ctx: StageContext) -> dict:
        from reasondistill.models.lora import apply_lora
        from reasondistill.train.sft import train_sft

        cfg: SFTStageConfig = ctx.cfg
        rows = load_rows(ctx, cfg)
        model, tokenizer = initial_model(ctx, cfg)
        if cfg.lora is not None:
            model = apply_lora(model, cfg.lora, seed=cfg.seed)
        train = cfg.train if cfg.train.seed is not None else cfg.train.model_copy(update={"seed": cfg.seed})
        return train_sft(model, tokenizer, rows, train, ctx.out_dir)


STAGES.register("sft", SFTStage, description="supervised fine-tuning of a student on training rows")
