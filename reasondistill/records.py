"""Records passed between stages (DESIGN.md 'Records'), and crash-safe JSONL I/O.

Every stage reads the records of the stages before it and writes its own; files are
JSONL so that any tool (pandas, `datasets`, jq) reads them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from reasondistill.errors import ReasonDistillError

M = TypeVar("M", bound=BaseModel)


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


def read_lines(path: str | Path, who: str = "") -> Iterator[tuple[int, str]]:
    """(line number, text) of every line of `path`, its line end kept.

    Lines are decoded one at a time, so a byte that is not UTF-8 fails naming the file and the
    line (a text-mode file object would raise a bare UnicodeDecodeError from deep in a loop).
    `who` prefixes the message ("task jsonl: ")."""
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            try:
                yield lineno, raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise ReasonDistillError(
                    f"{who}{path}, line {lineno}: not UTF-8 text (byte 0x{raw[e.start]:02x} at column "
                    f"{e.start + 1}); save the file as UTF-8"
                ) from None


def read_text(path: str | Path, who: str = "") -> str:
    """The whole UTF-8 text of `path`; a byte that is not UTF-8 names the file and its line."""
    raw = Path(path).read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        raise ReasonDistillError(
            f"{who}{path}, line {line}: not UTF-8 text (byte 0x{raw[e.start]:02x}); save the file as UTF-8"
        ) from None


def read_jsonl(path: str | Path, *, torn_tail_ok: bool = False) -> Iterator[dict]:
    """Yield the JSON objects of `path`, one per line (blank lines skipped).

    A line that is not a JSON object raises ReasonDistillError naming the file and the line; so
    does a last line without its line end (a torn write: the file was cut short). Only a
    resumable writer's own file (the TraceStore being appended, evaluate's partial predictions,
    the openai teacher's records) passes `torn_tail_ok=True`: its torn last line is skipped, as
    JsonlAppender truncates it when the writer reopens the file. A finished output never has one.
    """
    for _, row in _numbered(path, torn_tail_ok):
        yield row


def read_records(path: str | Path, cls: type[M], *, limit: int | None = None) -> list[M]:
    """The first `limit` (None: all) rows of `path` validated as `cls`; a bad row names its line.

    A large file (over 8 MB: ~10^4 traces and up, where validation takes seconds to minutes)
    shows a progress bar: filtering or formatting a million traces is mostly this loop."""
    out: list[M] = []
    bar = _read_bar(Path(path), limit)
    for lineno, row in _numbered(path, False):
        if limit is not None and len(out) >= limit:
            break
        if bar is not None:
            bar.update(1)
        try:
            out.append(cls.model_validate(row))
        except ValidationError as e:
            first = e.errors()[0]
            where = ".".join(str(x) for x in first["loc"]) or cls.__name__
            raise ReasonDistillError(
                f"{path}, line {lineno}: not a valid {cls.__name__} row: {where}: {first['msg']}"
            ) from None
    if bar is not None:
        bar.close()
    return out


def _read_bar(path: Path, limit: int | None):
    if limit is not None or path.stat().st_size < 8 << 20:
        return None
    from reasondistill.progress import item_bar

    with open(path, "rb") as f:  # counting lines reads ~1 GB/s: cheap next to validating them
        lines = sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))
    return item_bar(lines, f"reading {path.parent.name}/{path.name}", "row")


def _numbered(path: str | Path, torn_tail_ok: bool) -> Iterator[tuple[int, dict]]:
    for lineno, line in read_lines(path):
        if not line.strip():
            continue
        if not line.endswith("\n"):
            if torn_tail_ok:
                return  # a killed writer's last record: its writer rewrites it on resume
            if not _is_object(line):
                raise ReasonDistillError(
                    f"{path}, line {lineno}: torn last line (the file ends mid-record: a write was cut "
                    "short); rerun the stage that wrote it"
                )
        yield lineno, json_object(line, f"{path}, line {lineno}")


def json_object(line: str, where: str) -> dict:
    """One JSONL line as a dict; ReasonDistillError prefixed by `where` ("file, line N") otherwise."""
    try:
        row = json.loads(line)
    except json.JSONDecodeError as e:
        raise ReasonDistillError(f"{where}: invalid JSON ({e.msg} at column {e.colno})") from None
    if not isinstance(row, dict):
        raise ReasonDistillError(f"{where}: expected a JSON object, got {type(row).__name__}")
    return row


def _is_object(line: str) -> bool:
    """A complete JSON object on an unterminated last line (a hand-written file without a final
    newline) is a whole record, not a torn one."""
    try:
        return isinstance(json.loads(line), dict)
    except json.JSONDecodeError:
        return False


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
