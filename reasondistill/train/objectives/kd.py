"""`kd`: white-box knowledge distillation on the teacher's next-token distributions.

Token-level KD of Do, Doddipatla & Knill (INLG 2025, arXiv 2511.05184): at every completion
token the student matches the teacher's next-token distribution (forward KL, tau = 1, KD loss
only by default; `loss` selects reverse KL, JSD, TV, a temperature and a CE mix). The teacher is
exactly one of:

```yaml
objective:
  kind: kd
  teacher: {model: {stage: teacher}}   # online: the teacher runs in every step, full vocabulary
  teacher: {cache: kd_cache}           # cached: top-k log-probs from a kd_cache stage
  loss: {kind: forward_kl, temperature: 1.0, alpha: 0.0}
```
`build` checks, before any training and before anything is written, that teacher and student
share one tokenizer (kd.check_vocab_compat; padded embedding rows are sliced off) and, for a
cache, that it was built from exactly these token ids at this temperature and max_length. A bad
pair fails with one message naming both vocabularies. Departure from the paper (online teacher,
full vocabulary): the cached path's top-k + tail bucket, see kd/objective.py and docs/kd.md.
"""

from __future__ import annotations

import json
from typing import Literal

from pydantic import Field, model_validator

from reasondistill.artifacts import CACHE_DIR, CACHE_META, TOKENIZER_DIR, Artifact
from reasondistill.config import ModelSource, Ref, StageContext, StrictModel, exactly_one
from reasondistill.errors import ReasonDistillError
from reasondistill.kd.config import KDLossConfig
from reasondistill.train.objectives.base import OBJECTIVES


class KDTeacher(StrictModel):
    """Where the teacher's distributions come from: exactly one of `model` or `cache`."""

    model: ModelSource | None = Field(None, description="online: a teacher model run in every step")
    cache: Ref(Artifact.LOGIT_CACHE) | None = Field(
        None, description="cached: a kd_cache stage built on the same rows"
    )

    @model_validator(mode="after")
    def _exactly_one(self):
        exactly_one(self, "model", "cache", hint="an online teacher, or a kd_cache stage")
        return self


def _logit_rows(model) -> int:
    return model.get_output_embeddings().weight.shape[0]


class KD:
    """Registered objective `kd`; `build` returns a kd.KDObjective (the runtime, holding torch state)."""

    class Config(StrictModel):
        kind: Literal["kd"]
        teacher: KDTeacher
        loss: KDLossConfig = Field(default_factory=KDLossConfig)

    rows = "completion"

    @classmethod
    def build(cls, cfg: Config, ctx: StageContext, model, tokenizer, rows):
        """The KDObjective for this train stage, after every teacher/student/cache check."""
        from reasondistill.kd import KDObjective, check_vocab_compat
        from reasondistill.models.load import load_model

        student_rows = _logit_rows(model)
        if cfg.teacher.cache is not None:
            cache, vocab = _cached(cfg, ctx, tokenizer, student_rows, rows)
            ctx.log.info("kd: cached teacher, k=%d, %d-token vocabulary", cache.k, vocab)
            return KDObjective(cfg.loss, vocab, cache=cache)
        source = cfg.teacher.model.resolve(ctx)
        teacher, teacher_tok = load_model(source)
        vocab = check_vocab_compat(teacher_tok, tokenizer, _logit_rows(teacher), student_rows)
        ctx.log.info("kd: online teacher %s, %d-token vocabulary", source, vocab)
        return KDObjective(cfg.loss, vocab, teacher=teacher, pass_attention_mask=True)


def _cached(cfg: KD.Config, ctx: StageContext, tokenizer, student_rows: int, rows):
    """(LogitCache, shared vocabulary) after every check that the cache fits this stage's rows."""
    from transformers import AutoTokenizer

    from reasondistill.kd import LogitCache, check_vocab_compat, rows_digest
    from reasondistill.train.batching import encode_rows

    name = f"kd_cache stage {cfg.teacher.cache!r}"
    where = ctx.path(cfg.teacher.cache)
    if not (where / CACHE_META).is_file():
        raise ReasonDistillError(f"kd: {where} has no {CACHE_META}: is `teacher.cache` a kd_cache stage?")
    meta = json.loads((where / CACHE_META).read_text(encoding="utf-8"))
    if not rows.single:
        # The cache is indexed by the row numbers of the one rows stage it scored.
        got = ", ".join(f"{s.stage} x {s.weight}" for s in rows.sources)
        raise ReasonDistillError(
            f"kd: {name} scored the rows of one rows stage, so a cached teacher needs `rows` to be that one "
            f"stage at weight 1 (got {got}); mix rows with an online teacher"
        )
    max_length = ctx.cfg.train.max_length
    stage = rows.sources[0].stage
    teacher_tok = AutoTokenizer.from_pretrained(str(where / TOKENIZER_DIR))
    vocab = check_vocab_compat(teacher_tok, tokenizer, meta["teacher_vocab_rows"], student_rows)
    if vocab != meta["vocab_size"]:
        raise ReasonDistillError(
            f"kd: {name} holds a {meta['vocab_size']}-token vocabulary, the pair shares {vocab}"
        )
    if cfg.loss.alpha < 1 and abs(meta["temperature"] - cfg.loss.temperature) > 1e-6:
        raise ReasonDistillError(
            f"kd: {name} stores the teacher at temperature {meta['temperature']} but loss.temperature is "
            f"{cfg.loss.temperature}; a top-k cache cannot be re-softened exactly: set one to the other"
        )
    if meta["max_length"] != max_length or meta["rows"] != len(rows.rows):
        raise ReasonDistillError(
            f"kd: {name} scored {meta['rows']} rows at max_length {meta['max_length']}, but this stage trains "
            f"on {len(rows.rows)} rows at train.max_length {max_length}: set its max_rows/max_length to match"
        )
    if rows_digest(encode_rows(tokenizer, rows.rows, max_length)) != meta["rows_digest"]:
        raise ReasonDistillError(
            f"kd: {name} was built from other token ids than stage {stage!r}'s rows (another rows stage, "
            "row order or template): point both at the same rows"
        )
    return LogitCache(where / CACHE_DIR), vocab


OBJECTIVES.register(
    "kd",
    KD,
    description="white-box KD: match the teacher's next-token distributions",
    paper="arXiv 2511.05184",
)
