"""Key-token importance scorers that need no model: `random` (the control) and `tfidf`.

Wadhwa, Amir & Wallace (arXiv 2406.14511, Sec. 5) compare a rationale reduced to a few
"key" tokens with the same number of random tokens. The paper's exact key-token scorer is
not stated in what we could read; the choice is a recipe knob (`scorer:` of `key_tokens`),
and the teacher-based scorers live in teacher.py.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Literal

from pydantic import Field

from reasondistill.traces.transforms.base import (
    SCORERS,
    ImportanceScorer,
    Pieces,
    RationaleItem,
    TransformEnv,
)


class RandomScorer(ImportanceScorer):
    """Uniform random scores, so top-k is a uniform random k-subset: the paper's random-tokens control."""

    kind: Literal["random"] = "random"
    seed: int | None = Field(None, description="None: the key_tokens transform's seed")

    def score(
        self, items: list[RationaleItem], pieces: list[Pieces], env: TransformEnv, seed: int | None
    ) -> list[list[float]]:
        own = self.seed if self.seed is not None else seed
        out = []
        for it, p in zip(items, pieces, strict=True):
            rng = env.rng(own, "random_scorer", it.example_id)
            out.append([rng.random() for _ in range(len(p))])
        return out


class TfIdfScorer(ImportanceScorer):
    """TF-IDF of each piece over the stage's rationale corpus (each rationale one document).

    idf = ln((1 + N) / (1 + df)) + 1 (smoothed, as scikit-learn's default); tf = the piece's
    count in its rationale / the rationale's length. A piece repeated in a rationale gets the
    same score at each occurrence. Deterministic: no seed.
    """

    kind: Literal["tfidf"] = "tfidf"
    lowercase: bool = True

    def _term(self, text: str) -> str:
        text = text.strip()
        return text.lower() if self.lowercase else text

    def score(
        self, items: list[RationaleItem], pieces: list[Pieces], env: TransformEnv, seed: int | None
    ) -> list[list[float]]:
        docs = [[self._term(p.piece_text(i)) for i in range(len(p))] for p in pieces]
        df = Counter(t for doc in docs for t in set(doc))
        n = len(docs)
        idf = {t: math.log((1 + n) / (1 + c)) + 1 for t, c in df.items()}
        out = []
        for doc in docs:
            tf = Counter(doc)
            out.append([tf[t] / len(doc) * idf[t] for t in doc])
        return out


SCORERS.register("random", RandomScorer)
SCORERS.register("tfidf", TfIdfScorer)
