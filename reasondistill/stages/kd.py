"""`kd` stage: white-box knowledge distillation of a student on a rows stage's rows.

Token-level KD of Do, Doddipatla & Knill (INLG 2025, arXiv 2511.05184): at every completion
token the student matches the teacher's next-token distribution (forward KL, tau = 1, KD loss
only by default; `loss` selects reverse KL, JSD, TV, a temperature and a CE mix). Like `sft`
(same `rows`, `model`, `train`, `lora`, `max_rows`; runs on every rank under `accelerate
launch`), plus a teacher, exactly one of:

```yaml
teacher: {model: {stage: teacher}}   # online: the teacher runs in every step, full vocabulary
teacher: {cache: kd_cache}           # cached: top-k log-probs from a kd_cache stage (default in recipes)
loss: {name: forward_kl, temperature: 1.0, alpha: 0.0}
```
Before any training (and before anything is written), the stage checks that teacher and student
share one tokenizer (kd.check_vocab_compat; padded embedding rows are sliced off) and, for a
cache, that it was built from exactly these token ids at this temperature. A bad pair fails
with one message naming both vocabularies.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from reasondistill.artifacts import CACHE_DIR, TOKENIZER_DIR, Artifact
from reasondistill.config import ModelSource, Ref, StrictModel, exactly_one
from reasondistill.errors import ReasonDistillError
from reasondistill.kd.config import KDLossConfig
from reasondistill.stages.base import STAGES, Stage, StageContext
from reasondistill.stages.sft import SFTStageConfig, initial_model, load_rows


class KDTeacher(StrictModel):
    """Where the teacher's distributions come from: exactly one of `model` or `cache`."""

    model: ModelSource | None = Field(None, description="online: a teacher model run in every step")
    cache: Ref(Artifact.LOGIT_CACHE) | None = Field(None, description="cached: a kd_cache stage built on the same rows")

    @model_validator(mode="after")
    def _exactly_one(self):
        exactly_one(self, "model", "cache", hint="an online teacher, or a kd_cache stage")
        return self


class KDStageConfig(SFTStageConfig):
    kind: Literal["kd"]
    teacher: KDTeacher
    loss: KDLossConfig = Field(default_factory=KDLossConfig)


def _logit_rows(model) -> int:
    return model.get_output_embeddings().weight.shape[0]


def _cached(ctx: StageContext, cfg: KDStageConfig, tokenizer, student_rows: int, rows: list[dict]):
    """(LogitCache, shared vocabulary) after every check that the cache fits this stage."""
    from transformers import AutoTokenizer

    from reasondistill.kd import LogitCache, check_vocab_compat, rows_digest
    from reasondistill.stages.kd_cache import read_meta
    from reasondistill.train.batching import encode_rows

    where = ctx.path(cfg.teacher.cache)
    meta = read_meta(where, "kd")
    teacher_tok = AutoTokenizer.from_pretrained(str(where / TOKENIZER_DIR))
    vocab = check_vocab_compat(teacher_tok, tokenizer, meta["teacher_vocab_rows"], student_rows)
    name = f"kd_cache stage {cfg.teacher.cache!r}"
    if vocab != meta["vocab_size"]:
        raise ReasonDistillError(
            f"kd: {name} holds a {meta['vocab_size']}-token vocabulary, the pair shares {vocab}"
        )
    if cfg.loss.alpha < 1 and abs(meta["temperature"] - cfg.loss.temperature) > 1e-6:
        raise ReasonDistillError(
            f"kd: {name} stores the teacher at temperature {meta['temperature']} but loss.temperature is "
            f"{cfg.loss.temperature}; a top-k cache cannot be re-softened exactly: set one to the other"
        )
    if meta["max_length"] != cfg.train.max_length or meta["rows"] != len(rows):
        raise ReasonDistillError(
            f"kd: {name} scored {meta['rows']} rows at max_length {meta['max_length']}, but this stage trains "
            f"on {len(rows)} rows at train.max_length {cfg.train.max_length}: set its max_rows/max_length to match"
        )
    if rows_digest(encode_rows(tokenizer, rows, cfg.train.max_length)) != meta["rows_digest"]:
        raise ReasonDistillError(
            f"kd: {name} was built from other token ids than stage {cfg.rows!r}'s rows (another rows stage, "
            "row order or template): point both at the same rows"
        )
    return LogitCache(where / CACHE_DIR), vocab


def build_objective(ctx: StageContext, cfg: KDStageConfig, model, tokenizer, rows: list[dict]):
    """The KDObjective for this stage; every teacher/student check happens here, before training."""
    from reasondistill.kd import KDObjective, check_vocab_compat
    from reasondistill.models.load import load_model

    student_rows = _logit_rows(model)
    if cfg.teacher.cache is not None:
        cache, vocab = _cached(ctx, cfg, tokenizer, student_rows, rows)
        ctx.log.info("kd: cached teacher, k=%d, %d-token vocabulary", cache.k, vocab)
        return KDObjective(cfg.loss, vocab, cache=cache)
    teacher, teacher_tok = load_model(cfg.teacher.model.resolve(ctx))
    vocab = check_vocab_compat(teacher_tok, tokenizer, _logit_rows(teacher), student_rows)
    ctx.log.info("kd: online teacher %s, %d-token vocabulary", cfg.teacher.model.resolve(ctx), vocab)
    return KDObjective(cfg.loss, vocab, teacher=teacher, pass_attention_mask=True)


class KDStage(Stage):
    Config = KDStageConfig
    produces = frozenset({Artifact.MODEL})
    distributed = True

    def run(self, ctx: StageContext) -> dict:
        from reasondistill.models.lora import apply_lora
        from reasondistill.train.sft import train_sft

        cfg: KDStageConfig = ctx.cfg
        rows = load_rows(ctx, cfg)
        model, tokenizer = initial_model(ctx, cfg)
        objective = build_objective(ctx, cfg, model, tokenizer, rows)  # fails before any file is written
        if cfg.lora is not None:
            model = apply_lora(model, cfg.lora, seed=cfg.seed)
        train = cfg.train if cfg.train.seed is not None else cfg.train.model_copy(update={"seed": cfg.seed})
        summary = train_sft(model, tokenizer, rows, train, ctx.out_dir, objective=objective, desc="kd")
        teacher = "cache" if cfg.teacher.cache is not None else "online"
        return {**summary, "teacher": teacher, "kd_loss": cfg.loss.kind, "vocab_size": objective.vocab_size}


STAGES.register(
    "kd", KDStage, description="white-box KD of a student on a teacher's distributions", paper="arXiv 2511.05184"
)
