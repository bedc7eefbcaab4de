"""DPO and ORPO (train/objectives/dpo.py, orpo.py) against TRL 1.16's own loss code on the same
batch: loss and every parameter's gradient within 1e-5; reference log-probs computed once and
cached; a reference with another vocabulary refused in `build`.

(The objective contract, accumulation invariance and pair layout are checked for every objective,
these two included, by tests/unit/test_objectives.py.)"""

from __future__ import annotations

import random
import tempfile

import numpy as np
import pytest
import torch

from reasondistill.config import StageContext
from reasondistill.errors import ReasonDistillError
from reasondistill.stages.train import TrainStageConfig
from reasondistill.train.batching import collate, encode_pairs
from reasondistill.train.mix import SourceRows, TrainRows
from reasondistill.train.objectives import OBJECTIVES, dpo
from tests.unit.helpers_tiny import single_thread, tiny_model, tiny_tokenizer

MAX_LENGTH = 96
TOL = {"atol": 1e-5, "rtol": 1e-5}


@pytest.fixture(autouse=True)
def _one_thread():
    with single_thread():
        yield


@pytest.fixture(scope="module")
def tok():
    return tiny_tokenizer()


def pair_rows(n: int, seed: int = 0) -> list[dict]:
    """Prompts and two different completions of varied lengths (both sides pad differently)."""
    r = random.Random(seed)
    word = lambda: "".join(r.choice("abcdefgh ") for _ in range(r.randint(1, 12)))  # noqa: E731
    return [
        {"prompt": f"Question: {word()}?\n", "chosen": f"Answer: {word()}x", "rejected": f"Answer: {word()}y"}
        for _ in range(n)
    ]


def context(tmp_path) -> StageContext:
    stage = TrainStageConfig.model_validate({"kind": "train", "rows": "rows", "model": {"path": "org/unused"},
                                             "train": {"max_length": MAX_LENGTH}})  # fmt: skip
    return StageContext("student", stage, tmp_path, {}, {})


def train_rows(rows) -> TrainRows:
    return TrainRows(rows, [(0, i) for i in range(len(rows))], (SourceRows("rows", 1.0, len(rows), len(rows)),), "preference")  # fmt: skip


def trl_batch(pairs, pad_id: int) -> dict[str, torch.Tensor]:
    """TRL's DPO layout of the same token ids: all chosen rows, then all rejected rows."""
    ours = collate(pairs, pad_id)
    order = list(range(0, 2 * len(pairs), 2)) + list(range(1, 2 * len(pairs), 2))
    batch = {k: v[order] for k, v in ours.items()}
    batch["completion_mask"] = (batch.pop("labels") != -100).long()
    return batch


def grads(model) -> dict[str, torch.Tensor]:
    out = {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    return out


def ours_loss(objective, model, pairs, counted: bool = True) -> torch.Tensor:
    """What the training loop backpropagates for one global batch of one micro-batch: `count`
    first (the loop's order); counted=False calls the objective alone (its own normaliser)."""
    batch = collate(pairs, 0)
    logits = model(input_ids=batch["input_ids"]).logits
    n = objective.count(pairs) if counted else len(pairs)
    return objective(logits, batch, np.arange(len(pairs))) / n


def assert_same_grads(a: dict, b: dict) -> None:
    assert a.keys() == b.keys() and a
    for k in a:
        torch.testing.assert_close(a[k], b[k], **TOL, msg=k)


def test_dpo_matches_trl_sigmoid_loss(tok, tmp_path):
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    rows = pair_rows(6)
    pairs = encode_pairs(tok, rows, MAX_LENGTH)
    # Reference = another model than the policy, so log-ratios are not all zero.
    reference = tiny_model(tok, seed=1)
    objective = OBJECTIVES.get("dpo").build(
        OBJECTIVES.config("dpo")(kind="dpo", beta=0.3), context(tmp_path), reference, tok, train_rows(rows)
    )
    policy = tiny_model(tok, seed=0).train()
    args = DPOConfig(output_dir=tempfile.mkdtemp(dir=tmp_path), use_cpu=True, bf16=False, report_to=[], beta=0.3,
                     precompute_ref_log_probs=True)  # fmt: skip
    trainer = DPOTrainer(
        model=policy, args=args, train_dataset=Dataset.from_list(rows[:2]), processing_class=tok
    )
    batch = trl_batch(pairs, tok.pad_token_id)
    # Our cached reference log-probs are what TRL's reference pass computes.
    with torch.no_grad():
        ref_c, ref_r = trainer.compute_ref_log_probs(reference_as_trl(trainer, reference), batch)
    torch.testing.assert_close(torch.tensor(objective.ref_chosen, dtype=torch.float32), ref_c, **TOL)
    torch.testing.assert_close(torch.tensor(objective.ref_rejected, dtype=torch.float32), ref_r, **TOL)

    batch.update(ref_chosen_logps=ref_c, ref_rejected_logps=ref_r)
    theirs = trainer._compute_loss(trainer.model, batch, return_outputs=False)
    theirs.backward()
    g_theirs = grads(policy)
    mine = ours_loss(objective, policy, pairs)
    mine.backward()
    torch.testing.assert_close(mine, theirs.float(), **TOL)
    assert_same_grads(grads(policy), g_theirs)


def reference_as_trl(trainer, reference):
    """TRL calls its models with `fused_lm_head=True`: give the reference the same forward."""
    from trl.trainer.utils import add_fused_lm_head

    add_fused_lm_head(reference)
    return reference


@pytest.mark.parametrize("lam", [0.1, 0.7])
def test_orpo_matches_trl(tok, lam, tmp_path):
    from datasets import Dataset
    from trl.experimental.orpo import ORPOConfig, ORPOTrainer

    rows = pair_rows(5, seed=3)
    pairs = encode_pairs(tok, rows, MAX_LENGTH)
    objective = OBJECTIVES.get("orpo").build(OBJECTIVES.config("orpo")(kind="orpo", lam=lam))
    policy = tiny_model(tok, seed=0).train()
    args = ORPOConfig(
        output_dir=tempfile.mkdtemp(dir=tmp_path), use_cpu=True, bf16=False, report_to=[], beta=lam
    )
    trainer = ORPOTrainer(
        model=policy, args=args, train_dataset=Dataset.from_list(rows[:2]), processing_class=tok
    )
    batch = orpo_batch(pairs, tok.pad_token_id)
    theirs, metrics = trainer.get_batch_loss_metrics(trainer.model, batch)
    theirs.backward()
    g_theirs = grads(policy)
    for counted in (True, False):  # the loop's path (count, then the call) and a call alone
        mine = ours_loss(objective, policy, pairs, counted)
        mine.backward()
        torch.testing.assert_close(mine, theirs.float(), **TOL)
        assert_same_grads(grads(policy), g_theirs)
    assert metrics["nll_loss"] > 0


def test_orpo_normaliser_of_a_counted_batch_is_not_reused(tok):
    """`count` sets the normaliser for its global batch only: once its items are computed, or for
    a batch bigger than it, a call normalises by its own micro-batch."""
    a = encode_pairs(tok, pair_rows(2, seed=1), MAX_LENGTH)
    b = encode_pairs(tok, pair_rows(3, seed=2), MAX_LENGTH)
    model = tiny_model(tok, seed=0)
    orpo = lambda: OBJECTIVES.get("orpo").build(OBJECTIVES.config("orpo")(kind="orpo"))  # noqa: E731

    def call(objective, pairs):
        batch = collate(pairs, 0)
        with torch.no_grad():
            return objective(model(input_ids=batch["input_ids"]).logits, batch, np.arange(len(pairs)))

    alone = call(orpo(), a)
    objective = orpo()
    objective.count(b)
    assert not torch.allclose(call(objective, a), alone)  # 2 of b's 3 items: b's normaliser
    torch.testing.assert_close(call(objective, a), alone)  # only 1 of b's items left: its own
    objective.count(b)
    call(objective, b)  # b is spent
    torch.testing.assert_close(call(objective, a), alone)
    objective.count(a)
    torch.testing.assert_close(call(objective, b), call(orpo(), b))  # b is not part of a's batch


def orpo_batch(pairs, pad_id: int) -> dict[str, torch.Tensor]:
    """TRL ORPO's collated batch of the same ids: per side input_ids / attention_mask / labels."""
    out = {}
    for side in ("chosen", "rejected"):
        ours = collate([getattr(p, side) for p in pairs], pad_id)
        out[f"{side}_input_ids"], out[f"{side}_attention_mask"] = ours["input_ids"], ours["attention_mask"]
        out[f"{side}_labels"] = ours["labels"]
    return out


def test_orpo_completion_only_nll_is_the_papers_sft_term(tok):
    """nll_prompt=false: the NLL covers completion tokens only (ORPO's L_SFT on the response)."""
    from reasondistill.train.loss import nll_sum

    pairs = encode_pairs(tok, pair_rows(4, seed=5), MAX_LENGTH)
    model = tiny_model(tok, seed=0)
    full = OBJECTIVES.get("orpo").build(OBJECTIVES.config("orpo")(kind="orpo", lam=0.0, nll_prompt=False))
    chosen = collate([p.chosen for p in pairs], 0)
    want = nll_sum(model(input_ids=chosen["input_ids"]).logits, chosen["labels"]) / sum(
        len(p.chosen.ids) - p.chosen.n_prompt for p in pairs
    )
    torch.testing.assert_close(ours_loss(full, model, pairs), want, **TOL)


def test_dpo_reference_logps_are_computed_once_and_cached(tok, tmp_path, monkeypatch):
    rows = pair_rows(4)
    cfg = OBJECTIVES.config("dpo")(kind="dpo")
    first = dpo.DPO.build(cfg, context(tmp_path), tiny_model(tok, seed=1), tok, train_rows(rows))
    assert (tmp_path / dpo.CACHE_FILE).is_file()

    def fail(*a, **k):
        raise AssertionError("recomputed")

    monkeypatch.setattr(dpo, "reference_logps", fail)
    again = dpo.DPO.build(
        cfg, context(tmp_path), tiny_model(tok, seed=1), tok, train_rows(rows)
    )  # a resumed run
    np.testing.assert_array_equal(first.ref_chosen, again.ref_chosen)
    with pytest.raises(AssertionError, match="recomputed"):  # other rows: another digest
        dpo.DPO.build(cfg, context(tmp_path), tiny_model(tok, seed=1), tok, train_rows(pair_rows(4, seed=9)))


def test_dpo_reference_with_another_vocabulary_is_refused(tok, tmp_path):
    from reasondistill.models.tokenizer import train_tokenizer

    other = train_tokenizer(["completely different text " * 20], vocab_size=110)
    ref_dir = tmp_path / "ref"
    tiny_model(other, seed=0).save_pretrained(str(ref_dir))
    other.save_pretrained(str(ref_dir))
    cfg = OBJECTIVES.config("dpo").model_validate({"kind": "dpo", "reference": {"path": str(ref_dir)}})
    with pytest.raises(
        ReasonDistillError,
        match=r"dpo: reference model .* does not fit the student \(model.path 'org/unused'\): DPO needs "
        r"the reference and the student .*reference vocabulary: \d+ tokens.*student vocabulary: \d+ tokens",
    ):
        dpo.DPO.build(cfg, context(tmp_path), tiny_model(tok, seed=0), tok, train_rows(pair_rows(2)))
    assert not (tmp_path / dpo.CACHE_FILE).exists()  # nothing written


def test_a_pair_whose_chosen_equals_rejected_is_refused_naming_file_and_row(tmp_path):
    import json

    from reasondistill.train.mix import RowSource, read_mix

    rows = pair_rows(3)
    rows[1]["rejected"] = rows[1]["chosen"]
    (tmp_path / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    ctx = StageContext("student", None, tmp_path / "out", {}, {"pairs": tmp_path})
    # (artifacts.read_preferences names the file and row; its message is pydantic's multi-line text)
    with pytest.raises(ReasonDistillError, match=r"(?s)rows.jsonl row 2: .*chosen equals rejected"):
        read_mix(ctx, [RowSource(stage="pairs")], "preference", "dpo", None, 0)
