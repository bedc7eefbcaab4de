"""White-box knowledge distillation: KD losses on teacher logits, a sparse top-k logit cache,
and the teacher/student vocabulary check (Do, Doddipatla, Knill, INLG 2025, arXiv 2511.05184).

    losses.py   KD_LOSSES (forward_kl, reverse_kl, jsd, tv), KDLossConfig, kd_objective
    teacher.py  SparseTeacher (cached top-k) and the (k+1)-bucket formulation
    tail.py     tail samples: an unbiased forward KL from a top-k cache (arXiv 2503.16870)
    cache.py    the cache format; LogitCacheWriter (sharded, resumable), bytes_per_token
    reader.py   LogitCache (memmap-streamed reader; per-micro-batch gather)
    codec.py    on-disk encodings: fp16, packed (Elias-Fano ids + float8 log-probs)
    build.py    build_cache: score training rows once with a teacher model; rows_digest
    objective.py KDObjective: KD as the training loop's per-micro-batch objective (online or cached)
    vocab.py    check_vocab_compat
"""

from reasondistill.kd.build import build_cache, rows_digest
from reasondistill.kd.cache import LogitCache, LogitCacheWriter, bytes_per_token
from reasondistill.kd.losses import (
    KD_LOSSES,
    KDLossConfig,
    forward_kl,
    jsd,
    kd_objective,
    mean,
    next_token_mask,
    reverse_kl,
    tv,
)
from reasondistill.kd.objective import KDObjective
from reasondistill.kd.teacher import SparseTeacher, topk_logprobs
from reasondistill.kd.vocab import check_vocab_compat

__all__ = [
    "KD_LOSSES",
    "KDLossConfig",
    "KDObjective",
    "LogitCache",
    "LogitCacheWriter",
    "SparseTeacher",
    "build_cache",
    "bytes_per_token",
    "check_vocab_compat",
    "forward_kl",
    "jsd",
    "kd_objective",
    "mean",
    "next_token_mask",
    "reverse_kl",
    "rows_digest",
    "topk_logprobs",
    "tv",
]
