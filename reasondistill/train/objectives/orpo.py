"""`orpo`: Odds Ratio Preference Optimization (Hong, Lee & Thorne, arXiv 2403.07691).

No reference model: SFT on the chosen side plus a log-odds-ratio term. With p̄(y) the
completion-token mean log-prob of y (TRL's `average_log_prob=True`) and
log odds(y) = p̄(y) - log(1 - exp(p̄(y))):

    loss = NLL(chosen) - λ · mean_pairs log sigmoid(log odds(chosen) - log odds(rejected))

as TRL 1.16's ORPOTrainer computes it (trl/experimental/orpo/orpo_trainer.py:
`concatenated_forward`, `odds_ratio_loss`, `get_batch_loss_metrics`; λ is its `beta`, default
0.1). Its NLL is the token-level cross-entropy over every labelled position of the chosen
sequences of the batch, prompt included ("orpo chosen nll loss is computed over the full prompt
and response"): `nll_prompt: true` (the default) matches it; `false` keeps the NLL to the
completion, as the paper's L_SFT on the response. tests/unit/test_dpo_orpo.py checks loss and
gradients against TRL on the same batch.

Normalisation: the two terms have different normalisers (chosen tokens, pairs). `count` returns
the pairs of the global batch and also records the chosen NLL tokens T of that same global batch;
`__call__` then returns sum_pairs [(pairs / T) · nll_sum(chosen) + λ · or_term], so that the
loop's division by the pair count gives nll_sum / T + λ · mean or_term over the global batch,
whatever its split into micro-batches and ranks (TRL averages per micro-batch instead, so its
loss depends on the split). The loop calls `count` on each global batch before its micro-batches
(train/loop.py), on every rank; called alone, the objective normalises by its own micro-batch.
The normaliser `count` records is spent by the calls of that global batch: it covers this rank's
share of its items (len / world size, train/batching.micro_batches), each call uses up len(idx)
of them, and a call beyond the share (a later call outside the loop, a batch that was never
counted) falls back to its own micro-batch instead of reusing a stale normaliser.
Departure: a mean completion log-prob of exactly 0 (a saturated model) is clamped to -1e-12 so
that log(1 - exp(.)) stays finite; TRL would give inf/NaN there.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from reasondistill.config import StrictModel
from reasondistill.train.objectives.base import OBJECTIVES, Objective
from reasondistill.train.objectives.preference import count_pairs, pair_counts, token_logps, valid_pairs


class ORPO(Objective):
    """SFT on chosen plus λ times the odds-ratio loss; no reference model (arXiv 2403.07691)."""

    class Config(StrictModel):
        kind: Literal["orpo"]
        lam: float = Field(0.1, ge=0, description="λ: weight of the odds-ratio term (TRL's ORPOConfig.beta)")
        nll_prompt: bool = Field(
            True, description="NLL over prompt + completion of chosen, as TRL; false: the completion only"
        )

    rows = "preference"

    def __init__(self, lam: float = 0.1, nll_prompt: bool = True) -> None:
        self.lam, self.nll_prompt = lam, nll_prompt
        self._scale: float | None = None  # pairs / chosen NLL tokens of the current global batch
        self._left = 0  # items of that global batch this rank has not yet computed

    @classmethod
    def build(cls, cfg: Config, ctx=None, model=None, tokenizer=None, rows=None) -> ORPO:
        return cls(cfg.lam, cfg.nll_prompt)  # no extra inputs: ORPO has no reference model

    def _nll_tokens(self, item) -> int:
        from reasondistill.train.loss import n_targets

        side = item.chosen
        return len(side.ids) - 1 if self.nll_prompt else n_targets(len(side.ids), side.n_prompt)

    def count(self, items) -> int:
        pairs = count_pairs(items)
        tokens = sum(self._nll_tokens(it) for it in items if pair_counts(it))
        self._scale = pairs / tokens if tokens else None
        self._left = len(items) // _world_size()
        return pairs

    def __call__(self, logits, batch, idx):
        import torch
        import torch.nn.functional as F

        ids, labels = batch["input_ids"], batch["labels"]
        # Every real (non-padding) position, prompt included, for the NLL; completion positions
        # for the mean log-probs of the odds ratio. One cross-entropy pass serves both.
        full = torch.where(batch["attention_mask"].bool(), ids, torch.full_like(ids, -100))
        logp = token_logps(logits, full)  # [2P, L]
        completion = F.pad(labels, (0, 1), value=-100)[:, 1:] != -100
        seq, n = (logp * completion).sum(-1), completion.sum(-1)
        valid = valid_pairs(n)
        nll = -(logp[0::2].sum(-1) if self.nll_prompt else seq[0::2])
        mean = seq / n.clamp(min=1)
        # Invalid pairs get a harmless stand-in before log1mexp, so no NaN reaches the gradient.
        stand_in = torch.full_like(mean[0::2], -1.0)
        c = torch.where(valid, mean[0::2], stand_in).clamp(max=-1e-12)
        r = torch.where(valid, mean[1::2], stand_in).clamp(max=-1e-12)
        log_odds = (c - r) - (log1mexp(c) - log1mexp(r))
        scale = None
        if self._scale is not None and 0 < len(idx) <= self._left:  # a micro-batch of the counted batch
            scale, self._left = self._scale, self._left - len(idx)
            if self._left == 0:
                self._scale = None  # spent: a later call must not reuse it
        if scale is None:  # called outside the loop: normalise by this micro-batch's own tokens
            nll_tokens = (full[0::2, 1:] != -100).sum(-1) if self.nll_prompt else n[0::2]
            scale = valid.sum() / (nll_tokens * valid).sum().clamp(min=1)
        per_pair = scale * nll - self.lam * F.logsigmoid(log_odds)
        return torch.where(valid, per_pair, torch.zeros_like(per_pair)).sum()

    def summary(self) -> dict:
        return {"orpo_lambda": self.lam, "orpo_nll_prompt": self.nll_prompt}


def _world_size() -> int:
    """Ranks sharing each global batch (1 without torch.distributed)."""
    import torch.distributed as dist

    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def log1mexp(x):
    """log(1 - exp(x)) for x < 0, stable on both sides of -ln 2 (TRL's and Mächler's split)."""
    import torch

    small = x < -0.6931471805599453
    # Each branch sees only inputs where it is used: the other branch's inf at x -> 0 (or x -> -inf)
    # would otherwise turn into a NaN gradient through torch.where.
    a = torch.log1p(-torch.exp(torch.where(small, x, torch.full_like(x, -1.0))))
    b = torch.log(-torch.expm1(torch.where(small, torch.full_like(x, -0.1), x)))
    return torch.where(small, a, b)


OBJECTIVES.register(
    "orpo",
    ORPO,
    description="ORPO: chosen NLL plus λ x log odds ratio, no reference model",
    paper="arXiv 2403.07691",
)
