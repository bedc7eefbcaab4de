"""Records passed between stages (DESIGN.md 'Records'), and crash-safe JSONL I/O.

Every stage reads the records of the stages before it and writes its own; files are
JSONL so that any tool (pandas, `datasets`, jq) reads them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Demonstration(BaseModel):
    """One in-context input/output pair of an induction task (ARC-style, list functions)."""

    model_config = ConfigDict(extra="forbid")
    input: str
    output: str


class Example(BaseModel):
    """One task item. `metadata` carries provenance: source, index, difficulty.

    In-context induction tasks (ReDis, arXiv 2504.10647) also carry `demonstrations`: the
    question is then the query input and the answer its output."""

    model_config = ConfigDict(extra="forbid")
    id: str
    task: str
    question: str
    answer: str
    rationale: str | None = None
    split: str
    demonstrations: list[Demonstration] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)


Prompt = str | list[dict[str, Any]]  # plain text, or chat messages [{"role", "content"}] (TRL)


class Trace(BaseModel):
    """One teacher sample for one example, with the verifier's score (1.0 / 0.0)."""

    model_config = ConfigDict(extra="forbid")
    example_id: str
    teacher: str
    sample: int
    prompt: Prompt  # what the teacher was given: text, or chat messages
    completion: str
    rationale: str | None = None
    answer: str | None = None
    score: float | None = None
    usage: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None  # why the sample failed (server error, truncation), if it did
    logits_ref: str | None = None  # optional reference to cached top-k teacher logits
    # Free-form: e.g. a hypothesis's per-demonstration predictions and its score (ReDis).
    metadata: dict[str, Any] = Field(default_factory=dict)


class PreferenceRow(BaseModel):
    """A preference pair in TRL's convention (prompt/chosen/rejected), readable by TRL's trainers.

    `metadata` carries provenance, e.g. the two hypotheses' scores and the margin."""

    model_config = ConfigDict(extra="forbid")
    prompt: Prompt
    chosen: Prompt
    rejected: Prompt
    example_id: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _differ(self):
        if self.chosen == self.rejected:
            raise ValueError("chosen equals rejected: a pair must prefer one completion to another")
        return self


def read_jsonl(path: str | Path) -> Iterator[dict]:
    """Yield the complete JSON lines of `path`; a torn last line (killed mid-write) is skipped."""
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.endswith("\n"):
                return  # torn write from a killed process: ignore, the writer repairs it
            if line.strip():
                yield json.loads(line)


def write_jsonl_atomic(path: str | Path, rows: Iterable[dict | BaseModel]) -> int:
    """Write all rows to `path` via a temp file + rename, so readers never see half a file."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    n = 0
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            for row in rows:
                f.write(_dumps(row) + "\n")
                n += 1
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # the old file (if any) stays as it was
        raise
    return n


class JsonlAppender:
    """Append-and-flush writer for resumable stages: each record is durable once written.

    On open, a torn final line left by a killed process is truncated away, so the file
    always holds whole records.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        _truncate_torn_tail(self.path)
        self._f = open(self.path, "a", encoding="utf-8")

    def write(self, row: dict | BaseModel) -> None:
        self._f.write(_dumps(row) + "\n")
        self._f.flush()

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> JsonlAppender:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def write_json_atomic(path: str | Path, obj: Any) -> None:
    """Write one JSON document atomically (temp file + rename)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _dumps(row: dict | BaseModel) -> str:
    if isinstance(row, BaseModel):
        row = row.model_dump()
    return json.dumps(row, ensure_ascii=False)


def _truncate_torn_tail(path: Path) -> None:
    if not path.exists() or path.stat().st_size == 0:
        return
    with open(path, "rb+") as f:
        data = f.read()
        if data.endswith(b"\n"):
            return
        cut = data.rfind(b"\n") + 1  # 0 when no complete line exists
        f.truncate(cut)
