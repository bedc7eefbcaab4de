"""LogitCache: the streamed reader of a logit cache directory (format: kd/cache.py).

Only the small per-row index (rows, offsets) is read into memory; the big per-position fields
stay on disk as np.memmap and are paged in as rows are read. A training step reads its
micro-batch's rows with one fancy-indexed read and one decode per shard (`gather`), which the
KD objective runs in a background thread ahead of the step (kd/objective.py `prefetch`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from reasondistill.errors import ReasonDistillError
from reasondistill.kd import codec as codecs
from reasondistill.kd.teacher import SparseTeacher

FORMAT = 1


class Gathered(NamedTuple):
    """Rows' cache entries concatenated in the requested order (LogitCache.gather)."""

    ids: np.ndarray  # [P, k] int64
    logprobs: np.ndarray  # [P, k] float32
    tail: np.ndarray  # [P] float32
    lengths: np.ndarray  # [R] positions per row
    samples: np.ndarray | None = None  # [P, m] int64 tail samples (kd/tail.py), if cached
    tail_entropy: np.ndarray | None = None  # [P] float32


def shard_dirs(directory: Path) -> list[Path]:
    return sorted(p for p in directory.glob("shard-*") if p.is_dir() and not p.name.endswith(".tmp"))


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
        self.codec: str = meta.get("codec", "fp16")
        self.tail_samples: int = meta.get("tail_samples", 0)
        # Only the small index arrays (rows, offsets) are read into memory; the big fields
        # stay on disk as np.memmap and are paged in per row.
        dirs = shard_dirs(self.dir)
        fields = ("ids", "logprobs", "tail") + (("samples", "tail_entropy") if self.tail_samples else ())
        self._shards = [{name: np.load(s / f"{name}.npy", mmap_mode="r") for name in fields} for s in dirs]
        rows, shard_of, starts, ends = [np.zeros(0, dtype=np.int64)], [], [], []
        for i, s in enumerate(dirs):
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
        g = self.gather([row_index])
        return g.ids, g.logprobs, g.tail

    def gather(self, row_indices: Sequence[int]) -> Gathered:
        """Rows' entries concatenated in the given order, + their lengths. One fancy-indexed read
        and one decode per shard touched, not per row: this runs once per training micro-batch."""
        locs = np.asarray([self._locate(int(r)) for r in row_indices], dtype=np.int64)
        shard_of, start, end = self._shard_of[locs], self._start[locs], self._end[locs]
        lengths = end - start
        dst_start = np.concatenate([[0], np.cumsum(lengths)])[:-1]
        total = int(lengths.sum())
        ids = np.empty((total, self.k), dtype=np.int64)
        logprobs = np.empty((total, self.k), dtype=np.float32)
        tail = np.empty(total, dtype=np.float32)
        m = self.tail_samples
        samples = np.empty((total, m), dtype=np.int64) if m else None
        entropy = np.empty(total, dtype=np.float32) if m else None
        for sh in np.unique(shard_of):
            sel = shard_of == sh
            src, dst = _ranges(start[sel], lengths[sel]), _ranges(dst_start[sel], lengths[sel])
            shard = self._shards[sh]
            # Fancy indexing a memmap copies just these positions into plain arrays (nothing
            # returned pins the map); sorted-ish indices keep the reads sequential.
            ids[dst], logprobs[dst] = codecs.decode(
                shard["ids"][src], shard["logprobs"][src], self.k, self.vocab_size, self.codec
            )
            tail[dst] = shard["tail"][src]
            if m:
                samples[dst], entropy[dst] = shard["samples"][src], shard["tail_entropy"][src]
        return Gathered(ids, logprobs, tail, lengths, samples, entropy)

    def batch(
        self,
        row_indices: Sequence[int],
        pad_to: int | None = None,
        mask: torch.Tensor | None = None,
        gathered: Gathered | None = None,
        packed: bool = False,
    ) -> SparseTeacher:
        """SparseTeacher [B, T, k] for these rows.

        mask=None: row entries left-aligned, padded to T = pad_to (default: the longest row).
        mask [B, T] bool (kd.next_token_mask(labels) of the collated batch): entries placed at
        the mask's True positions, which must number exactly the row's cached positions, else
        the cache was built from other token ids and the error says so (never silent
        misalignment). Padding holds zeros and must stay masked out of the loss. gathered: what
        `gather(row_indices)` returned, when already read (e.g. prefetched in a thread).
        packed: return SparseTeacher's packed layout ([N, k] fields + the mask; needs `mask`).
        """
        row_indices = [int(r) for r in row_indices]
        g = gathered if gathered is not None else self.gather(row_indices)
        ids, logprobs, tail, lengths = g.ids, g.logprobs, g.tail, g.lengths
        if mask is not None:
            mask = mask.bool().cpu()
            if mask.shape[0] != len(row_indices):
                raise ReasonDistillError(f"mask has {mask.shape[0]} rows for {len(row_indices)} cache rows")
            scored = mask.sum(1).numpy()
            bad = np.nonzero(scored != lengths)[0]
            if len(bad):
                b = bad[0]
                raise ReasonDistillError(
                    f"logit cache row {row_indices[b]} holds {lengths[b]} positions but the batch scores "
                    f"{scored[b]}: build the cache from the same tokenized rows (tokenizer, template, max_length)"
                )
        else:
            t_len = int(lengths.max(initial=0)) if pad_to is None else pad_to
            if len(lengths) and lengths.max() > t_len:
                b = int(np.argmax(lengths))
                raise ReasonDistillError(
                    f"logit cache row {row_indices[b]} has {lengths[b]} positions > pad_to={t_len}"
                )
            mask = torch.arange(t_len) < torch.from_numpy(lengths)[:, None]
        if packed:
            if mask is None:
                raise ValueError("packed=True needs the loss mask")
            tensors = (torch.from_numpy(x) for x in (ids, logprobs, tail))
            extra = (
                (None, None)
                if g.samples is None
                else (torch.from_numpy(g.samples), torch.from_numpy(g.tail_entropy))
            )
            return SparseTeacher(
                *tensors, temperature=self.temperature, mask=mask, samples=extra[0], tail_entropy=extra[1]
            )
        # mask's True positions, row-major, are the rows' entries in order: one scatter each.
        out_ids = torch.zeros(*mask.shape, self.k, dtype=torch.int64)
        out_lp = torch.zeros(*mask.shape, self.k, dtype=torch.float32)
        out_tail = torch.zeros(*mask.shape, dtype=torch.float32)
        out_ids[mask], out_lp[mask], out_tail[mask] = (torch.from_numpy(x) for x in (ids, logprobs, tail))
        out_samples = out_entropy = None
        if g.samples is not None:
            out_samples = torch.zeros(*mask.shape, g.samples.shape[1], dtype=torch.int64)
            out_entropy = torch.zeros(*mask.shape, dtype=torch.float32)
            out_samples[mask], out_entropy[mask] = (
                torch.from_numpy(g.samples),
                torch.from_numpy(g.tail_entropy),
            )
        return SparseTeacher(
            out_ids, out_lp, out_tail, self.temperature, samples=out_samples, tail_entropy=out_entropy
        )


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """concatenate(arange(s, s + n) for s, n in zip(starts, lengths)), vectorised."""
    offsets = np.repeat(starts - np.concatenate([[0], np.cumsum(lengths)])[:-1], lengths)
    return offsets + np.arange(int(lengths.sum()))
