"""`sft` stage: supervised fine-tuning of a student on a format stage's rows.

Runs on every rank under `accelerate launch` (distributed = True). The initial weights
come from exactly one of: a tiny model built from a spec (+ a tokenizer stage), another
training stage's out_dir/model, or a local path / hub id. A killed run resumes from
out_dir/checkpoint (train/checkpoint.py). Outputs: see train/sft.py.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from reasondistill.errors import ReasonDistillError
from reasondistill.models.lora import LoraSpec
from reasondistill.models.tiny import TinyModelSpec
from reasondistill.records import read_jsonl
from reasondistill.stages.base import STAGES, Ref, Stage, StageConfig, StageContext, StrictModel
from reasondistill.train.config import SFTTrainConfig


class InitModel(StrictModel):
    """Where the initial weights come from: exactly one of tiny (+ tokenizer), stage, path."""

    tiny: TinyModelSpec | None = None
    tokenizer: Ref | None = None  # a `tokenizer` stage; required with `tiny`, only with it
    stage: Ref | None = None  # a training stage: continue from its out_dir/model
    path: str | None = None  # local directory or hub id

    @model_validator(mode="after")
    def _exactly_one(self):
        given = [k for k in ("tiny", "stage", "path") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of `tiny` (+ `tokenizer`), `stage` (a training stage) or `path`"
                + (f"; got {', '.join(given)}" if given else "")
            )
        if self.tiny is not None and self.tokenizer is None:
            raise ValueError("`tiny` needs `tokenizer: <a tokenizer stage>` (a tiny model has no vocabulary)")
        if self.tiny is None and self.tokenizer is not None:
            raise ValueError("`tokenizer` is only used with `tiny`; a `stage`/`path` model brings its own")
        return self


class SFTStageConfig(StageConfig):
    kind: Literal["sft"]
    rows: Ref  # a stage that wrote out_dir/rows.jsonl of {"prompt", "completion", ...}
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
    path = ctx.path(cfg.rows) / "rows.jsonl"
    if not path.exists():
        raise ReasonDistillError(f"{cfg.kind}: stage {cfg.rows!r} wrote no rows.jsonl ({path})")
    rows = list(read_jsonl(path))
    if cfg.max_rows is not None:
        if len(rows) < cfg.max_rows:
            raise ReasonDistillError(
                f"{cfg.kind}: max_rows={cfg.max_rows} but stage {cfg.rows!r} has only {len(rows)} rows"
            )
        rows = rows[: cfg.max_rows]
    if not rows:
        raise ReasonDistillError(f"{cfg.kind}: stage {cfg.rows!r} has no rows")
    return rows


def initial_model(ctx: StageContext, cfg: SFTStageConfig):
    """(model, tokenizer) to start from; a tiny model's init is seeded with the stage seed."""
    from transformers import AutoTokenizer

    from reasondistill.models.load import load_model
    from reasondistill.models.tiny import build_tiny_model

    m = cfg.model
    if m.tiny is not None:
        tok_dir = ctx.path(m.tokenizer) / "tokenizer"
        if not tok_dir.exists():
            raise ReasonDistillError(
                f"sft: stage {m.tokenizer!r} has no tokenizer/ (is it a tokenizer stage?)"
            )
        tokenizer = AutoTokenizer.from_pretrained(str(tok_dir))
        return build_tiny_model(m.tiny, tokenizer, seed=cfg.seed), tokenizer
    source = str(ctx.path(m.stage) / "model") if m.stage is not None else m.path
    return load_model(source)


class SFTStage(Stage):
    Config = SFTStageConfig
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


STAGES.register("sft", SFTStage)
