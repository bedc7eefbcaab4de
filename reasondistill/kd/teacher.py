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
# Fast-path tail log-probs below this are recomputed exactly (exp(-80) is near fp32's range end).
_UNDERFLOW = -80.0


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
    mask: None for the [B, T, ...] layout above. Packed layout: mask [B, T] bool and fields
    [N, k] / [N] holding only the N positions where mask is True (row-major), which must be the
    loss's mask; it skips scattering into [B, T, k] just for the loss to gather back
    (LogitCache.batch(..., packed=True), the training path).
    samples [B, T, m] / tail_entropy [B, T] (or [N, m] / [N] packed): optional ids drawn from
    the teacher's distribution inside its tail and that distribution's entropy; forward KL
    uses them for an unbiased estimate of what the buckets drop (kd/tail.py).
    """

    ids: torch.Tensor
    logprobs: torch.Tensor
    tail_logprob: torch.Tensor
    temperature: float = 1.0
    mask: torch.Tensor | None = None
    samples: torch.Tensor | None = None
    tail_entropy: torch.Tensor | None = None

    @property
    def k(self) -> int:
        return self.ids.shape[-1]

    def to(self, device: torch.device | str) -> SparseTeacher:
        def move(x):
            return None if x is None else x.to(device)

        return SparseTeacher(
            self.ids.to(device), self.logprobs.to(device), self.tail_logprob.to(device), self.temperature,
            move(self.mask), move(self.samples), move(self.tail_entropy),
        )  # fmt: skip

    def samples_at(self, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        """(samples [N, m], tail entropy [N]) at the loss mask's positions, or None if not cached."""
        if self.samples is None or self.tail_entropy is None:
            return None
        if self.mask is None:
            return self.samples[mask], self.tail_entropy[mask]
        self.at(mask)  # checks the packed layout was built for this mask
        return self.samples, self.tail_entropy

    def at(self, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(ids [N, k], logprobs [N, k], tail [N]) at the loss mask's N True positions."""
        if self.mask is None:
            return self.ids[mask], self.logprobs[mask], self.tail_logprob[mask]
        if self.mask.shape != mask.shape or not torch.equal(self.mask.to(mask.device), mask):
            raise ReasonDistillError("a packed SparseTeacher was built for another loss mask")
        return self.ids, self.logprobs, self.tail_logprob

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
    if isinstance(teacher, SparseTeacher):
        return _sparse_buckets(student_logits, teacher, mask, temperature, vocab)
    s = _upcast(student_logits[mask])  # [N, V]
    if temperature != 1.0:  # skipped at tau = 1 (the paper's setting): two fewer passes over [N, V]
        s = s / temperature
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
    student_logits: torch.Tensor, teacher: SparseTeacher, mask: torch.Tensor, temperature: float, vocab: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(k+1)-bucket log-probs at the masked tokens; student_logits [B, T, V], not yet softened."""
    if abs(teacher.temperature - temperature) > 1e-6:
        raise ReasonDistillError(
            f"the sparse teacher was cached at temperature {teacher.temperature} but the KD loss uses "
            f"{temperature}: a top-k cache cannot be re-softened exactly; rebuild it with "
            f"build_cache(temperature={temperature}) or set the loss temperature to {teacher.temperature}"
        )
    shape = tuple(mask.shape)
    if teacher.mask is None and (
        teacher.ids.shape[:2] != shape
        or teacher.logprobs.shape != teacher.ids.shape
        or tuple(teacher.tail_logprob.shape) != shape
    ):
        raise ReasonDistillError(
            f"sparse teacher fields ids {tuple(teacher.ids.shape)}, logprobs {tuple(teacher.logprobs.shape)}, "
            f"tail {tuple(teacher.tail_logprob.shape)} do not match the batch {shape} (want [B, T, k], [B, T])"
        )
    ids, top, tail = teacher.at(mask)
    ids = ids.long()  # [N, k]
    if ids.numel() and (int(ids.max()) >= vocab or int(ids.min()) < 0):
        raise ReasonDistillError(
            f"sparse teacher holds token ids up to {int(ids.max())} but the student vocabulary has {vocab} "
            "entries: the cache was built for another vocabulary (see reasondistill.kd.check_vocab_compat)"
        )
    dtype = torch.promote_types(student_logits.dtype, torch.float32)
    top, tail = top.to(dtype), tail.to(dtype)
    log_p = torch.cat([top, tail.unsqueeze(-1)], -1)
    # The cache stores fp16 log-probs, so the k+1 buckets sum to 1 only to ~1e-3; renormalise
    # so the teacher side is an exact distribution (keeps every divergence >= 0 and D(p, p) = 0).
    log_p = log_p.clamp_min(LOG_FLOOR)
    log_p = log_p - log_p.logsumexp(-1, keepdim=True)
    rows = mask.reshape(-1).nonzero().squeeze(-1)  # [N] flat positions of the masked tokens
    log_q = _StudentBuckets.apply(student_logits, rows, ids, temperature)
    if ids.shape[-1] < vocab:
        # A tail below ~e^-80 of the top logit underflows in the fast path's exp(); recompute
        # those (rare) rows exactly as a logsumexp over the non-top-k logits.
        under = log_q[:, -1] < _UNDERFLOW
        if bool(under.any()):
            su = _upcast(student_logits.reshape(-1, vocab)[rows[under]]) / temperature
            exact = su.scatter(-1, ids[under], _MASKED_LOGIT).logsumexp(-1) - su.logsumexp(-1)
            log_q = torch.cat([log_q[:, :-1], log_q[:, -1].index_put((under,), exact).unsqueeze(-1)], -1)
    else:  # k = V: the tail bucket is empty (p_tail = 0 too), a constant at the floor
        log_q = torch.cat([log_q[:, :-1], torch.full_like(log_q[:, -1:], LOG_FLOOR)], -1)
    return log_p.clamp_min(LOG_FLOOR), log_q.clamp_min(LOG_FLOOR)


class _StudentBuckets(torch.autograd.Function):
    """Student log-probs on the (k+1) buckets: log q at the k cached ids, then log q_tail.

    (logits [B, T, V], rows [N] flat indices of the scored positions, ids [N, k] distinct ids,
    temperature) -> [N, k+1] in fp32 (or float64). Hand-written because it is the hot loop of
    cached KD. Forward: one copy of the N scored rows, softened, shifted and exponentiated in
    place (e = exp(s - max), kept with the k cached entries zeroed, so q_tail is summed directly
    from the small terms: no 1 - sum(q_top) cancellation). Backward: one multiply pass (grad =
    e * per-row coefficient, then the k cached entries) written into the full-size gradient.
    Autograd through index, two logsumexps and a scatter takes ~3x the passes over [N, V].
    log q_top is s_i - logsumexp(s), exact even where exp underflows; a tail that underflows
    entirely comes out -inf and is recomputed exactly by the caller.
    """

    @staticmethod
    def forward(ctx, logits: torch.Tensor, rows: torch.Tensor, ids: torch.Tensor, temperature: float):
        flat = logits.reshape(-1, logits.shape[-1])
        e = _upcast(flat.index_select(0, rows))  # a fresh [N, V] tensor: safe to work in place
        if temperature != 1.0:
            e.div_(temperature)
        top = e.gather(-1, ids)
        m = e.amax(-1, keepdim=True)
        e.sub_(m).exp_()
        total = e.sum(-1, keepdim=True)  # >= 1 (the max's own term)
        lse = m + total.log()
        top = top - lse
        e.scatter_(-1, ids, 0.0)
        tail = e.sum(-1, keepdim=True)
        ctx.save_for_backward(e, rows, ids, top, tail, total)
        ctx.shape, ctx.dtype, ctx.temperature = logits.shape, logits.dtype, temperature
        return torch.cat([top, tail.log() + m - lse], -1)

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        e, rows, ids, top, tail, total = ctx.saved_tensors
        g_top, g_tail = g[:, :-1], g[:, -1:]
        g_sum = g.sum(-1, keepdim=True)
        # d log q_i / ds_j = [j = i] - q_j;  d log q_tail / ds_j = [j in tail] q_j / q_tail - q_j
        coef = torch.where(tail > 0, g_tail / tail, 0.0) - g_sum / total  # [N, 1]
        grad_rows = e * coef  # the tail ids (cached entries of e are 0)
        grad_rows.scatter_(-1, ids, g_top - top.exp() * g_sum)
        if ctx.temperature != 1.0:
            grad_rows.div_(ctx.temperature)
        # Only the unscored rows (prompt, padding) need zeros: skip zero-filling the scored ones.
        n_flat = ctx.shape[:-1].numel()
        grad = torch.empty(n_flat, ctx.shape[-1], dtype=ctx.dtype, device=e.device)
        grad.index_copy_(0, rows, grad_rows.to(ctx.dtype))
        unscored = torch.ones(n_flat, dtype=torch.bool, device=e.device)
        unscored[rows] = False
        grad[unscored] = 0.0
        return grad.view(ctx.shape), None, None, None
