"""LLM annotation of pivots and phases: the paper's likely method, with any teacher backend.

Lippmann & Yang (arXiv 2504.01738) do not publish how they found the pivots and phases of
DeepSeek-R1's traces; a language model labelling each trace is the likely method. This module
asks any teacher kind (`hf`: a local instruct model; `openai`: a served one, vLLM or SGLang) to
label every unit of a trace (units as in phases.py: sentences and lines) with its phase and the
pivot types it holds, and turns the labels into the TraceProfile the lexicon gives, so every
summary, chart and report reads both (`style_analyze` with `annotator:`).

The prompt (`annotation_prompt`) defines the four pivot types and the four phases with the
paper's example markers, lists the numbered units, and asks for one line per unit:
`<n> | <phase> | <pivot types, or none>`. `parse_labels` accepts `:`, `;`, `,` or `|` between
the fields, markdown bold, a "Sentence 3:" prefix and a phase's first letter (F/E/V/S).

Where it departs from the lexicon detector, by design:
- a pivot type counts once per unit the annotator gives it (the lexicon counts every marker,
  so two "wait"s in one sentence are 2 there and 1 here);
- the phase of each unit is the annotator's judgement, not phases.py's rules.
A reply that leaves a unit without a line naming a known phase is not guessed at: that
trace gets no profile and is counted as unparsed (`annotation` in the stage's summary). A
trace longer than `max_units` units is labelled in windows of `max_units`, one call each,
numbered as in the whole trace.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import Field, model_validator

from reasondistill.config import StageContext, StrictModel
from reasondistill.records import Example
from reasondistill.teachers import TEACHERS, build_teacher
from reasondistill.traces.store import TraceStore
from reasondistill.traces.style.lexicon import PIVOT_TYPES
from reasondistill.traces.style.phases import PHASES, units
from reasondistill.traces.style.profile import TraceProfile, token_proxy

ANNOTATIONS_FILE = "annotations.jsonl"  # the teacher's replies (a TraceStore: a rerun resumes)

PROMPT = """You annotate the reasoning trace of a language model, sentence by sentence.

Pivot types (a sentence can hold several, or none):
- realization: the writer notices something, often a mistake ("Wait", "Hmm", "Actually", "Oh, I see").
- verification: the writer checks a result ("Let me check", "Let me verify", "Double-check").
- exploration: the writer tries an alternative or a hypothesis ("What if", "Alternatively", "Maybe").
- integration: the writer connects results into a conclusion ("Now I see how", "Putting it together", "So overall").

Phases (every sentence is in exactly one):
- framing: restating or understanding the problem, before any work.
- exploration: working on the problem, trying approaches.
- verification: checking work already done.
- synthesis: bringing the results together into the final answer.

Trace{part}, one numbered sentence per line:
{units}

Reply with exactly one line per sentence, {first} to {last}, in this form and nothing else:
<number> | <phase> | <pivot types separated by commas, or none>
"""

_PHASE = {p: p for p in PHASES} | {p[0]: p for p in PHASES}  # full names and F / E / V / S
_LINE = re.compile(
    r"^\W*(?:(?:sentence|unit|line)\s*)?(\d+)\W*?[:;,|.)\]-]\s*\**\s*([A-Za-z]+)\**\s*(?:[;,|:-]\s*(.*))?$",
    re.IGNORECASE,
)


class AnnotatorConfig(StrictModel):
    teacher: TEACHERS.config_union() = Field(  # type: ignore[valid-type]
        description="any teacher kind; an instruct model with `template: {kind: chat}` is the usual one"
    )
    max_units: int = Field(60, ge=1, description="units per call; longer traces take several calls")

    @model_validator(mode="after")
    def _one_chat_reply(self):
        # The instructions are a user turn; `plain` or `think` would wrap them in a Question/Reasoning
        # frame the labels do not fit. One reply per window: n > 1 would be paid for and unused.
        if not TEACHERS.get(self.teacher.kind).any_prompt:
            raise ValueError(f"annotator: a `{self.teacher.kind}` teacher only answers its task's questions; "
                             "use a language model (hf or openai)")  # fmt: skip
        if self.teacher.template.kind != "chat":
            raise ValueError("annotator: the teacher needs `template: {kind: chat}` (the prompt is a user turn)")
        if self.teacher.n != 1:
            raise ValueError("annotator: the teacher's `n` must be 1 (one reply per trace window)")
        return self


@dataclass(frozen=True)
class UnitLabel:
    phase: str
    pivots: frozenset[str]


def trace_units(text: str) -> list[str]:
    """The units of `text` (phases.py's sentences and lines), stripped."""
    return [text[s:e].strip() for s, e in units(text)]


def annotation_prompt(unit_texts: list[str], first: int, total: int) -> str:
    """The prompt for units `first` .. `first + len(unit_texts) - 1` (1-based) of a `total`-unit trace."""
    last = first + len(unit_texts) - 1
    part = "" if len(unit_texts) == total else f" (sentences {first}-{last} of {total})"
    lines = "\n".join(f"{first + i}. {' '.join(u.split())}" for i, u in enumerate(unit_texts))
    return PROMPT.format(part=part, units=lines, first=first, last=last)


def parse_labels(reply: str, first: int, count: int) -> list[UnitLabel] | None:
    """The labels of units first .. first + count - 1 in `reply`, or None when any unit has no
    line with a known phase. A unit's first such line counts; other lines (an echo of the
    sentence, "5. Now 15+8=23.", has no known phase) are ignored."""
    found: dict[int, UnitLabel] = {}
    for line in reply.splitlines():
        m = _LINE.match(line.strip())
        phase = _PHASE.get(m.group(2).lower()) if m else None
        if phase is None or not first <= int(m.group(1)) < first + count or int(m.group(1)) in found:
            continue
        words = set(re.findall(r"[a-z]+", (m.group(3) or "").lower()))
        found[int(m.group(1))] = UnitLabel(phase, frozenset(words & set(PIVOT_TYPES)))
    labels = [found.get(i) for i in range(first, first + count)]
    return None if any(label is None for label in labels) else labels  # type: ignore[return-value]


def profile_from_labels(
    text: str, labels: list[UnitLabel], count_tokens: Callable[[str], int] = token_proxy, **extra
) -> TraceProfile:
    """A TraceProfile from one label per unit of `text` (pivots: units per type; phases: runs)."""
    pivots = dict.fromkeys(PIVOT_TYPES, 0)
    phase_words = dict.fromkeys(PHASES, 0)
    runs: list[str] = []
    for unit, label in zip(trace_units(text), labels, strict=True):
        for p in label.pivots:
            pivots[p] += 1
        phase_words[label.phase] += len(unit.split())
        if not runs or runs[-1] != label.phase:
            runs.append(label.phase)
    return TraceProfile(
        words=sum(phase_words.values()),
        tokens=count_tokens(text),
        pivots=pivots,
        phases=runs,
        phase_words=phase_words,
        extra=extra,
    )


class LLMAnnotator:
    """Profiles traces from a teacher's labels; `profile_all` makes every call first (batched,
    resumable through the TraceStore at `store_path`), then parses."""

    def __init__(self, cfg: AnnotatorConfig, ctx: StageContext | None, store_path, count_tokens=None) -> None:
        self.cfg, self.ctx, self.store_path = cfg, ctx, store_path
        self.count_tokens = count_tokens or token_proxy

    def _windows(self, index: int, text: str) -> list[tuple[Example, int, int]]:
        """(request, first unit, unit count) per window of trace `index`."""
        us, step = trace_units(text), self.cfg.max_units
        out = []
        for start in range(0, len(us), step):
            chunk = us[start : start + step]
            prompt = annotation_prompt(chunk, start + 1, len(us))
            ex = Example(id=f"trace{index}/units{start + 1}", task="style_annotation", question=prompt,
                         answer="", split="annotate")  # fmt: skip
            out.append((ex, start + 1, len(chunk)))
        return out

    def profile_all(self, texts: list[str], extras: list[dict]) -> tuple[list[TraceProfile | None], dict]:
        """(a profile per text, None where a reply did not parse; {"calls", "unparsed", ...})."""
        windows = [self._windows(i, t) for i, t in enumerate(texts)]
        requests = [ex for w in windows for ex, _, _ in w]
        teacher = build_teacher(self.cfg.teacher, self.ctx)
        with TraceStore(self.store_path) as store:
            store.track(len(requests) * self.cfg.teacher.n, "style annotation")
            teacher.generate(requests, store, lambda ex, answer: False)  # nothing to verify
            replies = {t.example_id: t.completion or "" for t in store.read() if t.sample == 0}
        profiles: list[TraceProfile | None] = []
        for text, extra, wins in zip(texts, extras, windows, strict=True):
            labels: list[UnitLabel] | None = []
            for ex, first, count in wins:
                got = parse_labels(replies.get(ex.id, ""), first, count)
                labels = None if got is None or labels is None else labels + got
            # (an empty trace has no window: an empty profile, as the lexicon gives)
            profiles.append(None if labels is None else profile_from_labels(text, labels, self.count_tokens, **extra))
        unparsed = sum(p is None for p in profiles)
        return profiles, {"traces": len(texts), "calls": len(requests), "unparsed": unparsed,
                          "teacher": teacher.name}  # fmt: skip
