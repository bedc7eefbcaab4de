"""Property and contract tests of the KD losses (reasondistill/kd/losses.py, kd/teacher.py).

Properties are checked over several random seeds (parametrized) rather than with hypothesis,
to keep the dev dependencies as they are.
"""

from __future__ import annotations

import math
import os

import pytest
import torch
import torch.nn.functional as F
from pydantic import ValidationError

from reasondistill.errors import ReasonDistillError
from reasondistill.kd import KD_LOSSES, KDLossConfig, SparseTeacher, kd_objective, mean, next_token_mask
from reasondistill.train.loss import nll_sum

SEEDS = [0, 1, 2, 3]
LOSSES = KD_LOSSES.names()
B, T, V = 4, 6, 13


def batch(seed: int, scale: float = 3.0, dtype=torch.float32):
    """Random student/teacher logits [B, T, V] and a mask [B, T] with some rows partly masked."""
    g = torch.Generator().manual_seed(seed)
    student = (torch.randn(B, T, V, generator=g) * scale).to(dtype)
    teacher = (torch.randn(B, T, V, generator=g) * scale).to(dtype)
    mask = torch.rand(B, T, generator=g) > 0.3
    mask[0] = True  # at least one token
    return student, teacher, mask


def call(name, student, teacher, mask, **kw):
    return KD_LOSSES.get(name)(student, teacher, mask, **kw)


def fp16_cache(teacher_logits, k, temperature=1.0):
    """A SparseTeacher as a LogitCache returns it: fp16-rounded log-probs."""
    t = SparseTeacher.from_logits(teacher_logits, k, temperature)
    return SparseTeacher(t.ids, t.logprobs.half().float(), t.tail_logprob, temperature)


# ---- contract: every registered loss -------------------------------------------------------


@pytest.mark.parametrize("name", LOSSES)
@pytest.mark.parametrize("seed", SEEDS)
def test_zero_on_identical_distributions(name, seed):
    student, _, mask = batch(seed)
    full, n = call(name, student, student.clone(), mask)
    sparse, _ = call(name, student, SparseTeacher.from_logits(student, k=4), mask)
    assert n == int(mask.sum())
    assert abs(full.item()) < 1e-5 and abs(sparse.item()) < 1e-5


@pytest.mark.parametrize("name", LOSSES)
@pytest.mark.parametrize("seed", SEEDS)
def test_nonnegative_fp32_and_finite_grad(name, seed):
    student, teacher, mask = batch(seed)
    for t in (teacher, fp16_cache(teacher, k=3)):
        s = student.clone().requires_grad_()
        loss, _ = call(name, s, t, mask)
        assert loss.dtype == torch.float32 and loss.dim() == 0
        assert loss.item() >= -1e-6
        loss.backward()
        assert torch.isfinite(s.grad).all()
        assert s.grad[~mask].abs().max() == 0  # padding gets no gradient


@pytest.mark.parametrize("name", LOSSES)
def test_all_masked_gives_zero_and_zero_grad(name):
    student, teacher, _ = batch(0)
    mask = torch.zeros(B, T, dtype=torch.bool)
    for t in (teacher, SparseTeacher.from_logits(teacher, k=V)):
        s = student.clone().requires_grad_()
        loss, n = call(name, s, t, mask)
        assert n == 0 and loss.item() == 0.0
        assert mean(loss, n).item() == 0.0
        loss.backward()
        assert torch.isfinite(s.grad).all() and s.grad.abs().max() == 0


@pytest.mark.parametrize("name", LOSSES)
@pytest.mark.parametrize("seed", SEEDS)
def test_sum_is_split_invariant(name, seed):
    """Summed loss of a batch == sum over any split of it (gradient-accumulation invariance)."""
    student, teacher, mask = batch(seed)
    whole, n = call(name, student, teacher, mask)
    a, na = call(name, student[:1], teacher[:1], mask[:1])
    b, nb = call(name, student[1:], teacher[1:], mask[1:])
    assert n == na + nb
    torch.testing.assert_close(whole, a + b, rtol=1e-5, atol=1e-5)
    sp = SparseTeacher.from_logits(teacher, k=5)
    halves = [
        SparseTeacher(sp.ids[s], sp.logprobs[s], sp.tail_logprob[s]) for s in (slice(0, 2), slice(2, B))
    ]
    whole_sp, _ = call(name, student, sp, mask)
    parts = [
        call(name, student[s], h, mask[s])[0] for s, h in zip((slice(0, 2), slice(2, B)), halves, strict=True)
    ]
    torch.testing.assert_close(whole_sp, parts[0] + parts[1], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", LOSSES)
@pytest.mark.parametrize("seed", SEEDS)
def test_sparse_with_k_equal_vocab_equals_full(name, seed):
    student, teacher, mask = batch(seed)
    s1, s2 = student.clone().requires_grad_(), student.clone().requires_grad_()
    full, _ = call(name, s1, teacher, mask)
    sparse, _ = call(name, s2, SparseTeacher.from_logits(teacher, k=V), mask)
    torch.testing.assert_close(sparse, full, rtol=1e-5, atol=1e-5)
    full.backward()
    sparse.backward()
    torch.testing.assert_close(s2.grad, s1.grad, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name", LOSSES)
@pytest.mark.parametrize("seed", SEEDS)
def test_sparse_error_shrinks_as_k_grows(name, seed):
    """The (k+1)-bucket loss is a coarsening of the full one: a lower bound (data-processing
    inequality) that grows monotonically to the full value as the top-k sets refine."""
    student, teacher, mask = batch(seed)
    full = call(name, student, teacher, mask)[0].item()
    values = [
        call(name, student, SparseTeacher.from_logits(teacher, k=k), mask)[0].item() for k in range(1, V + 1)
    ]
    tol = 1e-6 * max(1.0, full)  # fp32 rounding of sums of ~20 tokens
    for lo, hi in zip(values, values[1:], strict=False):
        assert lo <= hi + tol
    assert max(values) <= full + tol
    assert abs(values[-1] - full) <= tol


@pytest.mark.parametrize("name", LOSSES)
@pytest.mark.parametrize("tau", [0.5, 2.0, 4.0])
def test_temperature_softens_both_and_scales_by_tau_squared(name, tau):
    student, teacher, mask = batch(1)
    hot, _ = call(name, student, teacher, mask, temperature=tau)
    manual, _ = call(name, student / tau, teacher / tau, mask, temperature=1.0)
    torch.testing.assert_close(hot, tau**2 * manual, rtol=1e-5, atol=1e-5)
    # A cache built at tau reproduces the full loss at tau exactly when k = V.
    sparse, _ = call(
        name, student, SparseTeacher.from_logits(teacher, k=V, temperature=tau), mask, temperature=tau
    )
    torch.testing.assert_close(sparse, hot, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", LOSSES)
def test_sparse_teacher_at_another_temperature_is_refused(name):
    student, teacher, mask = batch(0)
    with pytest.raises(ReasonDistillError, match="cached at temperature 1.0"):
        call(name, student, SparseTeacher.from_logits(teacher, k=4), mask, temperature=2.0)


@pytest.mark.parametrize("name", LOSSES)
def test_low_precision_inputs_are_upcast(name):
    student, teacher, mask = batch(2)
    ref, _ = call(name, student.bfloat16().float(), teacher.bfloat16().float(), mask)
    low, _ = call(name, student.bfloat16(), teacher.bfloat16(), mask)
    assert low.dtype == torch.float32
    torch.testing.assert_close(low, ref)


@pytest.mark.parametrize("name", LOSSES)
def test_bad_shapes_fail_clearly(name):
    student, teacher, mask = batch(0)
    with pytest.raises(ReasonDistillError, match="check_vocab_compat"):
        call(name, student, teacher[..., :-1], mask)
    with pytest.raises(ReasonDistillError, match="mask"):
        call(name, student, teacher, mask[:, :-1])
    sp = SparseTeacher.from_logits(torch.randn(B, T, V + 5), k=V + 5)
    with pytest.raises(ReasonDistillError, match="vocabulary"):
        call(name, student, sp, mask)


# ---- individual losses -----------------------------------------------------------------------


def reference(name, student, teacher, mask, beta=0.5):
    """Textbook formulas in float64 over the masked tokens."""
    p = torch.softmax(teacher[mask].double(), -1)
    q = torch.softmax(student[mask].double(), -1)
    kl = lambda a, b: (a * (a / b).log()).sum()  # noqa: E731
    if name == "forward_kl":
        return kl(p, q)
    if name == "reverse_kl":
        return kl(q, p)
    if name == "tv":
        return 0.5 * (p - q).abs().sum()
    assert name == "jsd"
    m = beta * p + (1 - beta) * q
    return beta * kl(p, m) + (1 - beta) * kl(q, m)


@pytest.mark.parametrize("name", ["forward_kl", "reverse_kl", "jsd", "tv"])
@pytest.mark.parametrize("seed", SEEDS)
def test_matches_textbook_formula(name, seed):
    student, teacher, mask = batch(seed)
    got, _ = call(name, student, teacher, mask)
    assert got.item() == pytest.approx(reference(name, student, teacher, mask).item(), rel=1e-5, abs=1e-5)


@pytest.mark.parametrize("seed", SEEDS)
def test_jsd_endpoints_and_limits(seed):
    student, teacher, mask = batch(seed, scale=1.0, dtype=torch.float64)  # float64: eps is tiny
    fwd, _ = call("forward_kl", student, teacher, mask)
    rev, _ = call("reverse_kl", student, teacher, mask)
    # TRL's convention: the endpoints are forward and reverse KL exactly ...
    torch.testing.assert_close(call("jsd", student, teacher, mask, beta=0.0)[0], fwd)
    torch.testing.assert_close(call("jsd", student, teacher, mask, beta=1.0)[0], rev)
    # ... while the formula itself tends to 0 like beta * KL(p||q) and (1 - beta) * KL(q||p).
    eps = 1e-6
    near0 = call("jsd", student, teacher, mask, beta=eps)[0] / eps
    near1 = call("jsd", student, teacher, mask, beta=1 - eps)[0] / eps
    torch.testing.assert_close(near0, fwd, rtol=1e-4, atol=0)
    torch.testing.assert_close(near1, rev, rtol=1e-4, atol=0)


def test_jsd_matches_trl_generalized_jsd():
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    gkd = pytest.importorskip("trl.experimental.gkd.gkd_trainer")
    student, teacher, mask = batch(3)
    labels = torch.where(mask, 1, -100)
    for beta in (0.0, 0.1, 0.5, 0.9, 1.0):
        for tau in (1.0, 2.0):
            trl = gkd.GKDTrainer.generalized_jsd_loss(
                student, teacher, labels=labels, beta=beta, temperature=tau, reduction="sum"
            )
            ours, _ = call("jsd", student, teacher, mask, beta=beta, temperature=tau)
            # TRL softens but does not rescale by tau^2 (ours does, after Hinton).
            torch.testing.assert_close(ours, trl * tau**2, rtol=1e-5, atol=1e-5)


# ---- config and the CE mix -------------------------------------------------------------------


def test_config_validates_name_and_options():
    assert KDLossConfig().kind == "forward_kl" and KDLossConfig().alpha == 0.0
    with pytest.raises(ValidationError, match="allowed: forward_kl, jsd, reverse_kl, tv"):
        KDLossConfig(kind="kl")
    with pytest.raises(ValidationError, match="beta does not apply to kd loss 'forward_kl'"):
        KDLossConfig(kind="forward_kl", beta=0.3)
    with pytest.raises(ValidationError):
        KDLossConfig(temperature=0)
    with pytest.raises(ValidationError):
        KDLossConfig(kind="jsd", bogus=1)
    assert KDLossConfig(kind="jsd", beta=0.2).options() == {"beta": 0.2}
    assert KDLossConfig(kind="tv").options() == {}


def labelled_batch(seed):
    student, teacher, _ = batch(seed)
    g = torch.Generator().manual_seed(seed + 100)
    labels = torch.randint(0, V, (B, T), generator=g)
    labels[:, :2] = -100  # prompt
    labels[1, 4:] = -100  # right padding
    labels[2] = -100  # a row with nothing to learn
    return student, teacher, labels


@pytest.mark.parametrize("seed", SEEDS)
def test_next_token_mask_shifts_labels(seed):
    _, _, labels = labelled_batch(seed)
    mask = next_token_mask(labels)
    assert mask.shape == labels.shape and not mask[:, -1].any()
    assert torch.equal(mask[:, :-1], labels[:, 1:] != -100)


@pytest.mark.parametrize("seed", SEEDS)
def test_alpha_one_is_plain_cross_entropy(seed):
    student, _, labels = labelled_batch(seed)
    total, n = kd_objective(student, labels, None, KDLossConfig(alpha=1.0))
    torch.testing.assert_close(total, nll_sum(student, labels))
    shifted = F.cross_entropy(student[:, :-1].reshape(-1, V), labels[:, 1:].reshape(-1), reduction="sum")
    torch.testing.assert_close(total, shifted)
    assert n == int((labels[:, 1:] != -100).sum())


def test_alpha_one_matches_hf_model_loss():
    """The shift convention is the HF one: same number as a causal LM's own loss."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=V, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2
    )
    model = LlamaForCausalLM(cfg).eval()
    ids = torch.randint(0, V, (2, 7))
    labels = ids.clone()
    labels[:, :3] = -100
    out = model(input_ids=ids, labels=labels)
    total, n = kd_objective(out.logits, labels, None, KDLossConfig(alpha=1.0))
    torch.testing.assert_close(mean(total, n), out.loss)


@pytest.mark.parametrize("name", ["forward_kl", "jsd"])
def test_kd_objective_mixes_linearly(name):
    student, teacher, labels = labelled_batch(1)
    mask = next_token_mask(labels)
    kd, n_kd = call(name, student, teacher, mask, temperature=2.0)
    ce = nll_sum(student, labels)
    for alpha in (0.0, 0.3):
        cfg = KDLossConfig(kind=name, alpha=alpha, temperature=2.0)
        total, n = kd_objective(student, labels, teacher, cfg)
        assert n == n_kd
        torch.testing.assert_close(total, alpha * ce + (1 - alpha) * kd)
    with pytest.raises(ValueError, match="needs a teacher"):
        kd_objective(student, labels, None, KDLossConfig())


def test_kd_objective_all_ignored_is_zero():
    student, teacher, _ = batch(0)
    labels = torch.full((B, T), -100)
    s = student.clone().requires_grad_()
    total, n = kd_objective(s, labels, teacher, KDLossConfig(alpha=0.5))
    total.backward()
    assert n == 0 and total.item() == 0.0 and not math.isnan(s.grad.sum().item())
