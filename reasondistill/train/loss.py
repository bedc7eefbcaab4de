"""The SFT loss: summed token NLL, normalised by the caller over the whole global batch."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def nll_sum(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Sum of -log p(label) over positions whose label is not -100, computed in fp32.

    logits: [B, L, V]; labels: [B, L], aligned with input_ids (HF convention: the token at
    position t is predicted from position t-1). Labels are shifted by padding them rather
    than slicing the logits, which would copy the largest tensor of the step.
    """
    targets = F.pad(labels, (0, 1), value=-100)[:, 1:]
    return F.cross_entropy(
        logits.float().reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-100, reduction="sum"
    )


def n_targets(length: int, n_prompt: int) -> int:
    """Completion tokens of one row that receive a loss: the first token of a sequence is never
    predicted, so a row with an empty prompt (no BOS) loses its first completion token."""
    return max(length - max(n_prompt, 1), 0)
