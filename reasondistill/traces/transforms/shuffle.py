"""`shuffle`: permute the rationale's pieces per example (arXiv 2406.14511, Sec. 5).

The paper finds that with the rationale placed *after* the label, permuting its tokens keeps
most of the gain over label-only training: the student benefits from what the tokens are,
not from a coherent argument. Word level permutes whitespace words; token level permutes
tokenizer ids (the paper shuffles tokens; which tokenizer it used is the student's, here a
recipe knob).
"""

from __future__ import annotations

import random
from typing import Any, Literal

from reasondistill.traces.transforms.base import (
    TRANSFORMS,
    RationaleItem,
    Segmented,
    TransformEnv,
)


class Shuffle(Segmented):
    """Every example's pieces in a uniformly random order (the same multiset of pieces)."""

    kind: Literal["shuffle"] = "shuffle"

    @staticmethod
    def permute(units: list[Any], rng: random.Random) -> list[Any]:
        out = list(units)
        rng.shuffle(out)  # Fisher-Yates: every permutation equally likely
        return out

    def apply(self, items: list[RationaleItem], env: TransformEnv) -> list[str]:
        return [
            p.join(self.permute(p.units, self.rng(env, it.example_id)))
            for it, p in zip(items, self.segment_all(items, env), strict=True)
        ]


TRANSFORMS.register("shuffle", Shuffle, paper="arXiv 2406.14511")
