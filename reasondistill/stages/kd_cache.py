"""`kd_cache` stage: a teacher scores a rows stage's training rows once into a sparse logit cache.

White-box KD (Do, Doddipatla & Knill, INLG 2025, arXiv 2511.05184) needs the teacher's
next-token distribution at every completion token. Running the teacher in every training step
costs a teacher forward pass per step; this stage pays it once and stores, per completion token,
the top-k token ids and log-probs plus the log of the remaining tail mass (kd/cache.py). `train`
stages with `objective: {kind: kd, teacher: {cache: <this stage>}}` read it. Departure from the paper (which runs the
teacher online, full vocabulary): see docs/kd.md for how the missing mass is treated.

```yaml
kind: kd_cache
rows: student_rows            # a stage that wrote rows.jsonl (the students' training rows)
teacher: {stage: teacher}     # or {path: local dir / hub id}
k: 64                         # ids kept per token (clamped to the vocabulary)
temperature: 1.0              # must equal the students' loss.temperature
max_length: 512               # must equal the students' train.max_length
max_rows: 1000                # must equal the students' max_rows (None: all rows)
codec: packed                 # packed (Elias-Fano ids + 8-bit log-probs) or fp16
tail_samples: 0               # m > 0: also m ids sampled from the teacher's tail per token, for
                              # an unbiased forward KL (kd/tail.py, arXiv 2503.16870)
```
Outputs: out_dir/cache (the LogitCache), out_dir/tokenizer (the teacher's, for the students'
vocabulary check) and out_dir/kd_cache.json (what the cache holds), written last. A killed run
resumes: complete shards are kept and only the missing rows are scored again.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Literal

from pydantic import Field

from reasondistill.artifacts import CACHE_DIR, CACHE_META, TOKENIZER_DIR, Artifact, read_rows
from reasondistill.config import ModelSource, Ref
from reasondistill.errors import ReasonDistillError
from reasondistill.records import write_json_atomic
from reasondistill.stages.base import STAGES, Stage, StageConfig, StageContext

META = CACHE_META


class KDCacheConfig(StageConfig):
    kind: Literal["kd_cache"]
    rows: Ref(Artifact.ROWS) = Field(description="the rows the students train on")
    teacher: ModelSource
    k: int = Field(64, ge=1, description="top-k ids per token; clamped to the vocabulary size")
    temperature: float = Field(1.0, gt=0, description="softening stored in the cache = the KD loss's")
    max_length: int = Field(512, gt=1, description="tokens kept per row; = the students' train.max_length")
    max_rows: int | None = Field(None, ge=1, description="first N rows; = the students' max_rows")
    codec: Literal["packed", "fp16"] = Field("packed", description="on-disk encoding (kd/codec.py)")
    tail_samples: int = Field(
        0, ge=0, description="ids sampled per token from the teacher's tail (unbiased forward KL; kd/tail.py)"
    )
    batch_size: int = Field(16, ge=1, description="rows per teacher forward pass")
    shard_rows: int = Field(256, ge=1, description="rows per atomic shard (the unit of resume)")


def read_meta(cache_dir: Path, who: str) -> dict:
    """kd_cache.json of a completed kd_cache stage, or a clear error naming the stage `who`."""
    path = Path(cache_dir) / META
    if not path.is_file():
        raise ReasonDistillError(f"{who}: {cache_dir} has no {META}: is `teacher.cache` a kd_cache stage?")
    return json.loads(path.read_text(encoding="utf-8"))




class KDCacheStage(Stage):
    Config = KDCacheConfig
    produces = frozenset({Artifact.LOGIT_CACHE})

    def run(self, ctx: StageContext) -> dict:
        from reasondistill.evaluate.generate import default_device
        from reasondistill.kd import build_cache, check_vocab_compat, rows_digest
        from reasondistill.models.load import load_model
        from reasondistill.train.batching import encode_rows

        cfg: KDCacheConfig = ctx.cfg
        rows = read_rows(ctx.path(cfg.rows), f"kd_cache stage {ctx.name!r}", cfg.max_rows)
        source = cfg.teacher.resolve(ctx)
        model, tok = load_model(source, device=default_device())
        logit_rows = model.get_output_embeddings().weight.shape[0]
        # The teacher's real vocabulary: padded embedding rows (151936 vs 152064) get no mass.
        vocab = check_vocab_compat(tok, tok, logit_rows, logit_rows)
        k = min(cfg.k, vocab)
        if k < cfg.k:
            ctx.log.info(
                "kd_cache: k=%d > vocabulary %d; caching the full distribution (k=%d)", cfg.k, vocab, k
            )
        samples = cfg.tail_samples if k < vocab else 0  # k = V: no tail to sample
        encoded = encode_rows(tok, rows, cfg.max_length)
        tok_dir = ctx.out_dir / TOKENIZER_DIR
        if not tok_dir.exists():  # written once, atomically: students check their vocabulary against it
            tmp = ctx.out_dir / f"{TOKENIZER_DIR}.tmp"
            shutil.rmtree(tmp, ignore_errors=True)
            tok.save_pretrained(str(tmp))
            tmp.replace(tok_dir)
        cache = build_cache(
            model, encoded, k, ctx.out_dir / CACHE_DIR, cfg.batch_size, vocab_size=vocab,
            temperature=cfg.temperature, pad_id=tok.pad_token_id, shard_rows=cfg.shard_rows, codec=cfg.codec,
            tail_samples=samples, seed=cfg.seed,
        )  # fmt: skip
        positions = sum(cache.n_positions(i) for i in range(len(encoded)))
        nbytes = sum(f.stat().st_size for f in (ctx.out_dir / CACHE_DIR).rglob("*.npy"))
        meta = {
            "teacher": source,
            "k": k,
            "codec": cfg.codec,
            "tail_samples": samples,
            "temperature": cfg.temperature,
            "vocab_size": vocab,
            "teacher_vocab_rows": logit_rows,
            "rows": len(encoded),
            "max_length": cfg.max_length,
            "rows_digest": rows_digest(encoded),
            "positions": positions,
            "bytes": nbytes,
            "bytes_per_token": round(nbytes / max(positions, 1), 2),  # .npy headers and row index included
        }
        write_json_atomic(ctx.out_dir / META, meta)  # last: the cache is complete
        ctx.log.info(
            "kd_cache: %d rows, %d tokens, %.1f bytes/token", len(encoded), positions, meta["bytes_per_token"]
        )
        return {k_: meta[k_] for k_ in ("rows", "positions", "k", "codec", "tail_samples", "bytes_per_token")}


STAGES.register(
    "kd_cache", KDCacheStage, description="a teacher scores training rows once into a sparse top-k logit cache",
    paper="arXiv 2511.05184",
)
