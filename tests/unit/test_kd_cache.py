"""The sparse teacher-logit cache (reasondistill/kd/cache.py): format, streaming, resume, alignment."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from reasondistill.errors import ReasonDistillError
from reasondistill.kd import (
    LogitCache,
    LogitCacheWriter,
    build_cache,
    bytes_per_token,
    forward_kl,
    next_token_mask,
    topk_logprobs,
)
from reasondistill.kd import cache as cache_mod
from reasondistill.train.batching import collate, encode_rows
from tests.unit.helpers_tiny import CORPUS, tiny_model, tiny_tokenizer

K = 4


def fake_rows(n: int, vocab: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """n rows of (ids [T, K], logprobs [T, K], tail [T]) from random logits; row 2 has T = 0."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n):
        t = 0 if i == 2 else int(torch.randint(1, 9, (1,), generator=g))
        ids, lp, tail = topk_logprobs(torch.randn(t, vocab, generator=g) * 3, K)
        out.append((ids.numpy(), lp.numpy(), tail.numpy()))
    return out


def write(directory, rows, order=None, shard_rows=3, vocab=300):
    with LogitCacheWriter(directory, K, vocab, shard_rows=shard_rows) as w:
        for i in order if order is not None else range(len(rows)):
            w.add(i, *rows[i])


def assert_cache_equals(cache: LogitCache, rows) -> None:
    assert len(cache) == len(rows)
    for i, (ids, lp, tail) in enumerate(rows):
        got_ids, got_lp, got_tail = cache.get(i)
        np.testing.assert_array_equal(got_ids, ids)
        np.testing.assert_array_equal(got_lp, lp.astype(np.float16).astype(np.float32))
        np.testing.assert_array_equal(got_tail, tail)


@pytest.mark.parametrize("vocab", [300, 70_000])
def test_round_trip_in_any_order(tmp_path, vocab):
    rows = fake_rows(10, vocab)
    write(tmp_path, rows, order=[3, 1, 9, 0, 2, 8, 4, 7, 6, 5], vocab=vocab)
    cache = LogitCache(tmp_path)
    assert (cache.k, cache.vocab_size, cache.temperature) == (K, vocab, 1.0)
    assert_cache_equals(cache, rows)
    assert cache.n_positions(2) == 0 and 2 in cache and 10 not in cache
    want = np.uint16 if vocab <= 65536 else np.int32
    assert cache._shards[0]["ids"].dtype == want
    with pytest.raises(ReasonDistillError, match="row 10 is not in logit cache"):
        cache.get(10)


def test_reader_streams_through_memmap(tmp_path, monkeypatch):
    rows = fake_rows(6, 300)
    write(tmp_path, rows)
    loads = []
    real_load = np.load

    def spy(path, *a, **kw):
        loads.append((str(path).rsplit("/", 1)[-1], kw.get("mmap_mode")))
        return real_load(path, *a, **kw)

    monkeypatch.setattr(cache_mod.np, "load", spy)
    cache = LogitCache(tmp_path)
    big = {name for name, mode in loads if name in ("ids.npy", "logprobs.npy", "tail.npy")}
    assert big == {"ids.npy", "logprobs.npy", "tail.npy"}
    assert all(mode == "r" for name, mode in loads if name in big)
    assert all(isinstance(s[f], np.memmap) for s in cache._shards for f in ("ids", "logprobs", "tail"))
    ids, lp, tail = cache.get(4)  # copies: safe to keep after the cache is gone
    assert not any(isinstance(x, np.memmap) for x in (ids, lp, tail))


def test_resume_after_a_killed_writer(tmp_path):
    rows = fake_rows(10, 300)
    write(tmp_path / "whole", rows)

    killed = tmp_path / "killed"
    w = LogitCacheWriter(killed, K, 300, shard_rows=3)
    for i in range(7):  # two complete shards (rows 0-5) and row 6 pending
        w.add(i, *rows[i])
    del w  # dies without close(): row 6 is lost
    partial = killed / "shard-00002.tmp"  # and a shard half-written when the process died
    partial.mkdir()
    (partial / "ids.npy").write_bytes(b"\x93NUMPY garbage")
    assert len(LogitCache(killed)) == 6  # readers ignore the partial shard

    w = LogitCacheWriter(killed, K, 300, shard_rows=3)
    assert not partial.exists()
    todo = [i for i in range(10) if i not in w]
    assert todo == [6, 7, 8, 9]
    with w:
        for i in todo:
            w.add(i, *rows[i])
    assert_cache_equals(LogitCache(killed), rows)
    whole = LogitCache(tmp_path / "whole")
    for i in range(10):
        for a, b in zip(LogitCache(killed).get(i), whole.get(i), strict=True):
            np.testing.assert_array_equal(a, b)


def test_writer_refuses_bad_input(tmp_path):
    rows = fake_rows(3, 300)
    write(tmp_path, rows)
    with pytest.raises(ReasonDistillError, match="was built with"):
        LogitCacheWriter(tmp_path, K + 1, 300)
    with pytest.raises(ReasonDistillError, match="was built with"):
        LogitCacheWriter(tmp_path, K, 300, temperature=2.0)
    w = LogitCacheWriter(tmp_path, K, 300)
    with pytest.raises(ReasonDistillError, match="already in logit cache"):
        w.add(0, *rows[0])
    with pytest.raises(ReasonDistillError, match=r"want ids/logprobs \[T, 4\]"):
        w.add(5, rows[0][0][:, :2], rows[0][1], rows[0][2])
    with pytest.raises(ReasonDistillError, match="outside the vocabulary"):
        w.add(5, rows[0][0] + 300, rows[0][1], rows[0][2])
    with pytest.raises(ReasonDistillError, match="not a logit cache"):
        LogitCache(tmp_path / "nothing")


@pytest.mark.parametrize(
    ("k", "vocab", "expected"),
    [(16, 152_064, 100), (64, 152_064, 388), (128, 152_064, 772), (16, 32_000, 68), (128, 32_000, 516)],
)
def test_bytes_per_token(tmp_path, k, vocab, expected):
    assert bytes_per_token(k, vocab) == expected
    g = torch.Generator().manual_seed(0)
    with LogitCacheWriter(tmp_path, k, vocab) as w:
        w.add(0, *topk_logprobs(torch.randn(5, vocab, generator=g), k))
    shard = LogitCache(tmp_path)._shards[0]
    assert sum(shard[f].nbytes for f in ("ids", "logprobs", "tail")) == 5 * expected


def test_batch_left_aligned_and_mask_aligned(tmp_path):
    rows = fake_rows(5, 300)
    write(tmp_path, rows)
    cache = LogitCache(tmp_path)
    sel = [4, 2, 0]
    sp = cache.batch(sel, pad_to=10)
    assert sp.ids.shape == (3, 10, K) and sp.tail_logprob.shape == (3, 10) and sp.ids.dtype == torch.int64
    for b, r in enumerate(sel):
        n = cache.n_positions(r)
        assert torch.equal(sp.ids[b, :n], torch.from_numpy(cache.get(r)[0]))
    mask = torch.zeros(3, 12, dtype=torch.bool)
    for b, r in enumerate(sel):
        mask[b, 3 : 3 + cache.n_positions(r)] = True
    placed = cache.batch(sel, mask=mask)
    assert placed.ids.shape == (3, 12, K)
    for b, r in enumerate(sel):
        assert torch.equal(placed.ids[b][mask[b]], torch.from_numpy(cache.get(r)[0]))
        assert torch.equal(placed.logprobs[b][mask[b]], torch.from_numpy(cache.get(r)[1]))
        assert placed.ids[b][~mask[b]].abs().sum() == 0
    mask[0, 0] = True
    with pytest.raises(ReasonDistillError, match="row 4 holds .* positions but the batch scores"):
        cache.batch(sel, mask=mask)
    with pytest.raises(ReasonDistillError, match="pad_to"):
        cache.batch(sel, pad_to=1)


class Flaky(torch.nn.Module):
    """A teacher that dies on its `fail_at`-th forward call (a killed caching job)."""

    def __init__(self, model, fail_at: int):
        super().__init__()
        self.model, self.fail_at, self.calls = model, fail_at, 0

    def forward(self, **kw):
        self.calls += 1
        if self.calls == self.fail_at:
            raise RuntimeError("killed")
        return self.model(**kw)


@pytest.fixture(scope="module")
def tiny():
    tok = tiny_tokenizer()
    data = [
        {"prompt": line.split("\n", 1)[0] + "\n", "completion": line.split("\n", 1)[1]} for line in CORPUS[:3]
    ]
    data += [{"prompt": "Question: x", "completion": " y"}, {"prompt": "", "completion": "Answer: 5"}]
    return tok, tiny_model(tok), encode_rows(tok, data, max_length=40)


def test_build_cache_aligns_with_student_labels_and_resumes(tmp_path, tiny):
    tok, teacher, rows = tiny
    vocab = len(tok)
    with pytest.raises(RuntimeError, match="killed"):
        build_cache(
            Flaky(teacher, 2), rows, vocab, tmp_path, batch_size=2, vocab_size=vocab, pad_id=tok.pad_token_id
        )
    assert len(LogitCache(tmp_path)) == 2  # the first batch was kept
    cache = build_cache(teacher, rows, vocab, tmp_path, batch_size=2, pad_id=tok.pad_token_id, shard_rows=2)
    assert len(cache) == len(rows)

    idx = [4, 0, 3]  # includes the row with an empty prompt (its first token is never predicted)
    batch = collate([rows[i] for i in idx], tok.pad_token_id)
    mask = next_token_mask(batch["labels"])
    with torch.no_grad():
        t_logits = teacher(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    sparse = cache.batch(idx, mask=mask)  # k = V: the cache holds the full distribution
    want_ids, want_lp, _ = topk_logprobs(t_logits[mask], vocab)
    assert torch.equal(sparse.ids[mask], want_ids)
    torch.testing.assert_close(sparse.logprobs[mask], want_lp, atol=2e-2, rtol=1e-3)  # fp16 storage

    student = torch.randn(*t_logits.shape, generator=torch.Generator().manual_seed(0))
    full, n = forward_kl(student, t_logits, mask)
    cached, n_cached = forward_kl(student, sparse, mask)
    assert n == n_cached == sum(len(rows[i].ids) - max(rows[i].n_prompt, 1) for i in idx)
    torch.testing.assert_close(cached, full, rtol=1e-3, atol=1e-3)
