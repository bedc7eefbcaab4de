"""Phase segmentation: framing / exploration / verification / synthesis, by documented rules.

Lippmann & Yang (arXiv 2504.01738) describe reasoning traces in four phases after Newell &
Simon's problem-solving stages: problem framing, exploration, verification, synthesis. Their
segmenter is not public; ours labels whole units (sentences, and lines: a unit ends at '.',
'!' or '?' followed by whitespace, or at a newline) from the pivots and cues of the lexicon:

1. Framing: the units before the first unit that has a pivot of any type or a `work` cue (by
   default an '=' or a numbered step). A trace with no such unit frames in its first unit only.
2. Synthesis: after the last unit holding a realization, exploration or verification pivot
   (and after framing), from the first unit with an integration pivot or a `conclusion` cue
   ("the answer is") to the end. Without such a unit the trace has no synthesis.
3. Between them every unit is exploration or verification: a unit with a verification pivot
   is verification; one with a realization or exploration pivot (and none of verification)
   is exploration; a unit with no pivot continues the phase of the unit before (exploration
   at first). So "Let me check: 7+8=15. 15+9=24." is one verification span of two units.

The result is the sequence of phase runs (F E V E V S ...) and the words in each phase.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass

PHASES = ("framing", "exploration", "verification", "synthesis")
_UNIT_END = re.compile(r"[.!?]+(?=\s)|\n")
_NON_EV = frozenset({"realization", "exploration", "verification"})


@dataclass(frozen=True)
class Segment:
    """One run of units in one phase: [start, end) offsets in the analysed text."""

    phase: str
    start: int
    end: int


def units(text: str) -> list[tuple[int, int]]:
    """(start, end) of every unit of `text` that holds more than whitespace."""
    out, start = [], 0
    for m in _UNIT_END.finditer(text):
        if not text[start : m.end()].isspace() and m.end() > start:
            out.append((start, m.end()))
        start = m.end()
    if start < len(text) and not text[start:].isspace():
        out.append((start, len(text)))
    return out


def segment(text: str, pivots: list[tuple[int, str]], lexicon) -> list[Segment]:
    """Phase runs of `text` (already lower-cased) given its pivots [(offset, type)], in order.

    `lexicon`: a Lexicon (its `work` and `conclusion` cue regexes)."""
    spans = units(text)
    if not spans:
        return []
    ends = [e for _, e in spans]
    types: dict[int, set[str]] = {}
    for offset, ptype in pivots:
        i = min(bisect_right(ends, offset), len(spans) - 1)
        types.setdefault(i, set()).add(ptype)

    def cue(regex, i: int) -> bool:
        return regex is not None and regex.search(text, spans[i][0], spans[i][1]) is not None

    # 1. framing
    first_work = next((i for i in range(len(spans)) if i in types or cue(lexicon.work, i)), None)
    framing_end = 1 if first_work is None else first_work
    # 2. synthesis
    last_rev = max((i for i, t in types.items() if t & _NON_EV), default=-1)
    synth = next(
        (
            i
            for i in range(max(last_rev + 1, framing_end), len(spans))
            if "integration" in types.get(i, ()) or cue(lexicon.conclusion, i)
        ),
        len(spans),
    )
    # 3. exploration / verification between them
    labels = ["framing"] * framing_end
    state = "exploration"
    for i in range(framing_end, synth):
        t = types.get(i, ())
        if "verification" in t:
            state = "verification"
        elif "realization" in t or "exploration" in t:
            state = "exploration"
        labels.append(state)
    labels += ["synthesis"] * (len(spans) - synth)
    segments: list[Segment] = []
    for (start, end), label in zip(spans, labels, strict=True):
        if segments and segments[-1].phase == label:
            segments[-1] = Segment(label, segments[-1].start, end)
        else:
            segments.append(Segment(label, start, end))
    return segments
