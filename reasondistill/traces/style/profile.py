"""The style profile of one trace: pivots per type, distinct types, phases, length.

Lippmann & Yang (arXiv 2504.01738) characterise emergent reasoning traces by their pivots and
phases; 96.1% of the successful R1 traces they analysed hold at least 3 of the 4 pivot types.
A profile holds what that analysis needs, per trace:

    words                 whitespace-separated pieces
    tokens                a tokenizer's count when one is given, else the proxy below
    pivots                {type: count} (lexicon.py)
    distinct_pivot_types  how many of the 4 types occur at least once
    phases                the phase runs in order, e.g. [framing, exploration, verification, synthesis]
    phase_share           {phase: share of the trace's words} (phases.py)
    pivots_per_1k_words

Everything is computed on the lower-cased text, in one regex pass for the pivots.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from reasondistill.traces.style.lexicon import PIVOT_TYPES, Lexicon
from reasondistill.traces.style.phases import PHASES, segment

# Punctuation that subword tokenizers split off words; with the words, a tokenizer-free proxy.
_PUNCT = ".,;:!?()=+-*/"


def token_proxy(text: str) -> int:
    """Words plus punctuation marks: a cheap stand-in for a subword tokenizer's count."""
    return len(text.split()) + sum(text.count(c) for c in _PUNCT)


@dataclass
class TraceProfile:
    words: int
    tokens: int
    pivots: dict[str, int]
    phases: list[str]
    phase_words: dict[str, int]
    extra: dict = field(default_factory=dict)  # id, group, ... (the caller's)

    @property
    def distinct_pivot_types(self) -> int:
        return sum(1 for n in self.pivots.values() if n > 0)

    @property
    def total_pivots(self) -> int:
        return sum(self.pivots.values())

    @property
    def phase_share(self) -> dict[str, float]:
        total = sum(self.phase_words.values())
        return {p: (self.phase_words[p] / total if total else 0.0) for p in PHASES}

    def to_dict(self) -> dict:
        return {
            **self.extra,
            "words": self.words,
            "tokens": self.tokens,
            "pivots": dict(self.pivots),
            "distinct_pivot_types": self.distinct_pivot_types,
            "pivots_per_1k_words": 1000 * self.total_pivots / self.words if self.words else 0.0,
            "phases": list(self.phases),
            "phase_share": {p: round(s, 4) for p, s in self.phase_share.items()},
        }


class StyleAnalyzer:
    """Profiles traces with one lexicon; `count_tokens` (text -> int) defaults to `token_proxy`."""

    def __init__(self, lexicon: Lexicon, count_tokens: Callable[[str], int] | None = None) -> None:
        self.lexicon = lexicon
        self.count_tokens = count_tokens or token_proxy

    def profile(self, text: str, **extra) -> TraceProfile:
        low = " " + text.lower()
        found = self.lexicon.find_lower(low)
        pivots = dict.fromkeys(PIVOT_TYPES, 0)
        for _, ptype in found:
            pivots[ptype] += 1
        phase_words = dict.fromkeys(PHASES, 0)
        runs = []
        for seg in segment(low, found, self.lexicon):
            phase_words[seg.phase] += len(low[seg.start : seg.end].split())
            runs.append(seg.phase)
        return TraceProfile(
            words=sum(phase_words.values()),
            tokens=self.count_tokens(text),
            pivots=pivots,
            phases=runs,
            phase_words=phase_words,
            extra=extra,
        )
