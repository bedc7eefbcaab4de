"""The traces_file (import) and style_analyze stages, and what the planner checks of them."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from reasondistill.config import StageContext
from reasondistill.errors import ReasonDistillError
from reasondistill.stages.style_analyze import StyleAnalyzeStage
from reasondistill.stages.traces_file import TracesFileStage, read_trace_file
from reasondistill.traces.templates import question_from


def _cfg(**kw):
    return TracesFileStage.Config.model_validate({"kind": "traces_file", **kw})


def _file(tmp_path, rows: list) -> str:
    p = tmp_path / "rows.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return str(p)


def test_import_r1_s1k_and_openthoughts_rows(tmp_path):
    r1 = _file(
        tmp_path,
        [{"question": "2+2?", "completion": "<think>\nWait, 4.\n</think>\n\nIt is \\boxed{4}.", "gold": "4"}],
    )
    (t,) = read_trace_file(_cfg(path=r1, gold_field="gold"))
    assert (t.rationale, t.answer, t.score, question_from(t.prompt)) == ("Wait, 4.", "4", 1.0, "2+2?")
    s1k = _file(
        tmp_path,
        [
            {
                "question": "q",
                "thinking_trajectories": ["Hmm.", "Let me check."],
                "attempt": "So **Final Answer:** 7",
                "solution": "8",
            }
        ],
    )
    (t,) = read_trace_file(
        _cfg(
            path=s1k,
            format="fields",
            reasoning_field="thinking_trajectories",
            answer_field="attempt",
            gold_field="solution",
        )
    )
    assert (t.rationale, t.answer, t.score) == ("Hmm.\nLet me check.", "7", 0.0)
    ot = _file(tmp_path, [{"conversations": [
        {"from": "user", "value": "What is 3*3?"},
        {"from": "assistant", "value": "<|begin_of_thought|>\n\nOkay, 9.\n\n<|end_of_thought|>\n\n<|begin_of_solution|>\n\n\\boxed{9}\n\n<|end_of_solution|>"},
    ]}])  # fmt: skip
    (t,) = read_trace_file(_cfg(path=ot, format="conversations", id_field="id"))
    assert (t.rationale, t.answer, t.score, t.example_id) == ("Okay, 9.", "9", None, "rows/1")
    assert question_from(t.prompt) == "What is 3*3?"


def test_import_errors_name_the_file_line_and_field(tmp_path):
    bad = _file(tmp_path, [{"question": "q", "completion": "x"}, {"question": "q"}])
    with pytest.raises(ReasonDistillError, match=r"rows\.jsonl, line 2: field 'completion' missing"):
        read_trace_file(_cfg(path=bad))
    with pytest.raises(ValidationError, match="does not exist"):
        _cfg(path=str(tmp_path / "none.jsonl"))


def _ctx(tmp_path, cfg: dict, dirs: dict) -> StageContext:
    out = tmp_path / "analysis"
    out.mkdir()
    return StageContext("analysis", StyleAnalyzeStage.Config.model_validate(cfg), out, {}, dirs)


def test_style_analyze_reads_a_models_predictions(tmp_path):
    ev = tmp_path / "eval"
    ev.mkdir()
    preds = [
        {"example_id": "a", "split": "test_id", "prediction": "Reasoning: Wait, 2+2=4. Let me check. So overall 4.\nAnswer: 4", "correct": True},
        {"example_id": "b", "split": "test_id", "prediction": "Reasoning: 2+2=5\nAnswer: 5", "correct": False},
        {"example_id": "c", "split": "test_ood", "prediction": "Answer: 1", "correct": False},
    ]  # fmt: skip
    (ev / "predictions.jsonl").write_text("".join(json.dumps(p) + "\n" for p in preds))
    ctx = _ctx(
        tmp_path,
        {"kind": "style_analyze", "predictions": "eval", "split": "test_id", "charts": False},
        {"eval": ev},
    )
    StyleAnalyzeStage().run(ctx)
    metrics = json.loads((ctx.out_dir / "metrics.json").read_text())
    assert set(metrics) == {"all", "correct", "wrong"}  # empty groups left out
    assert metrics["correct"]["n"] == 1 and metrics["correct"]["share_3of4_pivot_types"] == 1.0
    assert metrics["correct"]["pivots_per_trace"] == 3  # Wait, Let me check, So overall: "Answer:" not read
    assert len((ctx.out_dir / "profiles.jsonl").read_text().splitlines()) == 2


def test_plan_checks(tmp_path):
    from reasondistill.errors import RecipeError
    from reasondistill.pipeline import plan
    from reasondistill.recipe import load_recipe

    head = "name: r\nstages:\n  data: {kind: data, task: arithmetic, splits: {a: {n: 5}}}\n" + (
        "  tr: {kind: generate, data: {stage: data, split: a}, teacher: {kind: reasoning_style}}\n"
    )

    def errors(stages: str) -> str:
        (tmp_path / "r.yaml").write_text(head + stages)
        with pytest.raises(RecipeError) as e:
            plan(load_recipe(tmp_path / "r.yaml", [f"runs_dir={tmp_path}"])[0])
        return str(e.value)

    msg = errors(
        "  s2: {kind: style_analyze, traces: tr, examples: {stage: data, split: a}}\n"
        "  sets: {kind: style_sets, traces: tr, source: {stage: data, split: a}, splits: {'a.b': {kind: no_trace}}}\n"
    )
    assert "stages.s2: give exactly one of `traces`, `examples`, `predictions`" in msg
    assert "stages.sets.splits: split name 'a.b'" in msg
    msg = errors("  s1: {kind: style_analyze, predictions: tr}\n")
    assert (
        "stages.s1.predictions: stage 'tr' is a generate stage, which produces traces; this needs metrics"
        in msg
    )
    msg = errors(
        "  sets: {kind: style_sets, traces: tr, source: {stage: data, split: b}, splits: {st: {kind: emergent}}}\n"
        "  s3: {kind: style_analyze, examples: {stage: sets, split: nope}}\n"
    )
    assert "stages.sets.source.split: no split 'b' in stage 'data'" in msg
    assert "stages.s3.examples.split: no split 'nope' in stage 'sets'; splits: st" in msg
