"""TraceStore: the resumable JSONL trace file of a generation stage.

Each trace is appended and flushed as soon as it exists (records.JsonlAppender), so a killed
run loses at most the batch in flight; reopening the store tells the generator which
(example_id, sample) pairs are already on disk, and appends skip them, so a rerun never
writes a duplicate.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from reasondistill.records import JsonlAppender, Trace, read_jsonl

Key = tuple[str, int]  # (example_id, sample)


class TraceStore:
    """Append-only, de-duplicated trace file at `path` (created on first write)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._done: set[Key] = {(t.example_id, t.sample) for t in self.read()}
        self._appender: JsonlAppender | None = None
        self._bar = None

    def track(self, total: int, desc: str) -> None:
        """Show a progress bar (traces/s, ETA) of `total` traces as appends arrive. Every teacher
        writes through the store, so this one seam covers them all (hf, openai, program)."""
        from reasondistill.progress import item_bar

        self._bar = item_bar(total, desc, "trace", initial=min(len(self._done), total))

    def read(self) -> list[Trace]:
        """All complete traces on disk, in file order. A torn last line (this store's writer was
        killed mid-record) is ignored: the next append truncates it and rewrites the record."""
        if not self.path.exists():
            return []
        return [Trace.model_validate(row) for row in read_jsonl(self.path, torn_tail_ok=True)]

    def done(self) -> set[Key]:
        """The (example_id, sample) pairs already stored."""
        return set(self._done)

    def has(self, example_id: str, sample: int) -> bool:
        return (example_id, sample) in self._done

    def append(self, traces: Iterable[Trace]) -> int:
        """Write (and flush) the traces not already stored; returns how many were written."""
        n = 0
        for t in traces:
            key = (t.example_id, t.sample)
            if key in self._done:
                continue
            if self._appender is None:
                # Opening the appender also truncates a torn tail left by a killed writer.
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._appender = JsonlAppender(self.path)
            self._appender.write(t)
            self._done.add(key)
            n += 1
        if self._bar is not None and n:
            self._bar.update(n)
        return n

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        if self._appender is not None:
            self._appender.close()
            self._appender = None

    def __enter__(self) -> TraceStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
