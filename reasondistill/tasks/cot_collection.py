"""`cot_collection`: the CoT-Collection format (Kim et al., arXiv 2305.14045), the training data of
arXiv 2511.05184's white-box KD students.

A row has the task input (`source`, or `instruction`, optionally with a separate `input`), a
free-text `rationale` and the label `target`; `task` and `type` are kept as metadata. Files:
    .jsonl   one row per line (streamed: the way to hold the full 1.8M-row collection)
    .json    a list of rows, or the released CoT_collection_*.json mapping id -> row
Each row becomes an Example (question, rationale, answer = target), so the `format` stage turns
it into KD/SFT rows with the rationale (`placement: before`) or without it (`placement: none`).

Rows the row template cannot carry (an empty input or target, a target spanning lines) fail
the data stage with the file and row, or with `bad_rows: skip` are dropped. The verifier is
exact (STYLE.md): stripped strings must be equal, numbers compare as numbers.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from reasondistill.errors import ReasonDistillError
from reasondistill.records import Example, read_lines, read_text
from reasondistill.tasks.base import TASKS, Task, TaskConfig
from reasondistill.tasks.jsonl import normalize_answer


class CoTCollectionConfig(TaskConfig):
    path: str = Field(min_length=1, description="a .json or .jsonl file in the CoT-Collection format")
    tasks: list[str] | None = Field(None, description="keep rows whose `task` field is one of these")
    bad_rows: Literal["error", "skip"] = Field(
        "error", description="a row without input/target, or a multi-line target"
    )


def _rows(path: Path) -> Iterator[tuple[str, Any]]:
    """(where, raw row) for every row of the file, in file order."""
    if path.suffix == ".jsonl":
        for lineno, line in read_lines(path, who="task cot_collection: "):
            if not line.strip():
                continue
            try:
                yield f"line {lineno}", json.loads(line)
            except json.JSONDecodeError as e:
                raise ReasonDistillError(
                    f"task cot_collection: {path}, line {lineno}: invalid JSON ({e.msg})"
                ) from None
        return
    try:
        data = json.loads(read_text(path, who="task cot_collection: "))
    except json.JSONDecodeError as e:
        raise ReasonDistillError(f"task cot_collection: {path}: invalid JSON ({e})") from None
    if isinstance(data, dict):  # the released format: {id: row}
        yield from ((f"row {k!r}", v) for k, v in data.items())
    elif isinstance(data, list):
        yield from ((f"row {i}", v) for i, v in enumerate(data))
    else:
        raise ReasonDistillError(
            f"task cot_collection: {path}: expected a list of rows or a mapping id -> row"
        )


def parse_row(row: Any) -> tuple[str, str | None, str]:
    """(question, rationale or None, answer) of one row; ValueError says what is wrong."""
    if not isinstance(row, dict):
        raise ValueError(f"expected an object, got {type(row).__name__}")
    question = row.get("source", row.get("instruction"))
    if isinstance(question, str) and isinstance(row.get("input"), str) and row["input"].strip():
        question = f"{question.rstrip()}\n{row['input'].strip()}"  # instruction-style rows
    if not isinstance(question, str) or not question.strip():
        raise ValueError("needs a non-empty 'source' (or 'instruction')")
    target = row.get("target")
    if not isinstance(target, str) or not target.strip():
        raise ValueError("needs a non-empty string 'target'")
    if "\n" in target.strip():
        raise ValueError("'target' spans several lines; the row template needs a one-line answer")
    rationale = row.get("rationale")
    if rationale is not None and not isinstance(rationale, str):
        raise ValueError(f"'rationale' must be a string or null, got {type(rationale).__name__}")
    return question.strip(), (rationale.strip() or None) if rationale else None, target.strip()


class CoTCollectionTask(Task):
    """A finite loader in file order; the seed is ignored and `n` takes the first n kept rows."""

    name = "cot_collection"
    Config = CoTCollectionConfig
    procedural = False

    def difficulty(self) -> dict:
        return {}

    def check(self) -> None:
        path = Path(self.config.path)
        if not path.is_file():
            raise ReasonDistillError(f"task cot_collection: config.path: no such file: {path}")
        if not any(True for _ in self.examples("check", None, 0)):  # parses every row
            raise ReasonDistillError(f"task cot_collection: {path}: no usable rows")

    def examples(self, split: str, n: int | None, seed: int) -> Iterator[Example]:
        path, wanted = Path(self.config.path), self.config.tasks
        index = 0
        for where, row in _rows(path):
            if n is not None and index == n:
                return
            if wanted is not None and (not isinstance(row, dict) or row.get("task") not in wanted):
                continue
            try:
                question, rationale, answer = parse_row(row)
            except ValueError as e:
                if self.config.bad_rows == "skip":
                    continue
                raise ReasonDistillError(f"task cot_collection: {path}, {where}: {e}") from None
            meta = {"source": self.config.path, "index": index, "row": where, "difficulty": {},
                    "cot_task": row.get("task"), "cot_type": row.get("type")}  # fmt: skip
            yield self.item(split, index, question, answer, rationale, meta)
            index += 1

    def verify(self, example: Example, answer: str | None) -> bool:
        if answer is None or not answer.strip():
            return False
        return normalize_answer(answer) == normalize_answer(example.answer)


TASKS.register("cot_collection", CoTCollectionTask, description="CoT-Collection rows (question, rationale, answer) from a JSON/JSONL file")
