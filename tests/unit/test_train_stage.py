"""The `tokenizer` and `train` stage kinds: config validation, runs on tiny inputs, rows mixes,
and the row-kind / reference checks that stop a bad recipe before anything is written."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
import torch
from pydantic import ValidationError
from transformers import AutoModelForCausalLM, AutoTokenizer

from reasondistill.errors import ReasonDistillError, RecipeError
from reasondistill.pipeline import plan
from reasondistill.recipe import Recipe
from reasondistill.records import Example, write_jsonl_atomic
from reasondistill.registry import Entry
from reasondistill.stages import STAGES, StageContext
from reasondistill.stages.tokenizer import TokenizerConfig, TokenizerStage
from reasondistill.stages.train import TrainStage, TrainStageConfig
from reasondistill.train.batching import BatchPlan
from reasondistill.train.mix import RowSource, mix_indices, read_mix
from reasondistill.train.objectives import OBJECTIVES
from tests.unit.test_objectives import PairLogistic

TINY = {"tiny": {"arch": "qwen2", "hidden_size": 32, "num_layers": 2, "num_heads": 4}, "tokenizer": "tok"}
TRAIN = {
    "max_steps": 4,
    "per_device_batch_size": 4,
    "warmup_steps": 0,
    "save_every": 2,
    "progress_bar": False,
}


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)  # see test_models.py
    yield
    torch.set_num_threads(n)


def examples(split: str, n: int) -> list[Example]:
    return [
        Example(
            id=f"{split}-{i}",
            task="add",
            question=f"What is {i}+{i + 1}?",
            answer=str(2 * i + 1),
            rationale=f"{i}+{i + 1}={2 * i + 1}",
            split=split,
            metadata={"index": i},
        )  # fmt: skip
        for i in range(n)
    ]


def completion_rows(n: int, tag: str = "") -> list[dict]:
    return [{"prompt": f"Question: {e.question}\n", "completion": f"Reasoning: {e.rationale}\nAnswer: {e.answer}",
             "example_id": f"{tag}{e.id}"} for e in examples("train", n)]  # fmt: skip


def preference_rows(n: int) -> list[dict]:
    return [{"prompt": f"Question: {e.question}\n", "chosen": f"Answer: {e.answer}", "rejected": f"Answer: {i}",
             "example_id": e.id} for i, e in enumerate(examples("train", n))]  # fmt: skip


@pytest.fixture
def dirs(tmp_path):
    d = {n: tmp_path / n for n in ("data", "tok", "rows", "prefs", "student", "student2", "a", "b", "c")}
    d["data"].mkdir()
    write_jsonl_atomic(d["data"] / "train.jsonl", examples("train", 20))
    write_jsonl_atomic(d["data"] / "test.jsonl", examples("test", 5))
    for name, rows in (("rows", completion_rows(20)), ("prefs", preference_rows(12)), ("a", completion_rows(6, "a")),
                       ("b", completion_rows(20, "b")), ("c", completion_rows(4, "c"))):  # fmt: skip
        d[name].mkdir()
        write_jsonl_atomic(d[name] / "rows.jsonl", rows)
    return d


def ctx(name: str, cfg, dirs) -> StageContext:
    dirs[name].mkdir(exist_ok=True)
    return StageContext(name, cfg, dirs[name], {}, dirs)


def train_cfg(**kw) -> TrainStageConfig:
    return TrainStageConfig.model_validate(
        {"kind": "train", "rows": "rows", "model": TINY, "train": TRAIN, "seed": 1, **kw}
    )


def test_registered():
    assert STAGES.get("train") is TrainStage and STAGES.get("tokenizer") is TokenizerStage
    assert TrainStage.distributed and not TokenizerStage.distributed
    assert "sft" not in STAGES and "kd" not in STAGES  # one stage kind; the loss is an objective
    assert train_cfg().objective == OBJECTIVES.config("nll")()  # default objective: nll


@pytest.mark.parametrize(
    "model, message",
    [
        ({"tiny": {"arch": "llama"}}, "`tiny` needs `tokenizer"),
        ({}, "exactly one of `tiny`"),
        ({"path": "/x", "stage": "s"}, "got stage, path"),
        ({"path": "/x", "tokenizer": "tok"}, "only used with `tiny`"),
        ({"tiny": {"arch": "gpt9"}, "tokenizer": "tok"}, "'llama' or 'qwen2'"),
    ],
)
def test_model_source_validation(model, message):
    with pytest.raises(ValidationError, match=message):
        TrainStageConfig.model_validate({"kind": "train", "rows": "rows", "model": model})


def test_other_validation():
    with pytest.raises(ValidationError, match="exceeds model.tiny.max_position_embeddings"):
        train_cfg(train={"max_length": 1024})
    with pytest.raises(ValidationError, match="Extra inputs"):
        train_cfg(train={"learning_rate": 1e-3})
    with pytest.raises(ValidationError, match="does not match any of the expected tags: 'dpo', 'kd', 'nll', 'orpo'"):
        train_cfg(objective={"kind": "simpo"})
    with pytest.raises(ValidationError, match="greater than 0"):
        train_cfg(rows=[{"stage": "a", "weight": 0}])
    with pytest.raises(ValidationError, match="non-empty list"):
        train_cfg(rows=[])
    assert train_cfg(lora={"r": 4}).lora.target_modules == "all-linear"
    mixed = train_cfg(rows=[{"stage": "a", "weight": 2}, {"stage": "b"}])
    assert [(s.stage, s.weight) for s in mixed.sources()] == [("a", 2.0), ("b", 1.0)]
    assert [(s.stage, s.weight) for s in train_cfg().sources()] == [("rows", 1.0)]
    for c in (mixed, train_cfg(), train_cfg(objective={"kind": "kd", "teacher": {"cache": "c"}})):
        assert type(c).model_validate(c.model_dump()) == c  # the pipeline re-validates dumped configs
    assert train_cfg().model_dump()["rows"] == "rows"  # one stage stays a plain name in config.yaml


def test_tokenizer_stage(dirs):
    cfg = TokenizerConfig(kind="tokenizer", data="data", vocab_size=120)
    summary = TokenizerStage().run(ctx("tok", cfg, dirs))
    tok = AutoTokenizer.from_pretrained(dirs["tok"] / "tokenizer")
    assert summary["vocab_size"] == len(tok) and summary["texts"] == 75
    text = "Question: What is 12+13?\nReasoning: 12+13=25\nAnswer: 25"
    assert tok.decode(tok(text)["input_ids"], skip_special_tokens=True) == text
    assert not (dirs["tok"] / "tokenizer.tmp").exists()
    empty = TokenizerConfig(kind="tokenizer", data="rows")
    with pytest.raises(ReasonDistillError, match="no <split>.jsonl"):
        TokenizerStage().run(ctx("tok", empty.model_copy(update={"data": "student"}), dirs))


def test_train_stage_tiny_then_continue_then_lora(dirs):
    TokenizerStage().run(ctx("tok", TokenizerConfig(kind="tokenizer", data="data"), dirs))
    summary = TrainStage().run(ctx("student", train_cfg(max_rows=16), dirs))
    assert summary["steps"] == 4 and summary["rows"] == 16 and summary["objective"] == "nll"
    model = AutoModelForCausalLM.from_pretrained(dirs["student"] / "model")
    assert model.config.model_type == "qwen2"
    # continue from the first student's weights, with LoRA; the stage seed seeds the data order
    cont = train_cfg(model={"stage": "student"}, lora={"r": 4, "alpha": 8})
    summary = TrainStage().run(ctx("student2", cont, dirs))
    assert summary["trainable_params"] < summary["params"]
    assert (dirs["student2"] / "adapter" / "adapter_config.json").exists()
    state = json.loads((dirs["student2"] / "train_state.json").read_text())
    assert state["steps"] == 4
    # The earlier model's weights were really loaded: LoRA leaves every tensor it does not adapt
    # (embeddings, norms) exactly as the first student saved it, and changes each adapted matrix
    # by a rank-4 update (B @ A merged in), not by a fresh random init.
    before = model.state_dict()
    after = AutoModelForCausalLM.from_pretrained(dirs["student2"] / "model").state_dict()
    assert before.keys() == after.keys()
    frozen = [k for k in before if before[k].ndim < 2 or "embed" in k]
    assert frozen and all(torch.equal(before[k], after[k]) for k in frozen)
    adapted = [k for k in before if k.endswith("proj.weight")]
    deltas = [after[k] - before[k] for k in adapted]
    assert adapted and all(0 < torch.linalg.matrix_rank(d).item() <= 4 for d in deltas)


def test_train_stage_input_errors(dirs):
    with pytest.raises(ReasonDistillError, match="max_rows=50 but .*rows.jsonl has only 20 rows"):
        TrainStage().run(ctx("student", train_cfg(max_rows=50), dirs))
    with pytest.raises(ReasonDistillError, match="holds no rows.jsonl"):
        TrainStage().run(ctx("student", train_cfg(rows="data"), dirs))
    with pytest.raises(ReasonDistillError, match="has neither tokenizer/ nor model/"):
        TrainStage().run(ctx("student", train_cfg(), dirs))
    with pytest.raises(ValidationError, match="does not exist"):  # refused when the recipe is planned
        train_cfg(model={"path": str(dirs["data"] / "nope")})
    assert not any(dirs["student"].iterdir())


# --- rows mixes ---------------------------------------------------------------------------------


def test_mix_indices_weights_are_exact_and_seeded():
    assert mix_indices(5, 1.0, seed=0, position=0) == [0, 1, 2, 3, 4]  # weight 1: the rows, in order
    assert Counter(mix_indices(5, 2.0, 0, 0)) == {i: 2 for i in range(5)}
    half = mix_indices(20, 0.5, 0, 0)
    assert len(half) == len(set(half)) == 10  # a subset of distinct rows
    assert half == mix_indices(20, 0.5, 0, 0) and half != mix_indices(20, 0.5, 1, 0)  # seeded
    assert half != mix_indices(20, 0.5, 0, 1)  # each source position draws its own subset
    one_and_half = Counter(mix_indices(20, 1.5, 0, 0))
    assert sorted(one_and_half.values()) == [1] * 10 + [2] * 10  # every row once + a half again
    assert len(mix_indices(3, 0.5, 0, 0)) == 2  # round(1.5): halves round up
    assert mix_indices(3, 0.1, 0, 0) == []


def test_read_mix_gives_the_exact_row_multiset_every_epoch(dirs):
    sources = [
        RowSource(stage="a", weight=2),
        RowSource(stage="b", weight=0.5),
        RowSource(stage="c", weight=0.5),
    ]
    cfg = train_cfg(rows=[s.model_dump() for s in sources])
    mixed = read_mix(ctx("student", cfg, dirs), sources, "completion", "nll", None, seed=3)
    ids = Counter(r["example_id"] for r in mixed.rows)
    assert {k: v for k, v in ids.items() if k.startswith("a")} == {f"atrain-{i}": 2 for i in range(6)}
    b_ids = [k for k in ids if k.startswith("b")]
    assert len(b_ids) == 10 and all(ids[k] == 1 for k in b_ids)
    assert sum(v for k, v in ids.items() if k.startswith("c")) == 2
    assert [(s.stage, s.n_rows, s.used) for s in mixed.sources] == [("a", 6, 12), ("b", 20, 10), ("c", 4, 2)]
    assert [r["example_id"] for r in mixed.rows] == [
        f"{'abc'[pos]}train-{i}" for pos, i in mixed.origin
    ] and not mixed.single
    again = read_mix(ctx("student", cfg, dirs), sources, "completion", "nll", None, seed=3)
    assert again.rows == mixed.rows  # deterministic: a resumed run trains on the same mix
    # The batch plan of any epoch holds exactly this multiset (24 rows = 3 whole global batches).
    plan_ = BatchPlan(
        [len(r["completion"]) for r in mixed.rows], 8, seed=0, group_by_length=True, mega_batch=2
    )
    for epoch in (0, 1):
        assert sorted(plan_.epoch_batches(epoch).ravel().tolist()) == list(range(24))


def test_train_stage_on_a_mix_trains_on_it(dirs):
    TokenizerStage().run(ctx("tok", TokenizerConfig(kind="tokenizer", data="data"), dirs))
    cfg = train_cfg(rows=[{"stage": "a", "weight": 2}, {"stage": "b", "weight": 0.5}], max_rows=6)
    summary = TrainStage().run(ctx("student", cfg, dirs))
    assert summary["rows"] == 6 * 2 + 3 and summary["steps"] == 4  # max_rows caps each source


def test_fractional_weight_rounding_to_no_rows_fails(dirs):
    cfg = train_cfg(rows=[{"stage": "rows"}, {"stage": "c", "weight": 0.1}])
    with pytest.raises(ReasonDistillError, match="rows source 'c' at weight 0.1 puts none of its 4 rows"):
        TrainStage().run(ctx("student", cfg, dirs))
    assert not any(dirs["student"].iterdir())


# --- row kinds: the objective's rows, checked before anything is written ------------------------


@pytest.fixture
def pair_objective(monkeypatch):
    monkeypatch.setitem(
        OBJECTIVES._entries, "pair_logistic", Entry("pair_logistic", PairLogistic, "toy", None)
    )


def test_nll_on_preference_rows_fails_before_anything_is_written(dirs):
    TokenizerStage().run(ctx("tok", TokenizerConfig(kind="tokenizer", data="data"), dirs))
    for rows in ("prefs", [{"stage": "rows"}, {"stage": "prefs", "weight": 0.5}]):
        with pytest.raises(ReasonDistillError) as e:
            TrainStage().run(ctx("student", train_cfg(rows=rows), dirs))
        assert str(e.value) == (
            "train stage 'student': objective 'nll' trains on prompt/completion rows, but stage 'prefs' holds "
            "prompt/chosen/rejected rows (row 1); every `rows` source must hold prompt/completion rows"
        )
        assert not any(dirs["student"].iterdir())


def test_preference_objective_on_completion_rows_fails_then_trains_on_pairs(dirs, pair_objective):
    TokenizerStage().run(ctx("tok", TokenizerConfig(kind="tokenizer", data="data"), dirs))
    cfg = train_cfg().model_copy(update={"objective": PairLogistic.Config()})  # not in the stage's schema
    with pytest.raises(ReasonDistillError, match=(
        "objective 'pair_logistic' trains on prompt/chosen/rejected rows, but stage 'rows' holds "
        "prompt/completion rows")):  # fmt: skip
        TrainStage().run(ctx("student", cfg, dirs))
    assert not any(dirs["student"].iterdir())
    summary = TrainStage().run(ctx("student", cfg.model_copy(update={"rows": "prefs"}), dirs))
    assert summary["rows"] == 12 and summary["steps"] == 4 and np.isfinite(summary["final_loss"])
    assert summary["objective"] == "pair_logistic"


@pytest.mark.parametrize(
    ("rows", "key"), [("data", "stages.student.rows"), ([{"stage": "data"}], "stages.student.rows.0.stage")]
)
def test_plan_refuses_rows_from_a_stage_without_rows(rows, key):
    recipe = Recipe(name="t", stages={
        "data": {"kind": "data", "task": "arithmetic", "splits": {"pool": {"n": 4}}},
        "tok": {"kind": "tokenizer", "data": "data"},
        "student": {"kind": "train", "rows": rows, "model": {"tiny": {}, "tokenizer": "tok"}},
    })  # fmt: skip
    with pytest.raises(RecipeError) as e:
        plan(recipe)
    assert str(e.value).startswith(
        f"{key}: stage 'data' is a data stage, which produces examples; this needs preferences or rows"
    )
