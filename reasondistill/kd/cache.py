"""A sparse teacher-logit cache: the teacher scores every training row once, and KD training
reads top-k log-probs back instead of running the teacher each step.

On-disk format (a directory):
    meta.json            {"format", "k", "vocab_size", "temperature", "id_dtype"}
    shard-00000/         one complete shard, renamed into place atomically
        rows.npy         [R] int64   training-row index of each row in the shard
        offsets.npy      [R+1] int64 row r's positions are offsets[r]:offsets[r+1]
        ids.npy          [P, k] uint16 (vocab <= 65536) or int32: top-k token ids
        logprobs.npy     [P, k] float16: their log-probs (at `temperature`)
        tail.npy         [P] float32: log of the mass on every other id (-inf if none)
    shard-00001/ ...
A shard is written under `shard-NNNNN.tmp/`, fsynced, then renamed, so a killed job leaves
only complete shards plus (maybe) a `.tmp` that the next writer deletes; rows of complete
shards are skipped on resume. The reader opens the big fields as np.memmap (`np.load(...,
mmap_mode="r")`): reading a row touches only its pages, never the whole file.

Alignment: row i's entries are the teacher distributions at the logits positions that
predict its completion tokens, in order: positions max(n_prompt, 1) - 1 .. len(ids) - 2 of
`rows[i].ids` (an EncodedRow of train/batching), i.e. exactly the positions where
kd.next_token_mask(labels) is True for the collated row. `LogitCache.batch(rows, mask=...)`
scatters them there and checks the counts agree. kd/build.py fills a cache from a teacher.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from reasondistill.errors import ReasonDistillError
from reasondistill.kd.teacher import SparseTeacher

FORMAT = 1


def id_dtype(vocab_size: int) -> np.dtype:
    """uint16 when every id fits (vocab <= 65536), else int32."""
    return np.dtype(np.uint16) if vocab_size <= 2**16 else np.dtype(np.int32)


def bytes_per_token(k: int, vocab_size: int) -> int:
    """Cache bytes per completion token: k ids + k fp16 log-probs + one fp32 tail.

    Plus 16 bytes per row (rows/offsets). For comparison, full fp16 logits cost 2 * V bytes
    (304 KB per token for V = 152064; top-128 costs 772 bytes).
    """
    return k * (id_dtype(vocab_size).itemsize + 2) + 4


def _write_json(path: Path, obj: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(obj, indent=1))
    os.replace(tmp, path)


def _shard_dirs(directory: Path) -> list[Path]:
    return sorted(p for p in directory.glob("shard-*") if p.is_dir() and not p.name.endswith(".tmp"))


class LogitCacheWriter:
    """Appends rows to a cache directory in atomic shards of `shard_rows` rows; resumable.

    Reopening a directory keeps its complete shards (`row in writer` tells which rows are
    done), deletes any partial `.tmp` shard, and refuses a different k / vocab / temperature.
    Rows may be added in any order. Use as a context manager, or call close(): rows added but
    not yet flushed are lost if the process dies, and are redone on resume.
    """

    def __init__(
        self,
        directory: str | Path,
        k: int,
        vocab_size: int,
        *,
        temperature: float = 1.0,
        shard_rows: int = 256,
    ):
        if k <= 0 or k > vocab_size or shard_rows <= 0:
            raise ReasonDistillError(f"logit cache needs 0 < k <= vocab_size and shard_rows > 0 (k={k})")
        self.dir = Path(directory)
        self.k, self.vocab_size, self.shard_rows = k, vocab_size, shard_rows
        self.dir.mkdir(parents=True, exist_ok=True)
        meta = {
            "format": FORMAT,
            "k": k,
            "vocab_size": vocab_size,
            "temperature": float(temperature),
            "id_dtype": id_dtype(vocab_size).name,
        }
        meta_path = self.dir / "meta.json"
        if meta_path.exists():
            old = json.loads(meta_path.read_text())
            if old != meta:
                raise ReasonDistillError(f"logit cache {self.dir} was built with {old}, not {meta}")
        else:
            _write_json(meta_path, meta)
        for tmp in self.dir.glob("shard-*.tmp"):  # a shard a killed job did not finish
            shutil.rmtree(tmp)
        shards = _shard_dirs(self.dir)
        self._done: set[int] = set()
        for shard in shards:
            self._done.update(np.load(shard / "rows.npy").tolist())
        self._next_shard = int(shards[-1].name.split("-")[1]) + 1 if shards else 0
        self._pending: list[tuple[int, np.ndarray, np.ndarray, np.ndarray]] = []
        self._pending_rows: set[int] = set()

    def __contains__(self, row_index: int) -> bool:
        return row_index in self._done or row_index in self._pending_rows

    def add(self, row_index: int, ids, logprobs, tail) -> None:
        """Add one row: ids [T, k], logprobs [T, k], tail [T] (tensors or arrays; T may be 0)."""
        ids, logprobs, tail = (np.asarray(torch.as_tensor(x).detach().cpu()) for x in (ids, logprobs, tail))
        t = tail.shape[0] if tail.ndim == 1 else -1
        if ids.shape != (t, self.k) or logprobs.shape != (t, self.k):
            raise ReasonDistillError(
                f"row {row_index}: want ids/logprobs [T, {self.k}] and tail [T]; got {ids.shape}, "
                f"{logprobs.shape}, {tail.shape}"
            )
        if ids.size and (ids.min() < 0 or ids.max() >= self.vocab_size):
            raise ReasonDistillError(
                f"row {row_index}: token ids outside the vocabulary [0, {self.vocab_size})"
            )
        if row_index in self:
            raise ReasonDistillError(f"row {row_index} is already in logit cache {self.dir}")
        self._pending.append(
            (
                int(row_index),
                ids.astype(id_dtype(self.vocab_size)),
                logprobs.astype(np.float16),
                tail.astype(np.float32),
            )
        )
        self._pending_rows.add(int(row_index))
        if len(self._pending) >= self.shard_rows:
            self.flush()

    def flush(self) -> None:
        """Write pending rows as one shard: into `.tmp`, fsync, then an atomic rename."""
        if not self._pending:
            return
        rows, ids, logprobs, tail = zip(*self._pending, strict=True)
        fields = {
            "rows": np.asarray(rows, dtype=np.int64),
            "offsets": np.concatenate([[0], np.cumsum([len(t) for t in tail])]).astype(np.int64),
            "ids": np.concatenate(ids),
            "logprobs": np.concatenate(logprobs),
            "tail": np.concatenate(tail),
        }
        final = self.dir / f"shard-{self._next_shard:05d}"
        tmp = final.with_name(final.name + ".tmp")
        tmp.mkdir()
        for name, arr in fields.items():
            with open(tmp / f"{name}.npy", "wb") as f:
                np.save(f, arr)
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, final)
        self._done.update(rows)
        self._pending.clear()
        self._pending_rows.clear()
        self._next_shard += 1

    def close(self) -> None:
        self.flush()

    def __enter__(self) -> LogitCacheWriter:
        return self

    def __exit__(self, *exc) -> None:
        # Flush even on an exception: every pending row is complete, so keep the work done.
        self.close()


class LogitCache:
    """Streamed reader of a cache directory: rows by training-row index, via np.memmap."""

    def __init__(self, directory: str | Path):
        self.dir = Path(directory)
        meta_path = self.dir / "meta.json"
        if not meta_path.exists():
            raise ReasonDistillError(f"{self.dir} is not a logit cache (no meta.json)")
        meta = json.loads(meta_path.read_text())
        if meta.get("format") != FORMAT:
            raise ReasonDistillError(f"logit cache {self.dir} has format {meta.get('format')}, want {FORMAT}")
        self.k: int = meta["k"]
        self.vocab_size: int = meta["vocab_size"]
        self.temperature: float = meta["temperature"]
        # Only the small index arrays (rows, offsets) are read into memory; the big fields
        # stay on disk as np.memmap and are paged in per row.
        shard_dirs = _shard_dirs(self.dir)
        self._shards = [
            {name: np.load(s / f"{name}.npy", mmap_mode="r") for name in ("ids", "logprobs", "tail")}
            for s in shard_dirs
        ]
        rows, shard_of, starts, ends = [np.zeros(0, dtype=np.int64)], [], [], []
        for i, s in enumerate(shard_dirs):
            r, off = np.load(s / "rows.npy"), np.load(s / "offsets.npy")
            rows.append(r)
            shard_of.append(np.full(len(r), i, dtype=np.int64))
            starts.append(off[:-1])
            ends.append(off[1:])
        rows_all = np.concatenate(rows)
        order = np.argsort(rows_all, kind="stable")
        self._rows = rows_all[order]
        dup = self._rows[1:][np.diff(self._rows) == 0]
        if len(dup):
            raise ReasonDistillError(f"logit cache {self.dir} holds row {dup[0]} more than once")
        self._shard_of, self._start, self._end = (
            np.concatenate([np.zeros(0, dtype=np.int64), *a])[order] for a in (shard_of, starts, ends)
        )

    def __len__(self) -> int:
        return len(self._rows)

    def _locate(self, row_index: int) -> int:
        i = int(np.searchsorted(self._rows, row_index))
        if i == len(self._rows) or self._rows[i] != row_index:
            raise ReasonDistillError(f"row {row_index} is not in logit cache {self.dir} ({len(self)} rows)")
        return i

    def __contains__(self, row_index: int) -> bool:
        i = int(np.searchsorted(self._rows, row_index))
        return i < len(self._rows) and self._rows[i] == row_index

    def rows(self) -> np.ndarray:
        """Sorted training-row indices present in the cache."""
        return self._rows.copy()

    def n_positions(self, row_index: int) -> int:
        i = self._locate(row_index)
        return int(self._end[i] - self._start[i])

    def get(self, row_index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(ids [T, k] int64, logprobs [T, k] float32, tail [T] float32) of one row (copies)."""
        i = self._locate(row_index)
        shard, a, b = self._shards[self._shard_of[i]], self._start[i], self._end[i]
        # np.array (subok=False) copies into plain arrays: nothing returned pins the memmap.
        return (
            np.array(shard["ids"][a:b], dtype=np.int64),
            np.array(shard["logprobs"][a:b], dtype=np.float32),
            np.array(shard["tail"][a:b], dtype=np.float32),
        )

    def batch(
        self, row_indices: Sequence[int], pad_to: int | None = None, mask: torch.Tensor | None = None
    ) -> SparseTeacher:
        """SparseTeacher [B, T, k] for these rows.

        mask=None: row entries left-aligned, padded to T = pad_to (default: the longest row).
        mask [B, T] bool (kd.next_token_mask(labels) of the collated batch): entries placed at
        the mask's True positions, which must number exactly the row's cached positions, else
        the cache was built from other token ids and the error says so (never silent
        misalignment). Padding holds zeros and must stay masked out of the loss.
        """
        parts = [self.get(int(r)) for r in row_indices]
        lengths = [len(t) for _, _, t in parts]
        if mask is not None:
            mask = mask.bool().cpu()
            if mask.shape[0] != len(parts):
                raise ReasonDistillError(f"mask has {mask.shape[0]} rows for {len(parts)} cache rows")
            t_len = mask.shape[1]
        else:
            t_len = max(lengths, default=0) if pad_to is None else pad_to
        ids = torch.zeros(len(parts), t_len, self.k, dtype=torch.int64)
        logprobs = torch.zeros(len(parts), t_len, self.k, dtype=torch.float32)
        tail = torch.zeros(len(parts), t_len, dtype=torch.float32)
        for b, (row, (i, lp, tl)) in enumerate(zip(row_indices, parts, strict=True)):
            if mask is not None:
                where = mask[b].nonzero().squeeze(-1)
                if len(where) != len(tl):
                    raise ReasonDistillError(
                        f"logit cache row {row} holds {len(tl)} positions but the batch scores {len(where)}: "
                        "build the cache from the same tokenized rows (tokenizer, template, max_length)"
                    )
            else:
                if len(tl) > t_len:
                    raise ReasonDistillError(
                        f"logit cache row {row} has {len(tl)} positions > pad_to={t_len}"
                    )
                where = torch.arange(len(tl))
            ids[b, where], logprobs[b, where], tail[b, where] = (torch.from_numpy(x) for x in (i, lp, tl))
        return SparseTeacher(ids, logprobs, tail, self.temperature)
