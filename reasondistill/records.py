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

from pydantic import BaseModel, ConfigDict, Field


class Example(BaseModel):
    """One task item. `metadata` carries provenance: source, index, difficulty."""

    model_config = ConfigDict(extra="forbid")
    id: str
    task: str
    question: str
    answer: str
    rationale: str | None = None
    split: str
    metadata: dict[str, Any] = Field(default_factory=dict)


class Trace(BaseModel):
    """One teacher sample for one example, with the verifier's score (1.0 / 0.0)."""

    model_config = ConfigDict(extra="forbid")
    example_id: str
    teacher: str
    sample: int
    prompt: str
    completion: str
    rationale: str | None = None
    answer: str | None = None
    score: float | None = None
    usage: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None  # why the sample failed (server error, truncation), if it did
    logits_ref: str | None = None  # optional reference to cached top-k teacher logits


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
    with open(tmp, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(_dumps(row) + "\n")
            n += 1
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
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
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


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
