"""evaluate/: Wilson intervals, batched generation (left padding, stop strings), predict, the stage."""

from __future__ import annotations

import json

import pytest

import reasondistill.stages.evaluate as evaluate_stage
from reasondistill.evaluate.generate import generate_batch
from reasondistill.evaluate.metrics import accuracy_summary, wilson_interval
from reasondistill.evaluate.predict import predict_split
from reasondistill.models.tokenize import encode_completion, encode_prompt
from reasondistill.records import read_jsonl
from reasondistill.stages.base import StageContext
from reasondistill.traces.format import render_completion, render_prompt
from tests.unit.helpers_tiny import examples, fake_verify, memorized_model, tiny_model, tiny_tokenizer


@pytest.fixture(scope="module")
def tok():
    return tiny_tokenizer()


@pytest.fixture(scope="module")
def model(tok):
    return tiny_model(tok, seed=1)


EXS = examples(4)
PAIRS = [(render_prompt(e.question), render_completion(e.answer, e.rationale, "after")) for e in EXS]


@pytest.fixture(scope="module")
def after_model(tok):
    """Memorized 'Answer: x\\nReasoning: ...' completions: a rationale-after student."""
    return memorized_model(tok, PAIRS)


@pytest.mark.parametrize(
    "k, n, lo, hi",
    [(8, 10, 0.490, 0.943), (0, 10, 0.0, 0.278), (10, 10, 0.722, 1.0), (50, 100, 0.404, 0.596)],
)
def test_wilson_known_values(k, n, lo, hi):
    got = wilson_interval(k, n)
    assert got == pytest.approx((lo, hi), abs=5e-4)


def test_wilson_and_summary_edge_cases():
    assert wilson_interval(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError):
        wilson_interval(3, 2)
    s = accuracy_summary([True, False, True, True], [2, 4, 6, 8])
    assert (s["n"], s["correct"], s["accuracy"], s["mean_generated_tokens"]) == (4, 3, 0.75, 5.0)
    assert s["ci_low"] < 0.75 < s["ci_high"]
    empty = accuracy_summary([], [])
    assert empty["accuracy"] is None and empty["mean_generated_tokens"] is None and empty["n"] == 0


def test_batched_greedy_equals_one_at_a_time(model, tok):
    qs = [e.question for e in examples(6)] + ["x", "a much longer question " * 4]
    prompts = [encode_prompt(tok, render_prompt(q)) for q in qs]
    assert len({len(p) for p in prompts}) > 3  # real left padding in the batch
    batched = generate_batch(model, tok, prompts, max_new_tokens=16)
    single = [generate_batch(model, tok, [p], max_new_tokens=16)[0] for p in prompts]
    assert [(g.text, g.num_tokens, g.finished) for g in batched] == [
        (g.text, g.num_tokens, g.finished) for g in single
    ]
    assert all(g.prompt_tokens == len(p) for g, p in zip(batched, prompts, strict=True))


def test_sampling_is_seeded_and_grouped(model, tok):
    prompts = [encode_prompt(tok, render_prompt(q)) for q in ("a", "bb")]
    kw = {"max_new_tokens": 8, "temperature": 1.0, "num_return_sequences": 3}
    a = [g.text for g in generate_batch(model, tok, prompts, seed=5, **kw)]
    assert len(a) == 6
    assert a == [g.text for g in generate_batch(model, tok, prompts, seed=5, **kw)]
    assert a != [g.text for g in generate_batch(model, tok, prompts, seed=6, **kw)]
    with pytest.raises(ValueError, match="identical"):
        generate_batch(model, tok, prompts, max_new_tokens=4, num_return_sequences=2)


def test_label_first_stop_truncates_at_answer_line(after_model, tok):
    prompts = [encode_prompt(tok, p) for p, _ in PAIRS]
    full = generate_batch(after_model, tok, prompts, max_new_tokens=40)
    assert [g.text for g in full] == [c for _, c in PAIRS]  # memorized
    # EOS counts as a generated token; encode_completion appends it.
    assert [g.num_tokens for g in full] == [len(encode_completion(tok, c)) for _, c in PAIRS]
    short = generate_batch(after_model, tok, prompts, max_new_tokens=40, stop="\n")
    assert [g.text for g in short] == [f"Answer: {e.answer}" for e in EXS]
    for g, (_, c) in zip(short, PAIRS, strict=True):
        ids = encode_completion(tok, c)
        upto = next(k for k in range(1, len(ids)) if "\n" in tok.decode(ids[:k]))
        assert g.num_tokens == upto and g.finished  # counted up to (and with) the stop token


def test_predict_split_label_first_and_resume(after_model, tok, tmp_path, capsys):
    kw = {"split": "test", "batch_size": 3, "max_new_tokens": 40}
    full = predict_split(after_model, tok, EXS, fake_verify, partial_path=tmp_path / "a.jsonl", **kw)
    lf = predict_split(
        after_model, tok, EXS, fake_verify, partial_path=tmp_path / "b.jsonl", label_first=True, **kw
    )
    assert all(r["correct"] for r in full + lf)
    assert all(a["generated_tokens"] > b["generated_tokens"] for a, b in zip(full, lf, strict=True))
    assert lf[1] | {"generated_tokens": 0} == {
        "example_id": "ex1",
        "split": "test",
        "prediction": "Answer: 2",
        "answer": "2",
        "gold": "2",
        "correct": True,
        "generated_tokens": 0,
    }
    # Resume: rows already in the partial file are kept, only the missing ones generated.
    part = tmp_path / "c.jsonl"
    part.write_text(json.dumps(lf[0] | {"prediction": "cached"}) + "\n")
    rows = predict_split(after_model, tok, EXS, fake_verify, partial_path=part, label_first=True, **kw)
    assert rows[0]["prediction"] == "cached" and rows[1:] == lf[1:]
    assert [r["example_id"] for r in read_jsonl(part)] == ["ex0", "ex1", "ex2", "ex3"]
    assert "evaluate test" in capsys.readouterr().err  # progress: examples/s and ETA
    # Killed mid-write: the partial file is evaluate's own, so its torn last row is skipped and redone.
    torn = tmp_path / "d.jsonl"
    torn.write_text(json.dumps(lf[0]) + "\n" + json.dumps(lf[1])[:20])
    rows = predict_split(after_model, tok, EXS, fake_verify, partial_path=torn, label_first=True, **kw)
    assert rows == lf and [r["example_id"] for r in read_jsonl(torn)] == ["ex0", "ex1", "ex2", "ex3"]


def test_evaluate_stage(after_model, tok, tmp_path, monkeypatch):
    monkeypatch.setattr(
        evaluate_stage,
        "load_inputs",
        lambda cfg, ctx: (after_model, tok, fake_verify, {"test": EXS, "ood": EXS[:2]}),
    )
    cfg = evaluate_stage.EvaluateConfig(
        kind="evaluate", model={"path": "m"}, data="data", splits=["test", "ood"], label_first=True
    )
    ctx = StageContext(name="ev", cfg=cfg, out_dir=tmp_path, coords={}, dirs={"data": tmp_path})
    summary = evaluate_stage.EvaluateStage().run(ctx)
    assert summary == {"test": {"accuracy": 1.0, "n": 4}, "ood": {"accuracy": 1.0, "n": 2}}
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert set(metrics) == {"test", "ood"} and metrics["test"]["ci_high"] == 1.0
    assert set(metrics["test"]) == {"n", "correct", "accuracy", "ci_low", "ci_high", "mean_generated_tokens"}
    assert len(list(read_jsonl(tmp_path / "predictions.jsonl"))) == 6
    assert not list(tmp_path.glob("*.partial.jsonl"))
    assert tb_scalars(tmp_path / "logs", "eval/test/accuracy") == [(0, 1.0)]  # a path model: step 0


def tb_scalars(logdir, tag: str) -> list[tuple[int, float]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(logdir))
    acc.Reload()
    return [(e.step, e.value) for e in acc.Scalars(tag)]


def test_evaluation_metrics_reach_tensorboard_at_the_models_training_step(after_model, tok, tmp_path, monkeypatch):
    monkeypatch.setattr(evaluate_stage, "load_inputs", lambda cfg, ctx: (after_model, tok, fake_verify, {"test": EXS}))
    (tmp_path / "teacher" / "model").mkdir(parents=True)
    (tmp_path / "teacher" / "train_state.json").write_text(json.dumps({"steps": 7}))
    cfg = evaluate_stage.EvaluateConfig(kind="evaluate", model={"stage": "teacher"}, data="data", splits=["test"],
                                        label_first=True)  # fmt: skip
    out = tmp_path / "ev"
    out.mkdir()
    ctx = StageContext(name="ev", cfg=cfg, out_dir=out, coords={}, dirs={"data": tmp_path, "teacher": tmp_path / "teacher"})
    for _ in range(2):  # a rerun (after a kill before the marker) rewrites the logs: no duplicate points
        evaluate_stage.EvaluateStage().run(ctx)
    assert tb_scalars(out / "logs", "eval/test/accuracy") == [(7, 1.0)]
    assert tb_scalars(out / "logs", "eval/test/n") == [(7, 4.0)]
    with pytest.raises(ValueError):
        evaluate_stage.EvaluateConfig(kind="evaluate", model={"path": "m"}, data="data", splits=[])


def test_evaluate_stage_refuses_a_model_trained_with_another_template(tmp_path):
    from reasondistill.errors import ReasonDistillError
    from reasondistill.traces.templates import write_template_record

    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "config.json").write_text("{}")
    write_template_record(model_dir, {"kind": "chat", "system": None})
    cfg = evaluate_stage.EvaluateConfig(kind="evaluate", model={"path": str(model_dir)}, data="data", splits=["t"])
    ctx = StageContext(name="ev", cfg=cfg, out_dir=tmp_path, coords={}, dirs={"data": tmp_path / "none"})
    with pytest.raises(ReasonDistillError, match="evaluate stage 'ev': the model .* trained with template"):
        evaluate_stage.load_inputs(cfg, ctx)  # before any data or weights are read
