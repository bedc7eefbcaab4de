"""White-box knowledge distillation: KD losses on teacher logits, a sparse top-k logit cache,
and the teacher/student vocabulary check (Do, Doddipatla, Knill, INLG 2025, arXiv 2511.05184).

    losses.py   KD_LOSSES (forward_kl, reverse_kl, jsd, tv), KDLossConfig, kd_objective
    teacher.py  SparseTeacher (cached top-k) and the (k+1)-bucket formulation
    cache.py    LogitCacheWriter / LogitCache (sharded, resumable, memmap-streamed), bytes_per_token
    build.py    build_cache: score training rows once with a teacher model
    vocab.py    check_vocab_compat
"""

from reasondistill.kd.build import build_cache
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
from reasondistill.kd.teacher import SparseTeacher, topk_logprobs
from reasondistill.kd.vocab import check_vocab_compat

__all__ = [
    "KD_LOSSES",
    "KDLossConfig",
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
    "topk_logprobs",
    "tv",
]
