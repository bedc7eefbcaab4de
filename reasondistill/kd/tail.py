"""Sampled tail of a top-k cache: an unbiased forward-KL estimate from top-k + tail samples.

A top-k cache scored on k+1 buckets (kd/teacher.py) drops, for forward KL, exactly

    p_tail * KL(r || q(.|tail)),   r = p(.|tail), the teacher's distribution inside its tail,

a bias that grows with the teacher's tail mass (bench/kd_throughput.py: ~2% of the loss at
k = 128 for a flat teacher). Following the importance-sampling idea of Anshumann et al.,
"Sparse Logit Sampling" (ACL 2025, arXiv 2503.16870), who show top-k caching gives biased
estimates and sample tokens from the teacher instead, we keep the exact top-k and add m ids
drawn i.i.d. from r, plus r's entropy H(r) computed exactly at build time. Then

    KL(r || q(.|tail)) = -H(r) - E_{j ~ r}[log q(j|tail)]
                      ~= -H(r) - (1/m) sum_s log q(s|tail)

is unbiased in value and in gradient (the teacher's part is exact; only the student's
log-likelihood of the tail is sampled), so the cached forward KL is unbiased for the full one.
Departure from the paper: it samples the whole distribution with importance weights and no
top-k; we sample only the tail, so the high-mass tokens stay exact (lower variance) and a cache
without samples is still the (k+1)-bucket lower bound. Only forward KL has such an estimator
(reverse KL, JSD and TV need the teacher's probability at tokens drawn from the student);
those losses ignore the samples and keep the bucket lower bound (docs/kd.md).
"""

from __future__ import annotations

import torch

from reasondistill.errors import ReasonDistillError


@torch.no_grad()
def sample_tail(
    logits: torch.Tensor,
    ids: torch.Tensor,
    m: int,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Teacher logits [P, V] and top-k ids [P, k] -> (m ids [P, m] drawn i.i.d. from the
    teacher's distribution outside the top-k, that distribution's entropy [P] in nats, fp32).

    Both at softmax(logits / temperature), like the cached log-probs. Needs k < V (a non-empty
    tail). `generator` makes the draws reproducible (the cache builder seeds it per row).
    """
    if m <= 0:
        raise ValueError(f"tail samples m must be > 0, got {m}")
    if ids.shape[-1] >= logits.shape[-1]:
        raise ReasonDistillError(
            f"tail samples need k < vocabulary size (k={ids.shape[-1]}, V={logits.shape[-1]}): the tail is empty"
        )
    z = logits.float() / temperature
    z = z.scatter(-1, ids, float("-inf"))
    log_r = z.log_softmax(-1)
    r = log_r.exp()
    entropy = -(r * log_r.clamp_min(-1e4)).sum(-1)
    samples = (
        torch.multinomial(r.cpu(), m, replacement=True, generator=generator)
        if len(r)
        else (torch.zeros(0, m, dtype=torch.int64))
    )
    return samples.to(ids.device), entropy


def sampled_tail_kl(
    student_logits: torch.Tensor,
    rows: torch.Tensor,
    first_id: torch.Tensor,
    samples: torch.Tensor,
    entropy: torch.Tensor,
    log_p: torch.Tensor,
    log_q: torch.Tensor,
    temperature: float,
) -> torch.Tensor:
    """Per-token estimate [N] of p_tail * KL(r || q(.|tail)), added to the bucket forward KL.

    student_logits [B, T, V] (not softened); rows [N] flat indices of the scored positions;
    first_id [N] the first cached id of each (used to recover the student's logsumexp from
    log_q without another pass over [N, V]: lse = s_id - log q_id, whose autograd is exact);
    samples [N, m] tail ids; entropy [N] = H(r); log_p, log_q [N, k+1] the bucket log-probs of
    kd/teacher.bucket_logprobs (last column: the tail bucket).
    """
    flat = student_logits.reshape(-1, student_logits.shape[-1])
    dtype = log_q.dtype
    s_first = flat[rows, first_id].to(dtype) / temperature  # [N]
    s_samples = flat[rows.unsqueeze(-1), samples.long()].to(dtype) / temperature  # [N, m]
    lse = s_first - log_q[:, 0]
    log_q_cond = s_samples - lse.unsqueeze(-1) - log_q[:, -1:]  # log q(s | tail)
    return log_p[:, -1].exp() * (-entropy.to(dtype) - log_q_cond.mean(-1))
