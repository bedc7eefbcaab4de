"""Training objectives (train/objectives/): one contract test over every OBJECTIVES entry,
gradient-accumulation invariance through the objective interface, and preference pairs
(encoding, layout, never split across micro-batches)."""

from __future__ import annotations

import random
from typing import Literal

import numpy as np
import pytest
import torch

from reasondistill.config import StageContext, StrictModel
from reasondistill.models.tiny import TinyModelSpec, build_tiny_model
from reasondistill.models.tokenizer import train_tokenizer
from reasondistill.stages.train import TrainStageConfig
from reasondistill.train import loop
from reasondistill.train.batching import (
    BatchPlan,
    EncodedPair,
    EncodedRow,
    collate,
    encode_pairs,
    encode_rows,
    micro_batches,
)
from reasondistill.train.config import TrainConfig
from reasondistill.train.mix import SourceRows, TrainRows
from reasondistill.train.objectives import OBJECTIVES, Objective
from tests.unit.helpers_tiny import single_thread

STUDENT = TinyModelSpec(hidden_size=32, num_layers=2, num_heads=4)
TEACHER = TinyModelSpec(hidden_size=48, num_layers=2, num_heads=4)
MAX_LENGTH = 64


class PairLogistic(Objective):
    """A toy preference objective (reference-free pairwise logistic loss), for the pair contract."""

    class Config(StrictModel):
        kind: Literal["pair_logistic"] = "pair_logistic"

    rows = "preference"

    @classmethod
    def build(cls, cfg, ctx, model, tokenizer, rows):
        return cls()

    def __call__(self, logits, batch, idx):
        """Sum over pairs of -log sigmoid(log p(chosen) - log p(rejected)); rows 2i / 2i + 1."""
        targets = torch.nn.functional.pad(batch["labels"], (0, 1), value=-100)[:, 1:]
        mask = targets != -100
        logp = logits.float().log_softmax(-1).gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)
        seq, n = (logp * mask).sum(-1), mask.sum(-1)
        valid = (n[0::2] > 0) & (n[1::2] > 0)  # a pair with an empty side has no preference to learn
        return (-torch.nn.functional.logsigmoid(seq[0::2] - seq[1::2]) * valid).sum()


@pytest.fixture(autouse=True)
def _one_thread():
    with single_thread():
        yield


def make_rows(n: int) -> list[dict]:
    """Addition traces of 2..8 terms (lengths vary ~4x), each with a wrong-answer twin."""
    rows = []
    for i in range(n):
        r = random.Random(i)
        xs = [r.randint(1, 99) for _ in range(r.randint(2, 8))]
        steps = "\n".join(f"{sum(xs[:k])}+{xs[k]}={sum(xs[: k + 1])}" for k in range(1, len(xs)))
        good, bad = f"{steps}\nAnswer: {sum(xs)}", f"Answer: {sum(xs) + r.randint(1, 9)}"
        rows.append({"prompt": f"Question: {'+'.join(map(str, xs))}?\n", "completion": good,
                     "chosen": good, "rejected": bad})  # fmt: skip
    return rows


def completion(rows):
    return [{"prompt": r["prompt"], "completion": r["completion"]} for r in rows]


def preference(rows):
    return [{"prompt": r["prompt"], "chosen": r["chosen"], "rejected": r["rejected"]} for r in rows]


@pytest.fixture(scope="module")
def tok():
    return train_tokenizer([r["prompt"] + r["completion"] for r in make_rows(200)], vocab_size=128)


@pytest.fixture(scope="module")
def teacher_dir(tok, tmp_path_factory):
    d = tmp_path_factory.mktemp("teacher")
    build_tiny_model(TEACHER, tok, seed=3).save_pretrained(str(d / "model"))
    tok.save_pretrained(str(d / "model"))
    return d


# One recipe config per registered objective: adding an objective means adding its example here.
EXAMPLES = {
    "nll": {"kind": "nll"},
    "kd": {
        "kind": "kd",
        "teacher": {"model": {"stage": "teacher"}},
        "loss": {"kind": "jsd", "beta": 0.3, "alpha": 0.2},
    },
    "dpo": {"kind": "dpo", "beta": 0.5},
    "orpo": {"kind": "orpo", "lam": 0.2},
}


def built(unit, config: dict, tok, teacher_dir, rows, tmp_path) -> Objective:
    stage = TrainStageConfig.model_validate({"kind": "train", "rows": "rows", "model": {"path": "org/unused"},
                                             "train": {"max_length": MAX_LENGTH}})  # fmt: skip
    ctx = StageContext("student", stage, tmp_path, {}, {"teacher": teacher_dir})
    data = TrainRows(rows, [(0, i) for i in range(len(rows))], (SourceRows("rows", 1.0, len(rows), len(rows)),),
                     unit.rows)  # fmt: skip
    return unit.build(
        unit.Config.model_validate(config), ctx, build_tiny_model(STUDENT, tok, seed=0), tok, data
    )


def encode(kind: str, tok, rows):
    return (encode_pairs if kind == "preference" else encode_rows)(tok, rows, MAX_LENGTH)


def masked(items):
    """The same items with every position in the prompt: no token gets a loss."""
    row = lambda r: EncodedRow(r.ids, len(r.ids))  # noqa: E731
    return [
        EncodedPair(row(i.chosen), row(i.rejected)) if isinstance(i, EncodedPair) else row(i) for i in items
    ]


CASES = [(name, OBJECTIVES.get(name), EXAMPLES.get(name)) for name in OBJECTIVES.names()]
CASES.append(("pair_logistic (toy)", PairLogistic, {"kind": "pair_logistic"}))


def test_every_objective_has_a_contract_example():
    assert set(EXAMPLES) == set(OBJECTIVES.names())
    assert {"nll", "kd"} <= set(OBJECTIVES.names())


@pytest.mark.parametrize(("name", "unit", "config"), CASES, ids=[c[0] for c in CASES])
def test_objective_contract(name, unit, config, tok, teacher_dir, tmp_path):
    if name in OBJECTIVES:
        entry = OBJECTIVES.entry(name)
        assert entry.description and "\n" not in entry.description
        assert unit.Config.model_fields["kind"].annotation.__args__ == (name,)
    assert unit.rows in ("completion", "preference")
    raw = completion(make_rows(6)) if unit.rows == "completion" else preference(make_rows(6))
    objective = built(unit, config, tok, teacher_dir, raw, tmp_path)
    assert isinstance(objective, Objective) and objective.rows == unit.rows
    items = encode(unit.rows, tok, raw)
    n = objective.count(items)
    assert n > 0 and n == objective.count(items[:3]) + objective.count(items[3:])  # a pure, additive count
    if unit.rows == "preference":
        assert n == len(items)  # pairs
    model = build_tiny_model(STUDENT, tok, seed=0)
    idx = np.arange(len(items))

    def loss_of(part):
        batch = collate([items[i] for i in part] if part is not None else masked(items), tok.pad_token_id)
        return objective(model(input_ids=batch["input_ids"]).logits, batch, idx if part is None else part)

    # One `count` per global batch, then its micro-batches, as the loop does (ORPO's normaliser
    # covers the items of the batch counted last, each once).
    objective.count(items)
    total = loss_of(idx)
    assert total.dim() == 0 and total.dtype == torch.float32 and torch.isfinite(total) and total > 0
    # a SUM over items, so the loop's global normalisation holds (a mean would not add up)
    objective.count(items)
    torch.testing.assert_close(total, loss_of(idx[:2]) + loss_of(idx[2:]), rtol=1e-4, atol=1e-4)
    zero = loss_of(None)  # all-masked: exactly 0, not NaN, with a finite (zero) gradient
    assert zero.item() == 0.0
    zero.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    if unit.rows == "completion":
        assert objective.count(masked(items)) == 0


def gradient(objective, tok, items, per_device: int, accum: int) -> dict[str, torch.Tensor]:
    """Gradient of one optimizer step on `items` (one global batch) through the training loop."""
    from accelerate import Accelerator

    accelerator = Accelerator()
    model = build_tiny_model(STUDENT, tok, seed=0).to(accelerator.device)
    cfg = TrainConfig(per_device_batch_size=per_device, grad_accum=accum, max_length=MAX_LENGTH)
    batch = np.arange(len(items))
    loop._accumulate_gradients(accelerator, model, items, batch, objective.count(items), tok.pad_token_id, cfg,
                               objective)  # fmt: skip
    return {k: p.grad.clone() for k, p in model.named_parameters()}


@pytest.mark.parametrize(("name", "unit", "config"), CASES, ids=[c[0] for c in CASES])
def test_grad_accumulation_invariance(name, unit, config, tok, teacher_dir, tmp_path):
    """1 x 8 and 2 x 4 (and 4 x 2) items per step give the same gradient, for every objective."""
    raw = make_rows(8)
    raw = completion(raw) if unit.rows == "completion" else preference(raw)
    objective = built(unit, config, tok, teacher_dir, raw, tmp_path)
    items = encode(unit.rows, tok, raw)
    whole = gradient(objective, tok, items, 8, 1)
    assert any(g.abs().sum() > 0 for g in whole.values())
    for per_device, accum in ((4, 2), (2, 4)):
        split = gradient(objective, tok, items, per_device, accum)
        for k in whole:
            torch.testing.assert_close(split[k], whole[k], atol=1e-6, rtol=1e-4, msg=k)


# --- preference pairs ---------------------------------------------------------------------------


def test_encode_pairs_is_encode_rows_per_side(tok):
    rows = preference(make_rows(5))
    pairs = encode_pairs(tok, rows, MAX_LENGTH)
    for side in ("chosen", "rejected"):
        want = encode_rows(tok, [{"prompt": r["prompt"], "completion": r[side]} for r in rows], MAX_LENGTH)
        assert [getattr(p, side) for p in pairs] == want
    assert all(p.length == max(len(p.chosen.ids), len(p.rejected.ids)) for p in pairs)
    assert all(p.tokens == len(p.chosen.ids) + len(p.rejected.ids) for p in pairs)
    with pytest.raises(Exception, match="preference rows, rejected side: training row 1 needs string"):
        encode_pairs(tok, [rows[0], {**rows[1], "rejected": None}], MAX_LENGTH)


def test_pairs_are_adjacent_and_never_split(tok):
    pairs = encode_pairs(tok, preference(make_rows(40)), MAX_LENGTH)
    plan = BatchPlan([p.length for p in pairs], 8, seed=0, group_by_length=True, mega_batch=2)
    seen = []
    for step in range(plan.steps_per_epoch):
        for rank in range(2):
            for idx in micro_batches(plan.rows(step), world=2, rank=rank, grad_accum=2):
                batch = collate([pairs[i] for i in idx], tok.pad_token_id)
                assert batch["input_ids"].shape[0] == 2 * len(idx)
                for j, i in enumerate(idx):  # rows 2j and 2j + 1: pair i's chosen and rejected side
                    for row, side in ((2 * j, pairs[i].chosen), (2 * j + 1, pairs[i].rejected)):
                        assert batch["input_ids"][row, : len(side.ids)].tolist() == side.ids
                        assert batch["attention_mask"][row].sum() == len(side.ids)
                seen.extend(idx.tolist())
    assert sorted(seen) == list(range(40))  # every pair once per epoch, whole
