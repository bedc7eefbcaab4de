"""The data stage: disjoint splits, counts, task.json round trip, fail-fast validation."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from reasondistill.errors import ReasonDistillError
from reasondistill.stages import STAGES, StageContext
from reasondistill.stages.data import DataStage
from reasondistill.tasks import load_examples, load_task

GSM8K = str(Path(__file__).resolve().parents[1] / "fixtures" / "gsm8k_sample.jsonl")


def run_data(tmp_path: Path, **cfg) -> tuple[dict, Path]:
    config = DataStage.Config.model_validate({"kind": "data", **cfg})
    out = tmp_path / "data"
    out.mkdir()
    ctx = StageContext(name="data", cfg=config, out_dir=out, coords={}, dirs={})
    return DataStage().run(ctx), out


ARITH = {
    "task": "arithmetic",
    "config": {"digits": 2, "terms": 3},
    "splits": {"test_id": {"n": 40}, "test_ood": {"n": 30, "config": {"terms": 4}}, "train": {"n": 300}},
}


def test_registered():
    assert STAGES.get("data") is DataStage


def test_arithmetic_splits(tmp_path):
    summary, out = run_data(tmp_path, **ARITH, seed=7)
    assert summary == {"test_id": 40, "test_ood": 30, "train": 300}
    assert sorted(p.name for p in out.iterdir()) == [
        "task.json",
        "test_id.jsonl",
        "test_ood.jsonl",
        "train.jsonl",
    ]
    splits = {s: load_examples(out, s) for s in summary}
    questions = [e.question for rows in splits.values() for e in rows]
    assert len(questions) == len(set(questions)) == 370  # disjoint across and within splits
    assert all(e.split == s for s, rows in splits.items() for e in rows)
    assert all(e.question.count("+") == 3 for e in splits["test_ood"])
    assert all(e.question.count("+") == 2 for e in splits["train"])
    assert load_examples(out, "train", limit=5) == splits["train"][:5]
    with pytest.raises(ReasonDistillError, match="available: test_id, test_ood, train"):
        load_examples(out, "dev")


def test_task_json_round_trip(tmp_path):
    _, out = run_data(tmp_path, **ARITH)
    spec = json.loads((out / "task.json").read_text())
    assert spec["name"] == "arithmetic" and spec["config"] == {"digits": 2, "terms": 3}
    assert spec["splits"]["test_ood"]["config"] == {"digits": 2, "terms": 4}
    task = load_task(out)
    assert task.config.terms == 3 and load_task(out, "test_ood").config.terms == 4
    for ex in load_examples(out, "test_ood"):
        assert task.verify(ex, ex.answer) and not task.verify(ex, ex.answer + "1")
    with pytest.raises(ReasonDistillError, match="no split 'dev'"):
        load_task(out, "dev")


def test_deterministic(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    _, out_a = run_data(tmp_path / "a", **ARITH, seed=3)
    _, out_b = run_data(tmp_path / "b", **ARITH, seed=3)
    _, out_c = run_data(tmp_path, **ARITH, seed=4)
    read = lambda d: (d / "train.jsonl").read_text()  # noqa: E731
    assert read(out_a) == read(out_b) != read(out_c)


def test_small_question_space_fails_and_writes_nothing(tmp_path):
    # 1-digit 2-term sums: exactly 100 questions.
    cfg = {"task": "arithmetic", "config": {"digits": 1, "terms": 2}}
    summary, _ = run_data(tmp_path, **cfg, splits={"a": {"n": 60}, "b": {"n": 40}})
    assert summary == {"a": 60, "b": 40}
    (tmp_path / "x").mkdir()
    with pytest.raises(ReasonDistillError, match=r"data split 'c': only 0 of n=1 unique questions"):
        run_data(tmp_path / "x", **cfg, splits={"a": {"n": 60}, "b": {"n": 40}, "c": {"n": 1}})
    assert list((tmp_path / "x" / "data").iterdir()) == []


def test_jsonl_splits_take_first_unused_rows(tmp_path):
    summary, out = run_data(
        tmp_path,
        task="jsonl",
        config={"path": GSM8K, "answer_format": "gsm8k"},
        splits={"test": {"n": 3}, "train": {}},
    )
    assert summary == {"test": 3, "train": 7}
    assert [e.metadata["index"] for e in load_examples(out, "test")] == [0, 1, 2]
    assert [e.metadata["index"] for e in load_examples(out, "train")] == list(range(3, 10))
    (tmp_path / "x").mkdir()
    with pytest.raises(ReasonDistillError, match="data split 'more': only 0 of n=1 unique questions"):
        run_data(tmp_path / "x", task="jsonl", config={"path": GSM8K}, splits={"all": {}, "more": {"n": 1}})


def test_reasoning_gym_split_overrides_merge_deeply(tmp_path):
    cfg = {"dataset": "chain_sum", "config": {"min_terms": 2, "max_terms": 2}}
    splits = {"test": {"n": 5, "config": {"config": {"max_terms": 3}}}, "train": {"n": 20}}
    summary, out = run_data(tmp_path, task="reasoning_gym", config=cfg, splits=splits)
    assert summary == {"test": 5, "train": 20}
    test = load_examples(out, "test")
    assert test[0].metadata["difficulty"] == {"min_terms": 2, "max_terms": 3}
    task = load_task(out, "test")
    assert all(task.verify(e, e.answer) for e in test)


@pytest.mark.parametrize(
    "cfg,message",
    [
        (
            {"task": "arith"},
            "unknown task 'arith'; allowed: acre, arc_1d, arithmetic, bbh, cot_collection, jsonl, list_functions, mini_scan, multiplication, reasoning_gym",
        ),
        (
            {"config": {"digits": 0}},
            "task arithmetic: config.digits: Input should be greater than or equal to 1",
        ),
        ({"config": {"digitz": 2}}, "task arithmetic: config.digitz: unknown key; did you mean `digits`? allowed: digits, ops, terms"),
        (
            {"splits": {"a": {"n": 5}, "b": {"n": 5, "config": {"terms": 1}}}},
            "task arithmetic: splits.b.config.terms: Input should be greater than or equal to 2",
        ),
        ({"splits": {"a": {}}}, "splits.a.n: required for procedural task 'arithmetic'"),
        ({"splits": {"a": {"n": 0}}}, "Input should be greater than or equal to 1"),
        ({"splits": {"a/b": {"n": 1}}}, "split name 'a/b'"),
        (
            {"task": "reasoning_gym", "config": {"dataset": "nope"}},
            "config.dataset: unknown reasoning_gym dataset 'nope'",
        ),
    ],
)
def test_bad_config_fails_at_validation(cfg, message):
    full = {"kind": "data", "task": "arithmetic", "splits": {"a": {"n": 5}}, **cfg}
    with pytest.raises(ValidationError, match=re.escape(message)):
        DataStage.Config.model_validate(full)


def test_bad_jsonl_row_fails_at_validation(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text('{"question": "a", "answer": "1"}\n{"question": "b"}\n')
    cfg = {"kind": "data", "task": "jsonl", "config": {"path": str(path)}, "splits": {"all": {}}}
    with pytest.raises(ValidationError, match=re.escape(f"{path}, line 2: missing field 'answer'")):
        DataStage.Config.model_validate(cfg)
