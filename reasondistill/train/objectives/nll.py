"""`nll`: supervised fine-tuning, the summed negative log-likelihood of the completion tokens."""

from __future__ import annotations

from typing import Literal

from reasondistill.config import StrictModel
from reasondistill.train.objectives.base import OBJECTIVES, Objective


class NLL(Objective):
    """Summed completion-token NLL (train/loss.py nll_sum); prompt and padding carry no loss."""

    class Config(StrictModel):
        kind: Literal["nll"] = "nll"

    rows = "completion"

    @classmethod
    def build(cls, cfg=None, ctx=None, model=None, tokenizer=None, rows=None) -> NLL:
        return cls()  # no extra inputs

    def __call__(self, logits, batch, idx):
        from reasondistill.train.loss import nll_sum  # lazy: registering this class imports no torch

        return nll_sum(logits, batch["labels"])


OBJECTIVES.register("nll", NLL, description="supervised fine-tuning: NLL of the completion tokens")
