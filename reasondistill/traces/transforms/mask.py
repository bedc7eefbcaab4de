"""`mask`: replace a fraction of the rationale's pieces with a mask token (arXiv 2406.14511).

A corruption control next to shuffling and key tokens: how much of the rationale can be
hidden before the gain of training on it disappears. Token level writes the tokenizer's
mask token (else its unknown token) as an id; word level writes `mask_token` as a word.
"""

from __future__ import annotations

import random
from typing import Any, Literal

from pydantic import Field

from reasondistill.errors import ReasonDistillError
from reasondistill.traces.transforms.base import (
    TRANSFORMS,
    RationaleItem,
    Segmented,
    TransformEnv,
    n_keep,
)


class Mask(Segmented):
    """Replace round(fraction * n) uniformly chosen pieces of each rationale by the mask."""

    kind: Literal["mask"] = "mask"
    fraction: float = Field(0.5, ge=0, le=1, description="share of pieces masked")
    mask_token: str | None = Field(
        None, description="word level: the replacement word (default <mask>); token level: default the "
        "tokenizer's mask token, else its unk token"
    )

    @staticmethod
    def masked(units: list[Any], fraction: float, mask: Any, rng: random.Random) -> list[Any]:
        hidden = set(rng.sample(range(len(units)), n_keep(float(fraction), len(units))))
        return [mask if i in hidden else u for i, u in enumerate(units)]

    def _mask_unit(self, env: TransformEnv) -> Any:
        if self.level == "word":
            return self.mask_token or "<mask>"
        tok = env.tokenizer(self.tokenizer)
        text = self.mask_token or tok.mask_token or tok.unk_token
        mask_id = tok.convert_tokens_to_ids(text) if text is not None else None
        if mask_id is None or (mask_id == tok.unk_token_id and text != tok.unk_token):
            raise ReasonDistillError(
                f"mask: the tokenizer has no token {text!r} (set mask_token to one of its tokens)"
                if text else "mask: the tokenizer has neither a mask nor an unk token; set mask_token"
            )
        return mask_id

    def apply(self, items: list[RationaleItem], env: TransformEnv) -> list[str]:
        mask = self._mask_unit(env)  # fails before any example is touched
        return [
            p.join(self.masked(p.units, self.fraction, mask, self.rng(env, it.example_id)))
            for it, p in zip(items, self.segment_all(items, env), strict=True)
        ]


TRANSFORMS.register("mask", Mask, paper="arXiv 2406.14511")
