"""Fill a logit cache by scoring training rows once with a teacher model (kd/cache.py format)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import torch

from reasondistill.errors import ReasonDistillError
from reasondistill.kd.cache import LogitCache, LogitCacheWriter
from reasondistill.kd.tail import sample_tail
from reasondistill.kd.teacher import topk_logprobs
from reasondistill.progress import item_bar
from reasondistill.train.batching import EncodedRow, collate
from reasondistill.train.loss import n_targets


def rows_digest(rows: Sequence[EncodedRow]) -> str:
    """sha256 over every row's token ids and prompt length: a cache is only valid for the rows
    (tokenizer, template, max_length, row order) it was built from, and this names them."""
    h = hashlib.sha256()
    for r in rows:
        h.update(f"{r.n_prompt}:{','.join(map(str, r.ids))};".encode())
    return h.hexdigest()


@torch.no_grad()
def build_cache(
    model,
    rows: Sequence[EncodedRow],
    k: int,
    out_dir: str | Path,
    batch_size: int = 8,
    *,
    vocab_size: int | None = None,
    temperature: float = 1.0,
    pad_id: int = 0,
    shard_rows: int = 256,
    codec: str = "fp16",
    tail_samples: int = 0,
    seed: int = 0,
) -> LogitCache:
    """Score `rows` with a teacher (any HF causal LM) and cache top-k log-probs; resumable.

    rows: EncodedRow(ids, n_prompt) as train/batching.encode_rows makes them: the same rows
    the student trains on, so entry j of row i is the teacher's distribution at logits
    position max(n_prompt, 1) - 1 + j, the j-th position where kd.next_token_mask of the
    collated labels is True. vocab_size: the shared real vocabulary from
    kd.check_vocab_compat (default: the teacher's output-embedding rows); logits are sliced to
    it before the softmax, so padded embedding rows get no mass. codec: on-disk encoding
    (kd/codec.py: "fp16", or "packed" at ~40-60% of its bytes). temperature: the KD
    temperature (the cache stores softmax(logits / temperature); kd/teacher.py says why).
    tail_samples: m > 0 also stores m ids drawn from the teacher's distribution inside its
    tail and its entropy per position, for an unbiased forward KL (kd/tail.py); the draws of row
    i come from a generator seeded by (seed, i), so they do not depend on batching or resume.
    Rows already in complete shards of out_dir are skipped; a crash keeps the rows scored so
    far (the writer flushes them on the way out). Memory: one batch of full logits [B, L, V].
    """
    v = vocab_size or model.get_output_embeddings().weight.shape[0]
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        with LogitCacheWriter(
            out_dir,
            k,
            v,
            temperature=temperature,
            shard_rows=shard_rows,
            codec=codec,
            tail_samples=tail_samples,
        ) as writer:
            todo = [i for i in range(len(rows)) if i not in writer]
            bar = item_bar(len(rows), "kd_cache: scoring", "row", initial=len(rows) - len(todo))
            for start in range(0, len(todo), batch_size):
                idx = todo[start : start + batch_size]
                batch = collate([rows[i] for i in idx], pad_id)  # right padding: no effect on real positions
                logits = model(
                    input_ids=batch["input_ids"].to(device), attention_mask=batch["attention_mask"].to(device)
                ).logits
                if logits.shape[-1] < v:
                    raise ReasonDistillError(
                        f"teacher logits have {logits.shape[-1]} entries < vocab_size {v}"
                    )
                for b, i in enumerate(idx):
                    n = n_targets(len(rows[i].ids), rows[i].n_prompt)
                    lo = len(rows[i].ids) - 1 - n  # first position that predicts a completion token
                    row_logits = logits[b, lo : lo + n, :v]
                    entry = topk_logprobs(row_logits, k, temperature)
                    if tail_samples:
                        gen = torch.Generator().manual_seed(seed * 1_000_003 + i)
                        entry = (*entry, *sample_tail(row_logits, entry[0], tail_samples, temperature, gen))
                    writer.add(i, *entry)
                bar.update(len(idx))
            bar.close()
    finally:
        model.train(was_training)
    return LogitCache(out_dir)
