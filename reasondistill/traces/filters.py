"""Selecting traces by verifier score: rejection sampling keeps the correct ones."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from reasondistill.records import Trace

Keep = Literal["correct", "all", "wrong"]


def _kept(t: Trace, keep: Keep) -> bool:
    if keep == "all":
        return True
    if keep == "correct":
        return t.score == 1.0
    if keep == "wrong":
        # Verified wrong only: an unscored trace (score None) is neither correct nor wrong.
        return t.score is not None and t.score != 1.0
    raise ValueError(f"keep must be correct, all or wrong, got {keep!r}")


def filter_traces(
    traces: Iterable[Trace], keep: Keep = "correct", one_per_example: bool = True
) -> list[Trace]:
    """Traces whose score matches `keep` ("correct" means score == 1.0), in input order.

    With `one_per_example`, each example keeps only its matching trace with the lowest
    sample index, so the choice does not depend on the order samples were written in.
    """
    kept = [t for t in traces if _kept(t, keep)]
    if not one_per_example:
        return kept
    best: dict[str, Trace] = {}
    for t in kept:
        if t.example_id not in best or t.sample < best[t.example_id].sample:
            best[t.example_id] = t
    return list(best.values())  # dicts keep first-insertion order: example order of the input
