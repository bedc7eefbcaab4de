"""Reading traces to analyse: the reasoning part of a completion, its final answer, verdicts.

A completion's reasoning is what a style analysis reads:
- `<think>` ... `</think>` (DeepSeek-R1, Qwen3, s1K): the block (an opening tag that was part
  of the prompt may be missing);
- `<|begin_of_thought|>` ... `<|end_of_thought|>` (OpenThoughts, Bespoke-Stratos): the block;
- `Reasoning: ...` then `Answer: ...` (the plain template): the rationale;
- anything else: the whole text.
The final answer is the last `\\boxed{...}`, else an `Answer:` line, else what follows the
reasoning block (one line). Answers compare as numbers when both are ("1,000" = "1000.0").
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from reasondistill.errors import ReasonDistillError
from reasondistill.records import json_object, read_lines

BLOCKS = (("<think>", "</think>"), ("<|begin_of_thought|>", "<|end_of_thought|>"))
_SOLUTION = re.compile(r"<\|(?:begin|end)_of_solution\|>")
_ANSWER_LINE = re.compile(
    r"\b(?:final )?answer(?:\*\*)?\s*[:：]\s*(?:\*\*)?\s*(.+?)\s*$", re.IGNORECASE | re.MULTILINE
)


@dataclass
class TraceText:
    """One trace to analyse: its reasoning text, verdict (None: unknown) and provenance."""

    text: str
    correct: bool | None
    meta: dict = field(default_factory=dict)


def split_reasoning(text: str) -> tuple[str, str]:
    """(reasoning, what follows it) of a completion (see the module docstring)."""
    for open_tag, close_tag in BLOCKS:
        if close_tag in text:
            head, _, rest = text.partition(close_tag)
            return head.partition(open_tag)[2] if open_tag in head else head, _SOLUTION.sub("", rest)
        if text.lstrip().startswith(open_tag):  # generation stopped while still thinking
            return text.partition(open_tag)[2], ""
    stripped = text.lstrip()
    if stripped.startswith("Reasoning:"):
        body = stripped[len("Reasoning:") :]
        cut = body.find("\nAnswer:")
        return (body, "") if cut == -1 else (body[:cut], body[cut + 1 :])
    return text, ""


def boxed(text: str) -> str | None:
    """The content of the last \\boxed{...} (nested braces allowed), or None."""
    start = text.rfind("\\boxed{")
    if start == -1:
        return None
    depth, i = 0, start + len("\\boxed")
    for j in range(i, len(text)):
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        if depth == 0:
            return text[i + 1 : j].strip()
    return None


def final_answer(text: str) -> str | None:
    """The final answer of a completion: the last \\boxed{} after the reasoning (else anywhere),
    else the last Answer: line, else the last line after the reasoning block (of the whole text
    when it has no block); None when there is none."""
    has_block = any(close in text for _, close in BLOCKS) or text.lstrip().startswith("Reasoning:")
    tail = split_reasoning(text)[1] if has_block else text
    b = boxed(tail) or boxed(text)
    if b:
        return " ".join(b.split())
    m = list(_ANSWER_LINE.finditer(tail))
    if m:
        return m[-1].group(1).strip()
    lines = [x.strip() for x in tail.strip().splitlines() if x.strip()]
    return lines[-1] if lines else None


def same_answer(a: str | None, gold: str | None) -> bool:
    """Exact match after stripping; numbers compare by value ("1,000" == "1000.0")."""
    if a is None or gold is None:
        return False
    from reasondistill.tasks.jsonl import normalize_answer

    return normalize_answer(str(a).strip().strip("$")) == normalize_answer(str(gold).strip().strip("$"))


def read_trace_rows(
    path: str | Path,
    text_field: str = "completion",
    correct_field: str | None = None,
    answer_field: str | None = None,
    gold_field: str | None = None,
) -> list[TraceText]:
    """Every row of a JSONL file of traces, checked whole before anything is analysed.

    The verdict: `correct_field` (a boolean; null is unknown); else `answer_field` (or, without
    one, the completion's final answer) compared with `gold_field`; else a Trace's `score`
    (1.0 / 0.0) or an evaluate prediction's `correct`, when present; else unknown. Any problem
    raises ReasonDistillError naming the file and the line."""
    out = []
    for lineno, line in read_lines(path, "style analyze: "):
        if not line.strip():
            continue
        where = f"{path}, line {lineno}"
        row = json_object(line, where)
        text = row.get(text_field)
        if not isinstance(text, str):
            what = "missing" if text_field not in row else f"not a string ({type(text).__name__})"
            raise ReasonDistillError(
                f"{where}: field {text_field!r} {what}; fields: {', '.join(row) or 'none'} (set --text-field)"
            )
        out.append(
            TraceText(
                split_reasoning(text)[0],
                _verdict(row, text, where, correct_field, answer_field, gold_field),
                {
                    "line": lineno,
                    **{k: row[k] for k in ("id", "example_id") if isinstance(row.get(k), str | int)},
                },
            )
        )
    if not out:
        raise ReasonDistillError(f"{path}: no traces (the file is empty)")
    return out


def _verdict(row: dict, text: str, where: str, correct_field, answer_field, gold_field) -> bool | None:
    if correct_field is not None:
        if correct_field not in row:
            raise ReasonDistillError(f"{where}: field {correct_field!r} missing (--correct-field)")
        v = row[correct_field]
        if v is not None and not isinstance(v, bool):
            raise ReasonDistillError(
                f"{where}: field {correct_field!r} must be true, false or null, got {v!r}"
            )
        return v
    if gold_field is not None:
        for name in (gold_field, answer_field):
            if name is not None and name not in row:
                raise ReasonDistillError(f"{where}: field {name!r} missing")
        answer = row[answer_field] if answer_field is not None else final_answer(text)
        return same_answer(None if answer is None else str(answer), str(row[gold_field]))
    if isinstance(row.get("correct"), bool):
        return row["correct"]
    if isinstance(row.get("score"), int | float) and not isinstance(row.get("score"), bool):
        return row["score"] >= 1.0
    return None
