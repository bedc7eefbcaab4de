"""train/: batching, loss masking and normalisation, accumulation invariance, LoRA, resume."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from reasondistill.errors import ReasonDistillError
from reasondistill.models.lora import LoraSpec, apply_lora
from reasondistill.models.tiny import TinyModelSpec, build_tiny_model
from reasondistill.models.tokenize import encode_completion, encode_prompt
from reasondistill.models.tokenizer import train_tokenizer
from reasondistill.train import loop
from reasondistill.train.batching import BatchPlan, collate, encode_rows, micro_batches
from reasondistill.train.checkpoint import find_checkpoint
from reasondistill.train.config import TrainConfig
from reasondistill.train.loss import nll_sum
from reasondistill.train.trainer import train_model

SPEC = TinyModelSpec(hidden_size=32, num_layers=2, num_heads=4)


def make_rows(n: int, seed: int = 0) -> list[dict]:
    """Addition traces with 2..8 terms: lengths vary ~4x, as in real reasoning data."""
    rows = []
    for i in range(n):
        r = random.Random(seed * 100_000 + i)
        xs = [r.randint(1, 99) for _ in range(r.randint(2, 8))]
        total, steps = xs[0], []
        for x in xs[1:]:
            steps.append(f"{total}+{x}={total + x}")
            total += x
        rows.append(
            {
                "prompt": f"Question: {'+'.join(map(str, xs))}?\n",
                "completion": "\n".join(steps) + f"\nAnswer: {total}",
            }
        )
    return rows


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)  # see test_models.py: OpenMP stalls on a shared machine
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def tok():
    return train_tokenizer([r["prompt"] + r["completion"] for r in make_rows(200)], vocab_size=128)


def cfg(**kw) -> TrainConfig:
    base = dict(
        per_device_batch_size=8,
        max_steps=3,
        lr=3e-3,
        warmup_steps=0,
        save_every=0,
        seed=0,
        progress_bar=False,
    )
    return TrainConfig(**{**base, **kw})


def saved_weights(out_dir) -> dict[str, torch.Tensor]:
    return AutoModelForCausalLM.from_pretrained(out_dir / "model").state_dict()


def assert_same_weights(a: dict, b: dict, atol=1e-6, rtol=1e-5) -> None:
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=atol, rtol=rtol, msg=k)


def test_collate_masks_prompt_and_padding(tok):
    rows = [
        {"prompt": "Question: 1+2?\n", "completion": "Answer: 3"},
        {"prompt": "Q: 7?\n", "completion": "7"},
    ]
    enc = encode_rows(tok, rows, max_length=64)
    b = collate(enc, tok.pad_token_id)
    for i, row in enumerate(rows):
        p, c = encode_prompt(tok, row["prompt"]), encode_completion(tok, row["completion"])
        n = len(p) + len(c)
        assert b["input_ids"][i, :n].tolist() == p + c
        assert b["labels"][i, : len(p)].eq(-100).all() and b["labels"][i, len(p) : n].tolist() == c
        assert b["labels"][i, n:].eq(-100).all() and b["input_ids"][i, n:].eq(tok.pad_token_id).all()
        assert b["attention_mask"][i].sum() == n
    short = encode_rows(tok, rows[:1], max_length=5)[0]  # truncation keeps the start
    assert len(short.ids) == 5 and short.n_prompt == 5 and short.n_completion == 0


def test_nll_sum_is_completion_only_and_zero_when_all_masked():
    logits = torch.randn(2, 5, 11)
    labels = torch.tensor([[-100, -100, 3, 4, -100], [-100, 1, 2, 3, 4]])
    logp = logits.log_softmax(-1)
    # position t's label is predicted by the logits at t-1
    manual = -sum(logp[b, t - 1, labels[b, t]] for b in range(2) for t in range(1, 5) if labels[b, t] >= 0)
    torch.testing.assert_close(nll_sum(logits, labels), manual)
    assert nll_sum(logits, torch.full((2, 5), -100)).item() == 0.0


def test_batch_plan_is_deterministic_covers_the_epoch_and_groups_lengths():
    lengths = np.random.default_rng(0).integers(10, 300, size=203)
    plan = BatchPlan(lengths, global_batch=16, seed=1, group_by_length=True, mega_batch=4)
    batches = plan.epoch_batches(0)
    assert batches.shape == (13, 16)
    assert set(batches.ravel()) == set(range(203))  # every row; 5 wrapped repeats fill the last batch
    assert np.array_equal(batches, BatchPlan(lengths, 16, 1, True, 4).epoch_batches(0))
    assert not np.array_equal(batches, plan.epoch_batches(1))
    grouped = sum(lengths[b].max() * len(b) for b in batches)
    plain = sum(lengths[b].max() * len(b) for b in BatchPlan(lengths, 16, 1, False, 4).epoch_batches(0))
    assert grouped < 0.8 * plain  # length grouping removes most padding
    assert np.array_equal(plan.rows(13 + 2), plan.epoch_batches(1)[2])


def test_micro_batches_partition_the_global_batch():
    rows = np.arange(16)
    parts = [m for rank in range(2) for m in micro_batches(rows, world=2, rank=rank, grad_accum=2)]
    assert sorted(np.concatenate(parts).tolist()) == list(range(16))
    assert all(len(m) == 4 for m in parts)


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
def test_right_padding_needs_no_attention_mask(tok, arch):
    model = build_tiny_model(SPEC.model_copy(update={"arch": arch}), tok, seed=0)
    b = collate(encode_rows(tok, make_rows(6), 128), tok.pad_token_id)
    with torch.no_grad():
        masked = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits
        unmasked = model(input_ids=b["input_ids"]).logits
    real = b["attention_mask"].bool()
    torch.testing.assert_close(unmasked[real], masked[real], atol=1e-5, rtol=1e-4)


def test_grad_accum_invariance(tok, tmp_path):
    """8 rows in 1 micro-batch, 2 x 4 and 4 x 2 accumulated: the same weights and gradient norm."""
    rows, states = make_rows(64), {}
    for per_device, accum in [(8, 1), (4, 2), (2, 4)]:
        c = cfg(per_device_batch_size=per_device, grad_accum=accum)
        model = build_tiny_model(SPEC, tok, seed=0)
        states[accum] = train_model(model, tok, rows, c, tmp_path / str(accum))
    a = saved_weights(tmp_path / "1")
    for accum in (2, 4):
        assert_same_weights(a, saved_weights(tmp_path / str(accum)), atol=1e-5, rtol=1e-4)
        # AdamW is blind to a uniform gradient scale; the norm is not
        assert states[accum]["final_grad_norm"] == pytest.approx(states[1]["final_grad_norm"], rel=1e-5)
        assert states[accum]["final_loss"] == pytest.approx(states[1]["final_loss"], rel=1e-6)
    init = build_tiny_model(SPEC, tok, seed=0).state_dict()
    assert not torch.allclose(a["model.embed_tokens.weight"], init["model.embed_tokens.weight"])


def test_outputs_and_learning(tok, tmp_path):
    rows = make_rows(64)
    s = train_model(
        build_tiny_model(SPEC, tok, seed=0),
        tok,
        rows,
        cfg(max_steps=40, save_every=10, log_every=5),
        tmp_path,
    )
    state = json.loads((tmp_path / "train_state.json").read_text())
    assert (
        state == s and s["steps"] == 40 and s["world_size"] == 1 and s["tokens"] > 0 and s["tokens_per_s"] > 0
    )
    assert s["final_loss"] < 3.5  # from ~ln(128) = 4.85 at init: it learns
    assert list((tmp_path / "logs").glob("events.out.tfevents.*"))
    assert not (tmp_path / "checkpoint").exists()  # removed once the final model is saved
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "model")
    loaded_tok = AutoTokenizer.from_pretrained(tmp_path / "model")
    assert model.config.vocab_size == len(loaded_tok)
    again = train_model(build_tiny_model(SPEC, tok, seed=0), tok, rows, cfg(max_steps=40), tmp_path)
    assert again == s  # a finished run is not redone


class Killed(Exception):
    pass


@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora-dropout"])
def test_resume_after_kill_matches_uninterrupted_run(tok, tmp_path, monkeypatch, lora):
    """Kill right after the step-5 checkpoint, resume in a fresh call: same final weights.
    LoRA dropout makes the result depend on the restored RNG state too."""
    rows = make_rows(48)
    c = cfg(max_steps=10, save_every=5, warmup_steps=2, schedule="cosine")

    def fresh():
        m = build_tiny_model(SPEC, tok, seed=0)
        return apply_lora(m, LoraSpec(r=4, alpha=8, dropout=0.2), seed=0) if lora else m

    train_model(fresh(), tok, rows, c, tmp_path / "once")
    real_save = loop.save_checkpoint

    def save_then_die(accelerator, out_dir, progress):
        real_save(accelerator, out_dir, progress)
        raise Killed

    monkeypatch.setattr(loop, "save_checkpoint", save_then_die)
    with pytest.raises(Killed):
        train_model(fresh(), tok, rows, c, tmp_path / "twice")
    monkeypatch.undo()
    assert find_checkpoint(tmp_path / "twice") == tmp_path / "twice" / "checkpoint"
    assert not (tmp_path / "twice" / "model").exists()
    s = train_model(fresh(), tok, rows, c, tmp_path / "twice")
    assert s["resumed_from"] == 5 and s["steps"] == 10
    assert_same_weights(saved_weights(tmp_path / "once"), saved_weights(tmp_path / "twice"))
    once = json.loads((tmp_path / "once" / "train_state.json").read_text())
    assert s["tokens"] == once["tokens"] and s["final_loss"] == pytest.approx(once["final_loss"], rel=1e-5)
    # No logged point is lost: the one logged at the checkpoint step (5) survives the resume.
    # (Sorted: two event files written in the same second by one process can be read in either order.)
    assert sorted(tb_steps(tmp_path / "twice" / "logs")) == tb_steps(tmp_path / "once" / "logs") == [5, 10]


def tb_steps(logdir, tag: str = "train/loss") -> list[int]:
    """The steps TensorBoard shows for `tag` (purged events applied, as TensorBoard does)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(logdir))
    acc.Reload()
    return [e.step for e in acc.Scalars(tag)]


def test_lora_trains_and_merged_model_loads_with_plain_transformers(tok, tmp_path):
    base = build_tiny_model(SPEC, tok, seed=0)
    init = {k: v.clone() for k, v in base.state_dict().items()}
    model = apply_lora(base, LoraSpec(r=4, alpha=8), seed=0)
    s = train_model(model, tok, make_rows(32), cfg(max_steps=5, lr=1e-2), tmp_path)
    assert 0 < s["trainable_params"] < s["params"]
    assert (tmp_path / "adapter" / "adapter_config.json").exists()
    merged = saved_weights(tmp_path)
    assert not any("lora" in k for k in merged)
    changed = [k for k in init if not torch.allclose(init[k], merged[k])]
    assert any("q_proj" in k for k in changed) and "model.embed_tokens.weight" not in changed


def test_checkpoint_swap_leftovers(tmp_path):
    (tmp_path / "checkpoint.tmp").mkdir()  # a half-written save: never resumed from
    (tmp_path / "checkpoint.tmp" / "progress.json").write_text("{}")
    assert find_checkpoint(tmp_path) is None
    (tmp_path / "checkpoint.old").mkdir()  # killed between the two renames: the old one is whole
    (tmp_path / "checkpoint.old" / "progress.json").write_text("{}")
    assert find_checkpoint(tmp_path) == tmp_path / "checkpoint.old"


def test_bad_rows_fail_clearly(tok, tmp_path):
    with pytest.raises(ReasonDistillError, match="row 1 needs string 'prompt' and 'completion'"):
        train_model(
            build_tiny_model(SPEC, tok),
            tok,
            [{"prompt": "a", "completion": "b"}, {"prompt": "a"}],
            cfg(),
            tmp_path,
        )


def test_launch_mismatch_fails_instead_of_training_twice(tok, tmp_path, monkeypatch):
    # e.g. torchrun on a CPU-only machine without ACCELERATE_USE_CPU: every process would be rank 0
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ReasonDistillError, match="launched as 2 processes but accelerate set up 1"):
        train_model(build_tiny_model(SPEC, tok), tok, make_rows(8), cfg(), tmp_path)


def test_gradient_checkpointing_gives_the_same_weights(tok, tmp_path):
    rows = make_rows(32)
    for flag in (False, True):
        model = build_tiny_model(SPEC, tok, seed=0)
        train_model(model, tok, rows, cfg(gradient_checkpointing=flag), tmp_path / str(flag))
    assert_same_weights(
        saved_weights(tmp_path / "False"), saved_weights(tmp_path / "True"), atol=1e-5, rtol=1e-4
    )
