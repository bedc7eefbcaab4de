"""The request cache of the `openai` teacher: one JSONL line per completed sample, keyed by request.

Key = sha256 of (model, API, prompt or messages, sampling parameters, sample index). The
cache lives beside the recipe's stage directories (`<runs_dir>/<recipe>/_cache/`), not in
one stage's directory, because a stage's directory is named by the hash of its whole
config: changing an operational knob (concurrency, timeout, server URLs) makes a new stage
directory, and must still not re-send (and re-pay) a request that was already answered.

Only successful responses are cached; a failure is never a completed request, so a rerun
retries it. Lines are appended and flushed as responses arrive, all choices of one response
in one write; a torn last line from a killed process is cut off on open. Entries are found
through an in-memory index of byte offsets, so long completions are not all held in memory.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from reasondistill.records import JsonlAppender

_PREFIX = b'{"key": "'  # every line starts with its key (see put), so the index scan skips JSON parsing


def request_key(model: str, api: str, prompt: Any, params: dict, sample: int) -> str:
    blob = {"model": model, "api": api, "input": prompt, "params": params, "sample": sample}
    return hashlib.sha256(json.dumps(blob, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


class RequestCache:
    """Append-only map request key -> completed sample ({"text", "finish_reason", "usage", ...})."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._index: dict[str, int] = {}
        self._f = None
        if self.path.exists():
            JsonlAppender(self.path).close()  # opening repairs a torn tail left by a killed writer
            self._scan()

    def _scan(self) -> None:
        offset = 0
        with open(self.path, "rb") as f:
            for line in f:
                if line.startswith(_PREFIX) and len(line) > len(_PREFIX) + 64:
                    key = line[len(_PREFIX) : len(_PREFIX) + 64].decode("ascii", "replace")
                else:
                    try:
                        key = json.loads(line)["key"]
                    except (ValueError, KeyError, TypeError):
                        key = None  # an unreadable line is skipped: its request is simply re-sent
                if key is not None:
                    self._index.setdefault(key, offset)
                offset += len(line)

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, key: str) -> bool:
        return key in self._index

    def get(self, key: str) -> dict:
        with open(self.path, "rb") as f:
            f.seek(self._index[key])
            return json.loads(f.readline())

    def put(self, entries: list[dict]) -> None:
        """Append entries (each with a "key") in one flushed write; keys already cached are skipped."""
        new = [e for e in entries if e["key"] not in self._index]
        if not new:
            return
        if self._f is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._f = open(self.path, "ab")
        offset = self._f.tell()
        chunk = b""
        for e in new:
            line = json.dumps({"key": e["key"], **e}, ensure_ascii=False).encode() + b"\n"
            self._index[e["key"]] = offset + len(chunk)
            chunk += line
        self._f.write(chunk)
        self._f.flush()

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None
