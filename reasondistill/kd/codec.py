"""On-disk encodings of a logit cache's top-k entries (kd/cache.py), fixed-size per token.

fp16    ids as uint16 (vocab <= 65536) or int32, log-probs as float16:
        k * (2 + 2) + 4 bytes/token for V <= 65536 (516 at k = 128).
packed  ids as an Elias-Fano code of the position's sorted id set, log-probs as 8-bit floats:
        about k * (2 + log2(V / k)) / 8 + k + 4 bytes/token (212 at k = 128 for V = 1024,
        292 for V = 32000, 327 for V = 152064).

Why these choices for `packed`:
- The loss never needs the top-k in rank order (a divergence is a sum over buckets), so the k
  ids of a position are stored as a sorted SET. Elias-Fano stores a sorted set of k values below
  V in k * (2 + floor(log2(V / k))) bits, within 2 bits per id of the information-theoretic
  minimum, with a fixed size per position (so records stay a plain [P, bytes] array that
  np.memmap pages per row) and vectorised numpy decoding: the low L bits of the ids as L bit
  planes, the high bits as a unary bitmap where id i sets bit (id_i >> L) + i.
- Log-probs go to float8 e4m3 of -log p (3 mantissa bits: a relative error of at most 1/16 in
  log p, so 6e-4 in log p at p = 0.99 and 0.3 at p = 0.007). The error in log p_i enters the
  KD loss weighted by p_i, so precision goes where the mass is; bench/kd_throughput.py measures
  the end effect on the loss against full logits. The tail log-mass stays float32, and the loss
  renormalises the k + 1 teacher buckets anyway (kd/teacher.py).
"""

from __future__ import annotations

import math

import numpy as np
import torch

CODECS = ("fp16", "packed")
_F8_MAX = 448.0  # largest finite float8_e4m3fn


def id_dtype(vocab_size: int) -> np.dtype:
    """fp16 codec's id type: uint16 when every id fits (vocab <= 65536), else int32."""
    return np.dtype(np.uint16) if vocab_size <= 2**16 else np.dtype(np.int32)


def _ef_shape(k: int, vocab_size: int) -> tuple[int, int, int]:
    """(L low bits per id, bytes of the packed lows, bits of the high-part bitmap)."""
    low = max(0, int(math.floor(math.log2(vocab_size / k)))) if vocab_size > k else 0
    high_bits = k + ((vocab_size - 1) >> low)  # bit (id >> L) + i for i < k: at most this many
    return low, -(-k * low // 8), high_bits


def bytes_per_token(k: int, vocab_size: int, codec: str = "fp16", tail_samples: int = 0) -> int:
    """Bytes of one cached position: ids + log-probs + a float32 tail (row index not counted),
    plus, with m tail samples (kd/tail.py), m ids of id_dtype and a float32 tail entropy."""
    extra = tail_samples * id_dtype(vocab_size).itemsize + 4 if tail_samples else 0
    if codec == "fp16":
        return k * (id_dtype(vocab_size).itemsize + 2) + 4 + extra
    if codec == "packed":
        _, low_bytes, high_bits = _ef_shape(k, vocab_size)
        return low_bytes + -(-high_bits // 8) + k + 4 + extra
    raise ValueError(f"unknown logit cache codec {codec!r}; allowed: {', '.join(CODECS)}")


def encode(
    ids: np.ndarray, logprobs: np.ndarray, vocab_size: int, codec: str
) -> tuple[np.ndarray, np.ndarray]:
    """ids [P, k] (distinct per row), logprobs [P, k] -> the two stored arrays of `codec`."""
    if codec == "fp16":
        return ids.astype(id_dtype(vocab_size)), logprobs.astype(np.float16)
    order = np.argsort(ids, axis=1, kind="stable")
    ids = np.take_along_axis(ids.astype(np.int64), order, axis=1)
    logprobs = np.take_along_axis(logprobs, order, axis=1)
    return _ef_encode(ids, vocab_size), _f8_encode(logprobs)


def decode(
    ids: np.ndarray, logprobs: np.ndarray, k: int, vocab_size: int, codec: str
) -> tuple[np.ndarray, np.ndarray]:
    """The stored arrays of P positions -> (ids [P, k] int64, logprobs [P, k] float32)."""
    if codec == "fp16":
        return np.array(ids, dtype=np.int64), np.array(logprobs, dtype=np.float32)
    return _ef_decode(np.asarray(ids), k, vocab_size), _f8_decode(np.asarray(logprobs))


def _ef_encode(ids: np.ndarray, vocab_size: int) -> np.ndarray:
    """Sorted ids [P, k] -> Elias-Fano records [P, low_bytes + high_bytes] uint8.

    The low parts are stored as L bit planes of k bits (plane j = bit j of every id's low part):
    the same k * L bits as a flat bit stream, but decoded with L vectorised shifts.
    """
    p, k = ids.shape
    low, low_bytes, high_bits = _ef_shape(k, vocab_size)
    planes = (ids[:, None, :] >> np.arange(low)[:, None]) & 1  # [P, L, k]
    packed_low = np.packbits(planes.reshape(p, low * k).astype(np.uint8), axis=1, bitorder="little")
    bitmap = np.zeros((p, high_bits), dtype=np.uint8)
    bitmap[np.arange(p)[:, None], (ids >> low) + np.arange(k)] = 1
    packed_high = np.packbits(bitmap, axis=1, bitorder="little")
    return np.concatenate([packed_low.reshape(p, low_bytes), packed_high], axis=1)


def _ef_decode(blob: np.ndarray, k: int, vocab_size: int) -> np.ndarray:
    p = blob.shape[0]
    low, low_bytes, high_bits = _ef_shape(k, vocab_size)
    planes = np.unpackbits(blob[:, :low_bytes], axis=1, count=k * low, bitorder="little").reshape(p, low, k)
    lows = np.zeros((p, k), dtype=np.int64)
    for j in range(low):
        lows |= planes[:, j].astype(np.int64) << j
    bitmap = np.unpackbits(blob[:, low_bytes:], axis=1, count=high_bits, bitorder="little")
    flat = np.flatnonzero(bitmap.view(bool))  # row-major: each row's set bits in increasing order
    if len(flat) != p * k:
        raise ValueError("corrupt Elias-Fano record: wrong number of ids")
    rows, pos = np.divmod(flat.reshape(p, k), high_bits)
    # With p * k bits in all, "every row's k-block starts and ends in that row" means k per row.
    if p and not (np.array_equal(rows[:, 0], np.arange(p)) and np.array_equal(rows[:, -1], np.arange(p))):
        raise ValueError("corrupt Elias-Fano record: wrong number of ids in a row")
    return ((pos - np.arange(k)) << low) | lows


def _f8_encode(logprobs: np.ndarray) -> np.ndarray:
    neg = torch.from_numpy(np.ascontiguousarray(-logprobs, dtype=np.float32)).clamp(0.0, _F8_MAX)
    return neg.to(torch.float8_e4m3fn).view(torch.uint8).numpy()


# byte -> log-prob, for all 256 float8 e4m3 codes: a table lookup decodes ~30x faster than
# torch's float8 -> float32 conversion on CPU.
_F8_TABLE = (-torch.arange(256, dtype=torch.uint8).view(torch.float8_e4m3fn).float()).numpy()


def _f8_decode(stored: np.ndarray) -> np.ndarray:
    return np.take(_F8_TABLE, np.asarray(stored, dtype=np.uint8))
