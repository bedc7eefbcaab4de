"""Tail samples in a top-k cache (reasondistill/kd/tail.py): an unbiased forward KL."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from reasondistill.errors import ReasonDistillError
from reasondistill.kd import (
    KD_LOSSES,
    LogitCache,
    LogitCacheWriter,
    SparseTeacher,
    build_cache,
    bytes_per_token,
    forward_kl,
    next_token_mask,
    topk_logprobs,
)
from reasondistill.kd.tail import sample_tail
from reasondistill.train.batching import collate, encode_rows
from tests.unit.helpers_tiny import CORPUS, tiny_model, tiny_tokenizer

B, T, V, K, M = 3, 7, 50, 5, 8


def problem(seed: int = 0, tau: float = 1.0):
    g = torch.Generator().manual_seed(seed)
    teacher = torch.randn(B, T, V, generator=g) * 2
    student = (torch.randn(B, T, V, generator=g) * 2).requires_grad_()
    mask = torch.rand(B, T, generator=g) > 0.3
    ids, lp, tail = topk_logprobs(teacher, K, tau)
    return teacher, student, mask, ids, lp, tail


def sampled(teacher, ids, lp, tail, seed: int, tau: float = 1.0, m: int = M) -> SparseTeacher:
    g = torch.Generator().manual_seed(seed)
    s, h = sample_tail(teacher.reshape(-1, V), ids.reshape(-1, K), m, tau, g)
    return SparseTeacher(ids, lp, tail, tau, samples=s.reshape(B, T, m), tail_entropy=h.reshape(B, T))


def test_samples_lie_in_the_tail_entropy_is_exact_and_draws_are_seeded():
    teacher, _, _, ids, _, _ = problem()
    z, top = teacher.reshape(-1, V), ids.reshape(-1, K)
    s1, h = sample_tail(z, top, 64, 1.0, torch.Generator().manual_seed(3))
    s2, _ = sample_tail(z, top, 64, 1.0, torch.Generator().manual_seed(3))
    assert torch.equal(s1, s2) and s1.shape == (B * T, 64)
    assert not (s1.unsqueeze(-1) == top.unsqueeze(1)).any()  # never a cached top-k id
    r = z.scatter(-1, top, float("-inf")).softmax(-1)
    torch.testing.assert_close(h, -(r * r.clamp_min(1e-30).log()).sum(-1))
    with pytest.raises(ReasonDistillError, match="tail is empty"):
        sample_tail(z, z.topk(V).indices, 4)


@pytest.mark.parametrize("tau", [1.0, 2.0])
def test_forward_kl_with_tail_samples_is_unbiased_in_value_and_gradient(tau):
    teacher, student, mask, ids, lp, tail = problem(0, tau)
    full, _ = forward_kl(student, teacher, mask, temperature=tau)
    g_full = torch.autograd.grad(full, student)[0]
    bucket, _ = forward_kl(student, SparseTeacher(ids, lp, tail, tau), mask, temperature=tau)
    g_bucket = torch.autograd.grad(bucket, student)[0]
    values, grads = [], []
    for seed in range(300):
        est, _ = forward_kl(student, sampled(teacher, ids, lp, tail, seed, tau), mask, temperature=tau)
        values.append(float(est.detach()))
        grads.append(torch.autograd.grad(est, student)[0])
    mean, se = np.mean(values), np.std(values) / np.sqrt(len(values))
    assert float(bucket.detach()) < float(full.detach()) - 20 * se  # the buckets alone are biased low
    assert abs(mean - float(full.detach())) < 4 * se  # the samples remove the bias
    rel = (torch.stack(grads).mean(0) - g_full).norm() / g_full.norm()
    rel_bucket = (g_bucket - g_full).norm() / g_full.norm()
    assert rel < 0.25 * rel_bucket


def test_many_samples_converge_to_full_kl():
    teacher, student, mask, ids, lp, tail = problem(1)
    full, _ = forward_kl(student, teacher, mask)
    est, _ = forward_kl(student, sampled(teacher, ids, lp, tail, 0, m=20_000), mask)
    torch.testing.assert_close(est, full, rtol=2e-3, atol=0)


@pytest.mark.parametrize("name", [n for n in KD_LOSSES.names() if n != "forward_kl"])
def test_other_losses_ignore_samples(name):
    teacher, student, mask, ids, lp, tail = problem(2)
    loss = KD_LOSSES.get(name)
    plain, _ = loss(student, SparseTeacher(ids, lp, tail), mask)
    with_samples, _ = loss(student, sampled(teacher, ids, lp, tail, 0), mask)
    assert torch.equal(plain, with_samples)


@pytest.fixture(scope="module")
def tiny():
    tok = tiny_tokenizer()
    data = [{"prompt": ln.split("\n", 1)[0] + "\n", "completion": ln.split("\n", 1)[1]} for ln in CORPUS[:4]]
    return tok, tiny_model(tok), encode_rows(tok, data, max_length=40)


@pytest.mark.parametrize("codec", ["fp16", "packed"])
def test_cache_round_trip_resume_and_packed_layout(tmp_path, tiny, codec):
    tok, teacher, rows = tiny
    kw = dict(batch_size=3, pad_id=tok.pad_token_id, shard_rows=2, codec=codec, tail_samples=M, seed=7)
    build_cache(teacher, rows[:2], 16, tmp_path / "part", **kw)  # a first run stopped after 2 rows
    part = build_cache(teacher, rows, 16, tmp_path / "part", **kw)  # ... resumed
    whole = build_cache(teacher, rows, 16, tmp_path / "whole", **{**kw, "batch_size": 1})
    idx = [3, 0, 2]
    a, b = part.gather(idx), whole.gather(idx)
    assert np.array_equal(a.samples, b.samples)  # seeded per row: batching and resume do not matter
    assert a.samples.shape == (len(a.tail), M) and not (a.samples[:, :, None] == a.ids[:, None, :]).any()

    batch = collate([rows[i] for i in idx], tok.pad_token_id)
    mask = next_token_mask(batch["labels"])
    with torch.no_grad():
        t_logits = teacher(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    z = t_logits[mask]
    top, _, _ = topk_logprobs(z, 16)
    r = z.scatter(-1, top, float("-inf")).softmax(-1)
    torch.testing.assert_close(torch.from_numpy(a.tail_entropy), -(r * r.clamp_min(1e-30).log()).sum(-1))

    student = torch.randn(*t_logits.shape, generator=torch.Generator().manual_seed(0))
    dense, packed = part.batch(idx, mask=mask), part.batch(idx, mask=mask, packed=True)
    assert dense.samples.shape == (*mask.shape, M) and packed.samples.shape == (int(mask.sum()), M)
    torch.testing.assert_close(forward_kl(student, dense, mask)[0], forward_kl(student, packed, mask)[0])

    shards = list((tmp_path / "whole").glob("shard-*"))
    on_disk = sum(f.stat().st_size for f in (tmp_path / "whole").rglob("*.npy"))
    n = sum(whole.n_positions(i) for i in range(len(rows)))
    overhead = on_disk - n * bytes_per_token(16, len(tok), codec, M) - 16 * len(rows)  # + rows, offsets
    assert 0 <= overhead <= len(shards) * (7 * 128 + 8)  # 7 npy headers per shard, offsets' extra entry
    with pytest.raises(ReasonDistillError, match="was built with"):
        LogitCacheWriter(tmp_path / "whole", 16, len(tok), codec=codec, tail_samples=M + 1)
    with pytest.raises(ReasonDistillError, match="non-empty tail"):
        LogitCacheWriter(tmp_path / "full", len(tok), len(tok), tail_samples=M)
    assert LogitCache(tmp_path / "whole").tail_samples == M
