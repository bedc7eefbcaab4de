"""The text format of prompts and completions, and its exact inverse (the `plain` template,
traces/templates/plain.py; `chat` puts the same completion text in an assistant turn).

Wadhwa, Amir & Wallace (EMNLP 2024, arXiv 2406.14511) ablate where the rationale sits
relative to the label: absent ("none"), before it ("before", classic CoT) or after it
("after"). One renderer produces all three, and `split_completion` inverts every one of
them exactly, so evaluation parses what training taught:

    none    Answer: {answer}
    before  Reasoning: {rationale}\\nAnswer: {answer}
    after   Answer: {answer}\\nReasoning: {rationale}

The answer is always alone on a line starting with "Answer:", so with the rationale after
the label, generation can stop at the end of that line (`ANSWER_STOP`): label-first
evaluation with no test-time reasoning (arXiv 2406.14511, Sec. 4).
"""

from __future__ import annotations

from typing import Literal

Placement = Literal["none", "before", "after"]
PLACEMENTS: tuple[str, ...] = ("none", "before", "after")

ANSWER_PREFIX = "Answer:"
REASONING_PREFIX = "Reasoning:"
# Label-first evaluation stops at the first newline: the answer line is the first line of a
# "none" or "after" completion, so nothing after it (the rationale) is ever generated.
ANSWER_STOP = "\n"


def render_prompt(question: str) -> str:
    """The prompt template: "Question: {question}\\n" (the completion starts on the next line)."""
    return f"Question: {question}\n"


def check_answer(answer: str) -> None:
    """An answer every template can render and parse back: one line, no surrounding whitespace."""
    if "\n" in answer or answer != answer.strip():
        raise ValueError(f"answer must be one line without surrounding whitespace, got {answer!r}")


def render_completion(answer: str, rationale: str | None, placement: Placement) -> str:
    """The completion text for `placement`; raises ValueError for inputs that would not round-trip."""
    check_answer(answer)
    if placement == "none":
        return f"{ANSWER_PREFIX} {answer}"
    if placement not in ("before", "after"):
        raise ValueError(f"placement must be one of {PLACEMENTS}, got {placement!r}")
    if rationale is None:
        raise ValueError(f"placement {placement!r} needs a rationale, got None")
    if "\n" + ANSWER_PREFIX in rationale:
        # A rationale line starting with "Answer:" would be parsed as the answer.
        raise ValueError(f"rationale must not contain a line starting with {ANSWER_PREFIX!r}")
    if placement == "before":
        return f"{REASONING_PREFIX} {rationale}\n{ANSWER_PREFIX} {answer}"
    return f"{ANSWER_PREFIX} {answer}\n{REASONING_PREFIX} {rationale}"


def _answer_line(text: str) -> tuple[int, int] | None:
    """(start, end) offsets of the first line starting with "Answer:" (end excludes the newline)."""
    start = 0
    while True:
        if text.startswith(ANSWER_PREFIX, start):
            end = text.find("\n", start)
            return start, (len(text) if end == -1 else end)
        nl = text.find("\n", start)
        if nl == -1:
            return None
        start = nl + 1


def extract_answer(text: str) -> str | None:
    """The answer: rest of the first line starting with "Answer:", stripped; None if no such line."""
    span = _answer_line(text)
    if span is None:
        return None
    return text[span[0] + len(ANSWER_PREFIX) : span[1]].strip()


def _strip_reasoning_prefix(s: str) -> str:
    for prefix in (REASONING_PREFIX + " ", REASONING_PREFIX):
        if s.startswith(prefix):
            return s[len(prefix) :]
    return s


def split_completion(text: str) -> tuple[str | None, str | None]:
    """(rationale, answer) of a completion; inverts `render_completion` for every placement.

    The rationale is the text before the answer line (placement "before") or, when there is
    none, the text after it ("after"), without its "Reasoning: " prefix. Free-form text
    without an "Answer:" line gives (None, None).
    """
    span = _answer_line(text)
    if span is None:
        return None, None
    answer = text[span[0] + len(ANSWER_PREFIX) : span[1]].strip()
    before, after = text[: span[0]], text[span[1] :]
    if before:
        return _strip_reasoning_prefix(before.removesuffix("\n")), answer
    if after:
        return _strip_reasoning_prefix(after.removeprefix("\n")), answer
    return None, answer
