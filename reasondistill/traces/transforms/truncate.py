"""`truncate`: keep the first fraction of the rationale (arXiv 2406.14511 ablates how much of
the rationale the student needs; a prefix is the order-preserving counterpart of key tokens).

The cut is made in the original text, after the last kept piece, so the kept prefix keeps
its exact spacing and line breaks at either level.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from reasondistill.traces.transforms.base import (
    TRANSFORMS,
    RationaleItem,
    Segmented,
    TransformEnv,
    n_keep,
)


class Truncate(Segmented):
    """The rationale up to the end of its first round(fraction * n) pieces (deterministic: no seed used)."""

    kind: Literal["truncate"] = "truncate"
    fraction: float = Field(0.5, ge=0, le=1, description="share of pieces kept, from the start")

    def apply(self, items: list[RationaleItem], env: TransformEnv) -> list[str]:
        out = []
        for p in self.segment_all(items, env):
            m = n_keep(float(self.fraction), len(p))
            out.append(p.text[: p.spans[m - 1][1]] if m else "")
        return out


TRANSFORMS.register("truncate", Truncate, paper="arXiv 2406.14511")
