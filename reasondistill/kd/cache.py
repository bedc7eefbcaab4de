"""A sparse teacher-logit cache: the teacher scores every training row once, and KD training
reads top-k log-probs back instead of running the teacher each step.

On-disk format (a directory):
    meta.json            {"format", "k", "vocab_size", "temperature", "id_dtype", "codec", "tail_samples"}
    shard-00000/         one complete shard, renamed into place atomically
        rows.npy         [R] int64   training-row index of each row in the shard
        offsets.npy      [R+1] int64 row r's positions are offsets[r]:offsets[r+1]
        ids.npy          [P, k] uint16 (vocab <= 65536) or int32: top-k token ids
        logprobs.npy     [P, k] float16: their log-probs (at `temperature`)
        tail.npy         [P] float32: log of the mass on every other id (-inf if none)
        samples.npy      [P, m] uint16 / int32, only if tail_samples m > 0: ids drawn from the
                         teacher's distribution inside its tail (kd/tail.py)
        tail_entropy.npy [P] float32, only if m > 0: that distribution's entropy (nats)
    shard-00001/ ...
That is the default "fp16" codec. The "packed" codec (kd/codec.py) stores ids.npy as [P, B]
uint8 Elias-Fano records of each position's id set and logprobs.npy as [P, k] float8 bytes:
292 instead of 516 bytes/token at k = 128 for a 32000-token vocabulary. Meta without "codec"
(older caches) reads as fp16, without "tail_samples" as 0.
A shard is written under `shard-NNNNN.tmp/`, fsynced, then renamed, so a killed job leaves
only complete shards plus (maybe) a `.tmp` that the next writer deletes; rows of complete
shards are skipped on resume. The reader opens the big fields as np.memmap (`np.load(...,
mmap_mode="r")`): reading a row touches only its pages, never the whole file.

Alignment: row i's entries are the teacher distributions at the logits positions that
predict its completion tokens, in order: positions max(n_prompt, 1) - 1 .. len(ids) - 2 of
`rows[i].ids` (an EncodedRow of train/batching), i.e. exactly the positions where
kd.next_token_mask(labels) is True for the collated row. `LogitCache.batch(rows, mask=...)`
scatters them there and checks the counts agree. kd/build.py fills a cache from a teacher;
kd/reader.py holds the reader, LogitCache.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import torch

from reasondistill.errors import ReasonDistillError
from reasondistill.kd import codec as codecs
from reasondistill.kd.codec import id_dtype
from reasondistill.kd.reader import FORMAT, LogitCache, shard_dirs

__all__ = ["FORMAT", "LogitCache", "LogitCacheWriter", "bytes_per_token", "id_dtype"]


def bytes_per_token(k: int, vocab_size: int, codec: str = "fp16", tail_samples: int = 0) -> int:
    """Cache bytes per completion token: k ids + k log-probs + one fp32 tail (kd/codec.py).

    Plus 16 bytes per row (rows/offsets). For comparison, full fp16 logits cost 2 * V bytes
    (304 KB per token for V = 152064; top-128 costs 772 bytes with fp16, 327 with packed).
    """
    return codecs.bytes_per_token(k, vocab_size, codec, tail_samples)


def _write_json(path: Path, obj: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(obj, indent=1))
    os.replace(tmp, path)


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
        codec: str = "fp16",
        tail_samples: int = 0,
    ):
        if k <= 0 or k > vocab_size or shard_rows <= 0:
            raise ReasonDistillError(f"logit cache needs 0 < k <= vocab_size and shard_rows > 0 (k={k})")
        if tail_samples < 0 or (tail_samples and k == vocab_size):
            raise ReasonDistillError(
                f"logit cache tail_samples={tail_samples} needs >= 0, and k < vocab_size (a non-empty tail)"
            )
        if codec not in codecs.CODECS:
            raise ReasonDistillError(
                f"unknown logit cache codec {codec!r}; allowed: {', '.join(codecs.CODECS)}"
            )
        self.dir = Path(directory)
        self.k, self.vocab_size, self.shard_rows, self.codec = k, vocab_size, shard_rows, codec
        self.tail_samples = tail_samples
        self.dir.mkdir(parents=True, exist_ok=True)
        meta = {
            "format": FORMAT,
            "k": k,
            "vocab_size": vocab_size,
            "temperature": float(temperature),
            "id_dtype": id_dtype(vocab_size).name,
            "codec": codec,
            "tail_samples": tail_samples,
        }
        meta_path = self.dir / "meta.json"
        if meta_path.exists():
            old = json.loads(meta_path.read_text())
            old.setdefault("codec", "fp16")  # caches written before codecs existed
            old.setdefault("tail_samples", 0)  # ... or tail samples
            if old != meta:
                raise ReasonDistillError(f"logit cache {self.dir} was built with {old}, not {meta}")
        else:
            _write_json(meta_path, meta)
        for tmp in self.dir.glob("shard-*.tmp"):  # a shard a killed job did not finish
            shutil.rmtree(tmp)
        shards = shard_dirs(self.dir)
        self._done: set[int] = set()
        for shard in shards:
            self._done.update(np.load(shard / "rows.npy").tolist())
        self._next_shard = int(shards[-1].name.split("-")[1]) + 1 if shards else 0
        self._pending: list[tuple] = []  # (row, ids, logprobs, tail[, samples, entropy]) encoded
        self._pending_rows: set[int] = set()

    def __contains__(self, row_index: int) -> bool:
        return row_index in self._done or row_index in self._pending_rows

    def add(self, row_index: int, ids, logprobs, tail, samples=None, tail_entropy=None) -> None:
        """Add one row: ids [T, k], logprobs [T, k], tail [T] (tensors or arrays; T may be 0), and
        with tail_samples m > 0 also samples [T, m] and tail_entropy [T] (kd/tail.sample_tail)."""
        ids, logprobs, tail = (np.asarray(torch.as_tensor(x).detach().cpu()) for x in (ids, logprobs, tail))
        t = tail.shape[0] if tail.ndim == 1 else -1
        if ids.shape != (t, self.k) or logprobs.shape != (t, self.k):
            raise ReasonDistillError(
                f"row {row_index}: want ids/logprobs [T, {self.k}] and tail [T]; got {ids.shape}, "
                f"{logprobs.shape}, {tail.shape}"
            )
        extra: tuple = ()
        if self.tail_samples:
            if samples is None or tail_entropy is None:
                raise ReasonDistillError(
                    f"row {row_index}: this cache stores {self.tail_samples} tail samples"
                )
            samples, ent = (np.asarray(torch.as_tensor(x).detach().cpu()) for x in (samples, tail_entropy))
            if samples.shape != (t, self.tail_samples) or ent.shape != (t,):
                raise ReasonDistillError(
                    f"row {row_index}: want samples [T, {self.tail_samples}] and tail_entropy [T]; got "
                    f"{samples.shape}, {ent.shape}"
                )
            if samples.size and (samples.min() < 0 or samples.max() >= self.vocab_size):
                raise ReasonDistillError(f"row {row_index}: tail samples outside the vocabulary")
            extra = (samples.astype(id_dtype(self.vocab_size)), ent.astype(np.float32))
        if ids.size and (ids.min() < 0 or ids.max() >= self.vocab_size):
            raise ReasonDistillError(
                f"row {row_index}: token ids outside the vocabulary [0, {self.vocab_size})"
            )
        if row_index in self:
            raise ReasonDistillError(f"row {row_index} is already in logit cache {self.dir}")
        stored_ids, stored_logprobs = codecs.encode(ids, logprobs, self.vocab_size, self.codec)
        self._pending.append((int(row_index), stored_ids, stored_logprobs, tail.astype(np.float32), *extra))
        self._pending_rows.add(int(row_index))
        if len(self._pending) >= self.shard_rows:
            self.flush()

    def flush(self) -> None:
        """Write pending rows as one shard: into `.tmp`, fsync, then an atomic rename."""
        if not self._pending:
            return
        rows, ids, logprobs, tail, *extra = zip(*self._pending, strict=True)
        fields = {
            "rows": np.asarray(rows, dtype=np.int64),
            "offsets": np.concatenate([[0], np.cumsum([len(t) for t in tail])]).astype(np.int64),
            "ids": np.concatenate(ids),
            "logprobs": np.concatenate(logprobs),
            "tail": np.concatenate(tail),
        }
        if extra:
            fields["samples"], fields["tail_entropy"] = (np.concatenate(x) for x in extra)
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
