"""White-box knowledge distillation: KD losses on teacher logits, a sparse top-k logit cache,
and the teacher/student vocabulary check (Do, Doddipatla, Knill, INLG 2025, arXiv 2511.05184).

    losses.py   KD_LOSSES (forward_kl, reverse_kl, jsd, tv), kd_objective
    config.py   KDLossConfig (no torch: recipes validate it at plan time)
    teacher.py  SparseTeacher (cached top-k) and the (k+1)-bucket formulation
    tail.py     tail samples: an unbiased forward KL from a top-k cache (arXiv 2503.16870)
    cache.py    the cache format; LogitCacheWriter (sharded, resumable), bytes_per_token
    reader.py   LogitCache (memmap-streamed reader; per-micro-batch gather)
    codec.py    on-disk encodings: fp16, packed (Elias-Fano ids + float8 log-probs)
    build.py    build_cache: score training rows once with a teacher model; rows_digest
    objective.py KDObjective: KD as the training loop's per-micro-batch objective (online or cached)
    vocab.py    check_vocab_compat
"""

from importlib import import_module

# Imported on first use (PEP 562), not here: `reasondistill.kd.config` is read at plan time,
# and importing this package must not import torch (planning a recipe never does).
_WHERE = {
    "build_cache": "build",
    "rows_digest": "build",
    "LogitCache": "cache",
    "LogitCacheWriter": "cache",
    "bytes_per_token": "cache",
    "KDLossConfig": "config",
    "KD_LOSSES": "losses",
    "forward_kl": "losses",
    "jsd": "losses",
    "kd_objective": "losses",
    "mean": "losses",
    "next_token_mask": "losses",
    "reverse_kl": "losses",
    "tv": "losses",
    "KDObjective": "objective",
    "SparseTeacher": "teacher",
    "topk_logprobs": "teacher",
    "check_vocab_compat": "vocab",
}


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'reasondistill.kd' has no attribute {name!r}")
    return getattr(import_module(f"reasondistill.kd.{_WHERE[name]}"), name)


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
