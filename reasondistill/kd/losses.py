"""Token-level KD losses on teacher logits (white-box distillation).

White-box KD as in Do, Doddipatla & Knill (INLG 2025, arXiv 2511.05184): at every completion
token the student matches the teacher's next-token distribution; the paper uses forward KL at
tau = 1 with the KD loss only (`KDLossConfig()` defaults: forward_kl, temperature 1, alpha 0).

Every loss in KD_LOSSES has one signature (its recipe config, KDLossConfig, is in kd/config.py
so that planning a recipe imports no torch):

    loss(student_logits [B, T, V], teacher, mask [B, T] bool, *, temperature=1.0, **options)
        -> (sum_loss: 0-dim fp32 tensor, n_tokens: int)

`teacher` is full logits [B, T, V] or a cached top-k `SparseTeacher` (see kd/teacher.py for
the (k+1)-bucket formulation). The loss is the SUM over masked tokens, so the training loop
divides by the token count of the whole global batch (gradient-accumulation invariant, like
train/loss.py's nll_sum); `mean` is the per-batch convenience. Math is fp32 for bf16/fp16/fp32
inputs (float64 inputs stay float64). An all-masked batch gives exactly 0 with n_tokens 0 and a zero (finite) gradient.

Temperature tau (Hinton et al. 2015): both distributions are softmax(logits / tau) and the
divergence is multiplied by tau**2, so gradient magnitudes stay comparable across tau. This
departs from TRL's GKD trainer, which softens but does not rescale. The tau**2 factor is applied
to every loss, TV included, so changing `name` never changes the scale convention.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import torch
import torch.nn.functional as F

from reasondistill.errors import ReasonDistillError
from reasondistill.kd.config import KDLossConfig
from reasondistill.kd.tail import sampled_tail_kl
from reasondistill.kd.teacher import SparseTeacher, bucket_logprobs
from reasondistill.registry import Registry

Teacher = torch.Tensor | SparseTeacher
KDLoss = Callable[..., tuple[torch.Tensor, int]]
KD_LOSSES: Registry[KDLoss] = Registry("kd loss", "kd losses")


def _kl(log_a: torch.Tensor, log_b: torch.Tensor) -> torch.Tensor:
    """KL(a || b) per row of [N, K] log-probs -> [N]. Empty buckets of `a` (clamped to the
    log floor, so exp() is exactly 0) contribute 0."""
    return (log_a.exp() * (log_a - log_b)).sum(-1)


def _reduce(per_token: torch.Tensor, temperature: float) -> torch.Tensor:
    # sum() of an empty [0] tensor is 0 and backpropagates zeros: the all-masked case.
    return per_token.sum() * temperature**2


@KD_LOSSES.register("forward_kl", paper="arXiv 2511.05184")
def forward_kl(
    student_logits: torch.Tensor, teacher: Teacher, mask: torch.Tensor, *, temperature: float = 1.0
) -> tuple[torch.Tensor, int]:
    """sum over masked tokens of tau^2 KL(p_teacher || q_student): mean-seeking (covers every
    teacher mode); the loss of arXiv 2511.05184. A sparse teacher with tail samples adds their
    unbiased estimate of the KL inside the tail, which the buckets drop (kd/tail.py)."""
    log_p, log_q = bucket_logprobs(student_logits, teacher, mask, temperature)
    per_token = _kl(log_p, log_q)
    tail = teacher.samples_at(mask.bool()) if isinstance(teacher, SparseTeacher) else None
    if tail is not None and len(per_token):
        rows = mask.bool().reshape(-1).nonzero().squeeze(-1)
        first_id = teacher.at(mask.bool())[0][:, 0].long()
        per_token = per_token + sampled_tail_kl(
            student_logits, rows, first_id, *tail, log_p, log_q, temperature
        )
    return _reduce(per_token, temperature), log_p.shape[0]


@KD_LOSSES.register("reverse_kl")
def reverse_kl(
    student_logits: torch.Tensor, teacher: Teacher, mask: torch.Tensor, *, temperature: float = 1.0
) -> tuple[torch.Tensor, int]:
    """sum over masked tokens of tau^2 KL(q_student || p_teacher): mode-seeking."""
    log_p, log_q = bucket_logprobs(student_logits, teacher, mask, temperature)
    return _reduce(_kl(log_q, log_p), temperature), log_p.shape[0]


@KD_LOSSES.register("jsd", paper="arXiv 2306.13649", description="generalized JSD of GKD in TRL's convention (beta=0 forward KL, 1 reverse KL)")
def jsd(
    student_logits: torch.Tensor,
    teacher: Teacher,
    mask: torch.Tensor,
    *,
    temperature: float = 1.0,
    beta: float = 0.5,
) -> tuple[torch.Tensor, int]:
    """Generalized JSD of GKD (Agarwal et al., arXiv 2306.13649, Eq. 1), TRL's convention
    (trl GKDTrainer.generalized_jsd_loss):

        M = beta * p_teacher + (1 - beta) * q_student
        JSD_beta = beta * KL(p || M) + (1 - beta) * KL(q || M)

    and, exactly as TRL, the endpoints are special-cased: beta = 0 is forward KL(p || q) and
    beta = 1 is reverse KL(q || p). Note the formula itself vanishes at both ends
    (JSD_beta ~ beta * KL(p || q) as beta -> 0 and ~ (1 - beta) * KL(q || p) as beta -> 1),
    so the loss is not continuous in beta at 0 and 1: it is the *direction* (gradient) that
    tends to forward / reverse KL, not the value. Tests check both facts.
    """
    if not 0.0 <= beta <= 1.0:
        raise ValueError(f"jsd beta must be in [0, 1], got {beta}")
    log_p, log_q = bucket_logprobs(student_logits, teacher, mask, temperature)
    if beta == 0.0:
        per_token = _kl(log_p, log_q)
    elif beta == 1.0:
        per_token = _kl(log_q, log_p)
    else:
        b = torch.tensor(beta, dtype=log_p.dtype, device=log_p.device)
        log_m = torch.logsumexp(torch.stack([log_p + torch.log(b), log_q + torch.log1p(-b)]), dim=0)
        per_token = beta * _kl(log_p, log_m) + (1.0 - beta) * _kl(log_q, log_m)
    return _reduce(per_token, temperature), log_p.shape[0]


@KD_LOSSES.register("tv")
def tv(
    student_logits: torch.Tensor, teacher: Teacher, mask: torch.Tensor, *, temperature: float = 1.0
) -> tuple[torch.Tensor, int]:
    """sum over masked tokens of tau^2 total variation 0.5 * sum_v |p_v - q_v| (bounded by 1)."""
    log_p, log_q = bucket_logprobs(student_logits, teacher, mask, temperature)
    return _reduce(0.5 * (log_p.exp() - log_q.exp()).abs().sum(-1), temperature), log_p.shape[0]


def mean(sum_loss: torch.Tensor, n_tokens: int) -> torch.Tensor:
    """Per-token mean of one batch: `mean(*forward_kl(...))`. 0 (not NaN) when n_tokens is 0."""
    return sum_loss / max(n_tokens, 1)


def loss_options(fn: KDLoss) -> list[str]:
    """Names of a loss's own keyword options (everything keyword-only except temperature)."""
    params = inspect.signature(fn).parameters.values()
    return [p.name for p in params if p.kind is p.KEYWORD_ONLY and p.name != "temperature"]


def next_token_mask(labels: torch.Tensor) -> torch.Tensor:
    """[B, L] bool: logits position t is scored iff labels[:, t + 1] != -100.

    labels follow the HF convention (aligned with input_ids, -100 = no loss; the model
    shifts), as produced by train/batching.collate. The teacher's logits, and a cache built by
    kd.build_cache, use the same positions.
    """
    return F.pad(labels[:, 1:] != -100, (0, 1), value=False)


def kd_objective(
    student_logits: torch.Tensor,
    labels: torch.Tensor,
    teacher: Teacher | None,
    cfg: KDLossConfig,
) -> tuple[torch.Tensor, int]:
    """(sum over completion tokens of alpha * CE + (1 - alpha) * KD, number of such tokens).

    student_logits: [B, L, V] from input_ids [B, L]; labels: [B, L], NOT shifted: the HF
    convention (labels aligned with input_ids, -100 on prompt and padding) that
    train/batching.collate produces and HF models take. The shift happens here: logits at
    position t are scored against labels[:, t + 1] (see next_token_mask). teacher: logits
    [B, L, V] of the same input_ids, or a SparseTeacher [B, L, k] in that layout (e.g.
    LogitCache.batch(rows, mask=next_token_mask(labels))); may be None when alpha == 1.
    The CE term uses temperature 1 (it fits the gold tokens, not softened targets).
    """
    if tuple(labels.shape) != tuple(student_logits.shape[:2]):
        raise ReasonDistillError(
            f"labels {tuple(labels.shape)} do not match student logits {tuple(student_logits.shape)}"
        )
    mask = next_token_mask(labels)
    total = student_logits.new_zeros((), dtype=torch.promote_types(student_logits.dtype, torch.float32))
    n_tokens = int(mask.sum())
    if cfg.alpha < 1.0:
        if teacher is None:
            raise ValueError("kd_objective needs a teacher unless alpha == 1")
        kd_sum, _ = KD_LOSSES.get(cfg.kind)(
            student_logits, teacher, mask, temperature=cfg.temperature, **cfg.options()
        )
        total = total + (1.0 - cfg.alpha) * kd_sum
    if cfg.alpha > 0.0:
        targets = F.pad(labels[:, 1:], (0, 1), value=-100)[mask]
        logits = student_logits[mask]
        ce_sum = F.cross_entropy(logits.to(total.dtype), targets, reduction="sum")
        total = total + cfg.alpha * ce_sum
    return total, n_tokens
