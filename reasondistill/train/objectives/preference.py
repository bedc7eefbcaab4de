"""What DPO and ORPO share: per-sequence log-probs of a pair batch, and which pairs count.

A pair batch is train/batching.collate's layout: row 2i is pair i's chosen side, row 2i + 1 its
rejected side. A pair counts (gets a loss and is counted by `count`) only when both sides have at
least one completion token with a label: truncation to max_length can cut a completion away, and
a pair with an empty side says nothing about which completion is preferred. Counting and summing
over exactly the same pairs keeps the loop's global normalisation exact (train/loop.py).

Torch is imported inside functions: planning imports the registered classes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

    from reasondistill.train.batching import Item


def pair_counts(item) -> bool:
    """True when both sides of an EncodedPair have a completion token that gets a loss."""
    from reasondistill.train.loss import n_targets

    return all(n_targets(len(s.ids), s.n_prompt) > 0 for s in (item.chosen, item.rejected))


def count_pairs(items: Sequence[Item]) -> int:
    """Pairs of a global batch that get a loss (the normaliser of DPO and ORPO)."""
    return sum(pair_counts(it) for it in items)


def token_logps(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """[B, L] fp32 log p(label) at each position (0 where the label is -100).

    logits [B, L, V]; labels [B, L] aligned with input_ids (HF convention, shifted here by padding
    rather than slicing the logits, which would copy the largest tensor of the step). Fused
    cross-entropy avoids materialising a [B, L, V] log-softmax.
    """
    import torch.nn.functional as F

    targets = F.pad(labels, (0, 1), value=-100)[:, 1:]
    ce = F.cross_entropy(
        logits.float().reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-100, reduction="none"
    )
    return -ce.view(targets.shape)


def sequence_logps(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(sum of completion-token log-probs [B], completion tokens with a label [B]), fp32."""
    targets = labels[:, 1:] != -100
    return token_logps(logits, labels).sum(-1), targets.sum(-1)


def valid_pairs(n_tokens: torch.Tensor) -> torch.Tensor:
    """[P] bool: both sides of pair i (rows 2i, 2i + 1) have completion tokens with a label."""
    return (n_tokens[0::2] > 0) & (n_tokens[1::2] > 0)
