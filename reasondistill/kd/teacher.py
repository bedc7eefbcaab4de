"""What a KD loss sees of the teacher: full logits, or a cached top-k `SparseTeacher`; and the
step that turns either into teacher/student log-probs over the same buckets at masked tokens.

Sparse teachers (cached top-k) are scored on a (k+1)-bucket coarsening of the vocabulary: the
k cached token ids, plus one "tail" bucket holding all the other tokens. Teacher bucket
probabilities are p_1..p_k and p_tail = 1 - sum p_i (cached); the student's are q_1..q_k at the
same ids and q_tail = the student's mass on every other id, computed exactly as a logsumexp over
the student's non-top-k logits (not as 1 - sum q_i, which cancels catastrophically when the
top-k holds almost all the mass). Any divergence is then computed exactly on these k+1 buckets.
Why this and not "renormalise both over the top-k":
  - it is a lower bound of the full-vocabulary divergence (data-processing inequality: merging
    outcomes never increases an f-divergence), exact when the teacher's tail is empty and the
    student's tail matches it;
  - it keeps the student from dumping mass into tokens outside the teacher's top-k: that mass
    shows up in q_tail and is penalised against p_tail, whereas a top-k renormalisation is
    blind to it.

Temperature with a cache: softening by tau needs sum_{j in tail} exp(z_j / tau), which no
summary of the tau=1 tail (its mass, or logsumexp) determines. So the cache stores the teacher
distribution already softened at the training temperature (`build_cache(temperature=...)`),
records it, and the loss refuses a sparse teacher cached at another temperature instead of
approximating. The student side, which has full logits, is softened exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from reasondistill.errors import ReasonDistillError

# Bucket log-probs are clamped here: exp(-1e4) is exactly 0 in fp32, so an empty bucket (a
# teacher tail of 0, log = -inf) contributes 0 * finite = 0 to every divergence instead of
# 0 * inf = NaN, and the clamp passes no gradient to it.
LOG_FLOOR = -1e4
# Written over the student's top-k logits before the tail logsumexp. Finite on purpose: a row
# whose tail is empty (k = V) then gets a finite logsumexp and a finite (zero) gradient; -inf
# would give exp(-inf - -inf) = NaN in the backward pass.
_MASKED_LOGIT = -1e30


def _upcast(x: torch.Tensor) -> torch.Tensor:
    """At least fp32 (bf16/fp16 logits are upcast; float64 stays float64, for reference checks)."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


@dataclass(frozen=True)
class SparseTeacher:
    """A cached top-k teacher distribution, laid out like the student's logits.

    ids: [B, T, k] integer token ids (distinct within a position).
    logprobs: [B, T, k] teacher log-probs of those ids (any float dtype; upcast to fp32).
    tail_logprob: [B, T] log(1 - sum exp(logprobs)): the mass on all other ids (-inf if none).
    temperature: the softening the log-probs were computed at (the loss must use the same).
    Positions outside the loss mask may hold anything (padding).
    """

    ids: torch.Tensor
    logprobs: torch.Tensor
    tail_logprob: torch.Tensor
    temperature: float = 1.0

    @property
    def k(self) -> int:
        return self.ids.shape[-1]

    def to(self, device: torch.device | str) -> SparseTeacher:
        return SparseTeacher(
            self.ids.to(device), self.logprobs.to(device), self.tail_logprob.to(device), self.temperature
        )

    @classmethod
    def from_logits(cls, logits: torch.Tensor, k: int, temperature: float = 1.0) -> SparseTeacher:
        """Top-k of full teacher logits [B, T, V] -> SparseTeacher [B, T, k] (fp32 log-probs)."""
        ids, logprobs, tail = topk_logprobs(logits, k, temperature)
        return cls(ids, logprobs, tail, temperature)


@torch.no_grad()
def topk_logprobs(
    logits: torch.Tensor, k: int, temperature: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Teacher logits [..., V] -> (ids [..., k] int64, log-probs [..., k] fp32, tail log-prob [...] fp32).

    Log-probs are of softmax(logits / temperature). The tail is a logsumexp over the non-top-k
    logits (exact; -inf when k = V), not log(1 - sum p_topk), which loses all precision when
    the top-k holds nearly all the mass.
    """
    if not 0 < k <= logits.shape[-1]:
        raise ReasonDistillError(f"top-k size k={k} must be in 1..{logits.shape[-1]} (the vocabulary size)")
    z = _upcast(logits) / temperature
    lse = z.logsumexp(-1)
    top, ids = z.topk(k, dim=-1)
    tail = z.scatter(-1, ids, float("-inf")).logsumexp(-1) - lse
    return ids, top - lse.unsqueeze(-1), tail


def bucket_logprobs(
    student_logits: torch.Tensor,
    teacher: torch.Tensor | SparseTeacher,
    mask: torch.Tensor,
    temperature: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Teacher and student log-probs (log_p, log_q), each [N, K] fp32, at the N masked tokens.

    student_logits: [B, T, V]; teacher: full logits [B, T, V] (K = V) or a SparseTeacher with
    [B, T, k] fields (K = k + 1: the k cached ids, then the tail bucket); mask: [B, T] bool.
    Both sides are softened by `temperature`. Masked-out positions are dropped *before* any
    math, so padding never produces NaN (in values or gradients) and costs no compute.
    """
    if student_logits.dim() != 3 or tuple(mask.shape) != tuple(student_logits.shape[:2]):
        raise ReasonDistillError(
            f"KD loss expects student logits [B, T, V] and mask [B, T]; got {tuple(student_logits.shape)} "
            f"and {tuple(mask.shape)}"
        )
    if temperature <= 0:
        raise ReasonDistillError(f"KD temperature must be > 0, got {temperature}")
    mask = mask.bool()
    vocab = student_logits.shape[-1]
    s = _upcast(student_logits[mask]) / temperature  # [N, V]
    if isinstance(teacher, SparseTeacher):
        return _sparse_buckets(s, teacher, mask, temperature, vocab)
    if tuple(teacher.shape) != tuple(student_logits.shape):
        raise ReasonDistillError(
            f"teacher logits {tuple(teacher.shape)} and student logits {tuple(student_logits.shape)} differ "
            "in shape; if only the vocabulary differs, slice both to the size returned by "
            "reasondistill.kd.check_vocab_compat at start-up"
        )
    log_p = torch.log_softmax(_upcast(teacher[mask]) / temperature, dim=-1)
    log_q = torch.log_softmax(s, dim=-1)
    return log_p.clamp_min(LOG_FLOOR), log_q.clamp_min(LOG_FLOOR)


def _sparse_buckets(
    s: torch.Tensor, teacher: SparseTeacher, mask: torch.Tensor, temperature: float, vocab: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(k+1)-bucket log-probs; s: [N, V] softened student logits at the masked tokens."""
    if abs(teacher.temperature - temperature) > 1e-6:
        raise ReasonDistillError(
            f"the sparse teacher was cached at temperature {teacher.temperature} but the KD loss uses "
            f"{temperature}: a top-k cache cannot be re-softened exactly; rebuild it with "
            f"build_cache(temperature={temperature}) or set the loss temperature to {teacher.temperature}"
        )
    shape = tuple(mask.shape)
    if (
        teacher.ids.shape[:2] != shape
        or teacher.logprobs.shape != teacher.ids.shape
        or tuple(teacher.tail_logprob.shape) != shape
    ):
        raise ReasonDistillError(
            f"sparse teacher fields ids {tuple(teacher.ids.shape)}, logprobs {tuple(teacher.logprobs.shape)}, "
            f"tail {tuple(teacher.tail_logprob.shape)} do not match the batch {shape} (want [B, T, k], [B, T])"
        )
    ids = teacher.ids[mask].long()  # [N, k]
    if ids.numel() and (int(ids.max()) >= vocab or int(ids.min()) < 0):
        raise ReasonDistillError(
            f"sparse teacher holds token ids up to {int(ids.max())} but the student vocabulary has {vocab} "
            "entries: the cache was built for another vocabulary (see reasondistill.kd.check_vocab_compat)"
        )
    top, tail = teacher.logprobs[mask].to(s.dtype), teacher.tail_logprob[mask].to(s.dtype)
    log_p = torch.cat([top, tail.unsqueeze(-1)], -1)
    # The cache stores fp16 log-probs, so the k+1 buckets sum to 1 only to ~1e-3; renormalise
    # so the teacher side is an exact distribution (keeps every divergence >= 0 and D(p, p) = 0).
    log_p = log_p.clamp_min(LOG_FLOOR)
    log_p = log_p - log_p.logsumexp(-1, keepdim=True)
    # Student: log q_i = s_i - logsumexp(s) at the cached ids; the tail is the logsumexp over
    # the other ids. No full [N, V] log_softmax is materialised (one fewer [N, V] tensor).
    lse = s.logsumexp(-1, keepdim=True)  # [N, 1]
    log_q_top = s.gather(-1, ids) - lse
    log_q_tail = s.scatter(-1, ids, _MASKED_LOGIT).logsumexp(-1, keepdim=True) - lse
    log_q = torch.cat([log_q_top, log_q_tail], -1)
    return log_p.clamp_min(LOG_FLOOR), log_q.clamp_min(LOG_FLOOR)
