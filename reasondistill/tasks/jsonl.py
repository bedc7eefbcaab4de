"""`jsonl`: examples from a local JSONL file (one JSON object per line), in file order.

`answer_format: gsm8k` reads GSM8K-style answers, "...<<48/2=24>>24 ...\\n#### 72": the answer
is what follows '####' (thousands commas removed), the text before it is the gold rationale
with the <<...>> calculator annotations removed (they are a tool-use artifact of GSM8K's
annotation process, not reasoning a student should imitate).

The whole file is parsed before any example is returned, so a bad row fails the data stage
with the file, the line and the problem before anything is written.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from reasondistill.errors import ReasonDistillError
from reasondistill.records import Example, json_object, read_lines
from reasondistill.tasks.base import TASKS, Task, TaskConfig

_CALC_ANNOTATION = re.compile(r"<<[^<>]*>>")
# A plain decimal, optionally with well-formed thousands separators ("1,000" but not "1,0").
_NUMBER = re.compile(r"[+-]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?")


def parse_gsm8k_answer(text: str) -> tuple[str | None, str]:
    """Split a GSM8K answer field into (rationale without <<>> annotations, final answer)."""
    head, sep, tail = text.rpartition("####")
    if not sep:
        raise ValueError("no '#### <answer>' marker in the gsm8k-format answer")
    answer = tail.strip().replace(",", "")
    if not answer:
        raise ValueError("empty final answer after '####'")
    rationale = _CALC_ANNOTATION.sub("", head).strip()
    return rationale or None, answer


def normalize_answer(s: str) -> Decimal | str:
    """Numbers as Decimal ("1,000" == "1000", "72" == "72.0"); anything else stripped."""
    s = s.strip()
    return Decimal(s.replace(",", "")) if _NUMBER.fullmatch(s) else s


class JsonlConfig(TaskConfig):
    path: str = Field(min_length=1, description="local JSONL file, one example per line")
    question_field: str = "question"
    answer_field: str = "answer"
    rationale_field: str | None = Field(None, description="field holding a gold rationale, if any")
    answer_format: Literal["plain", "gsm8k"] = "plain"

    @model_validator(mode="after")
    def _one_rationale_source(self):
        if self.answer_format == "gsm8k" and self.rationale_field is not None:
            raise ValueError(
                "rationale_field: must be unset with answer_format gsm8k (the rationale is parsed from the answer)"
            )
        return self


class JsonlTask(Task):
    """A finite, ordered loader; the seed is ignored and `n` takes the first n rows."""

    name = "jsonl"
    Config = JsonlConfig
    procedural = False

    def __init__(self, config: JsonlConfig) -> None:
        super().__init__(config)
        self._rows: list[tuple[int, str, str, str | None]] | None = None

    def difficulty(self) -> dict:
        return {}  # a fixed file has no knobs

    def check(self) -> None:
        self._load()

    def _load(self) -> list[tuple[int, str, str, str | None]]:
        """All rows as (line number, question, answer, rationale); raises on the first bad one."""
        if self._rows is not None:
            return self._rows
        path = Path(self.config.path)
        if not path.is_file():
            raise ReasonDistillError(f"task jsonl: config.path: no such file: {path}")
        rows = []
        for lineno, line in read_lines(path, who="task jsonl: "):  # a non-UTF-8 byte names its line
            if not line.strip():
                continue  # blank lines (e.g. a trailing one) are not rows
            row = json_object(line, f"task jsonl: {path}, line {lineno}")
            try:
                rows.append((lineno, *self._parse(row)))
            except ValueError as e:
                raise ReasonDistillError(f"task jsonl: {path}, line {lineno}: {e}") from None
        if not rows:
            raise ReasonDistillError(f"task jsonl: {path}: no rows")
        self._rows = rows
        return rows

    def _parse(self, row: dict) -> tuple[str, str, str | None]:
        c = self.config
        for key in (c.question_field, c.answer_field):
            if key not in row:
                raise ValueError(f"missing field {key!r} (fields: {', '.join(row) or 'none'})")
            if not isinstance(row[key], str) or not row[key].strip():
                raise ValueError(f"field {key!r} must be a non-empty string, got {row[key]!r}")
        question, answer, rationale = row[c.question_field], row[c.answer_field].strip(), None
        if c.answer_format == "gsm8k":
            rationale, answer = parse_gsm8k_answer(answer)
        elif c.rationale_field is not None:
            rationale = row.get(c.rationale_field)
            if rationale is not None and not isinstance(rationale, str):
                raise ValueError(f"field {c.rationale_field!r} must be a string or null, got {rationale!r}")
        return question, answer, rationale

    def examples(self, split: str, n: int | None, seed: int) -> Iterator[Example]:
        for index, (lineno, question, answer, rationale) in enumerate(self._load()[:n]):
            meta = {"source": self.config.path, "index": index, "line": lineno, "difficulty": {}}
            yield self.item(split, index, question, answer, rationale, meta)

    def verify(self, example: Example, answer: str | None) -> bool:
        if answer is None or not answer.strip():
            return False
        return normalize_answer(answer) == normalize_answer(example.answer)


TASKS.register("jsonl", JsonlTask, description="any JSONL file of question/answer(/rationale) rows, e.g. GSM8K")
