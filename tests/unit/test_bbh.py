"""BIG-Bench-Hard: task files, prompt files, lm-eval-compatible answer extraction, scoring, tables."""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

from reasondistill.config import StageContext
from reasondistill.errors import ReasonDistillError
from reasondistill.evaluate import bbh as bbh_eval
from reasondistill.evaluate.bbh import (
    FewShot,
    build_prompt,
    evaluate_bbh,
    extract_answer,
    find_prompts,
    format_table,
    macro_average,
    read_prompt_file,
)
from reasondistill.evaluate.generate import Generation
from reasondistill.evaluate.metrics import wilson_interval
from reasondistill.tasks import build_task
from reasondistill.tasks.bbh import load_bbh, verify_answer
from tests.unit.helpers_tiny import tiny_tokenizer

BBH = Path(__file__).resolve().parents[1] / "fixtures" / "bbh"
TASKS = BBH / "tasks"
PROMPTS = BBH / "cot-prompts"


def test_load_fixture_tasks():
    tasks = load_bbh(TASKS)
    assert list(tasks) == ["coin_flips", "shelf_order", "sum_items"]
    assert all(len(rows) == 4 for rows in tasks.values())
    assert (
        tasks["shelf_order"][0]["target"] == "(B)" and "Options:\n(A) jam" in tasks["shelf_order"][0]["input"]
    )
    assert list(load_bbh(TASKS, ["sum_items"])) == ["sum_items"]
    assert list(load_bbh(TASKS / "coin_flips.json")) == ["coin_flips"]
    with pytest.raises(ReasonDistillError, match="no task file for nope"):
        load_bbh(TASKS, ["nope"])


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("{not json", "not valid JSON"),
        ('{"rows": []}', 'expected {"examples"'),
        ('{"examples": [{"input": "q"}]}', "example 0: 'target' must be a non-empty string"),
        ('{"examples": ["q"]}', "example 0 is not an object"),
    ],
)
def test_malformed_task_file_names_file_and_problem(tmp_path, text, problem):
    (tmp_path / "bad.json").write_text(text)
    with pytest.raises(ReasonDistillError, match=re.escape(problem)) as e:
        load_bbh(tmp_path)
    assert "bad.json" in str(e.value)
    with pytest.raises(ReasonDistillError, match="no such file or directory"):
        load_bbh(tmp_path / "missing")
    (tmp_path / "bad.json").unlink()
    with pytest.raises(ReasonDistillError, match="no <task>.json files"):
        load_bbh(tmp_path)


def test_prompt_files():
    fs = read_prompt_file(PROMPTS / "shelf_order.txt")
    assert fs.description == "Work out the order of objects on a shelf from clues."
    assert len(fs.examples) == 3
    assert all(ex.startswith("Q: ") and "\nA: Let's think step by step.\n" in ex for ex in fs.examples)
    assert fs.examples[0].endswith("So the answer is (B).") and "(C) pins" in fs.examples[0]
    prompt = build_prompt(fs, "Which?")
    assert prompt.startswith(fs.description + "\n\nQ: Three boxes")
    assert prompt.endswith("So the answer is (A).\n\nQ: Which?\nA: Let's think step by step.")
    assert build_prompt(None, "Which?") == "Q: Which?\nA: Let's think step by step."


def test_prompt_file_preamble_and_errors(tmp_path):
    body = (PROMPTS / "sum_items.txt").read_text()
    (tmp_path / "canary.txt").write_text("BENCHMARK DATA canary GUID 123\n-----\n" + body)
    assert read_prompt_file(tmp_path / "canary.txt") == read_prompt_file(PROMPTS / "sum_items.txt")
    (tmp_path / "none.txt").write_text("just a description\n")
    with pytest.raises(ReasonDistillError, match="no example"):
        read_prompt_file(tmp_path / "none.txt")
    (tmp_path / "noa.txt").write_text("d\n\nQ: x\nLet's think. So the answer is 1.\n")
    with pytest.raises(ReasonDistillError, match="example 1 has no answer line"):
        read_prompt_file(tmp_path / "noa.txt")


LM_EVAL = re.compile(r"(?<=the answer is )(.*)(?=.)")  # lm-eval bbh_cot_fewshot's get-answer filter


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("Glue is left of tape. So the answer is (B).", "(B)"),  # multiple choice
        ("Z = not True = False. So the answer is False.", "False"),  # boolean
        ("Lea presses, Mo presses. So the answer is Yes.\nQ: next", "Yes"),
        ("3 + 4 = 7. So the answer is 7.", "7"),  # number
        ("So the answer is -12.5.", "-12.5"),
        ("Sorted: apple, fig, kiwi. So the answer is apple fig kiwi.", "apple fig kiwi"),  # word list
        ("So the answer is ) ] }.", ") ] }"),  # bracket sequence
        (
            "So the answer is (A). Then the answer is (B).",
            "(A). Then the answer is (B)",
        ),  # lm-eval: first match
        ("So the answer is (A).\nWait, no: the answer is (B).", "(A)"),  # first of two lines, not the last
    ],
)
def test_extraction_matches_lm_eval_on_well_formed_outputs(text, answer):
    assert extract_answer(text) == answer
    assert LM_EVAL.findall(text)[0].strip() == answer


def test_extraction_departures():
    assert extract_answer("So the answer is True") == "True"  # lm-eval would cut it to "Tru"
    assert extract_answer("Reasoning: 2+3=5\nAnswer: 5") == "5"  # reasondistill's own format
    assert extract_answer("I do not know") is None and extract_answer("So the answer is .") is None


def test_verify_is_exact():
    assert verify_answer("(B)", "(B)") and verify_answer(" 1,000 ", "1000") and verify_answer("7.0", "7")
    for wrong in ("(b)", "B", "(B) honey", "the answer is (B)", None, "  "):
        assert not verify_answer(wrong, "(B)")
    assert not verify_answer("true", "True") and not verify_answer("71", "7")


def test_bbh_task_loader_and_verifier():
    task = build_task("bbh", {"path": str(TASKS)})
    task.check()
    exs = list(task.examples("test", None, seed=0))
    assert len(exs) == 12 and exs[0].id == "bbh/coin_flips/0" and exs[4].metadata["bbh_task"] == "shelf_order"
    assert len(list(task.examples("test", 5, seed=0))) == 5
    for ex in exs:
        assert task.verify(ex, ex.answer) and not task.verify(ex, f"So the answer is {ex.answer}.")


def test_find_prompts(tmp_path):
    prompts, used = find_prompts(TASKS, None, ["coin_flips", "sum_items"])  # cot-prompts/ beside tasks/
    assert used == PROMPTS and isinstance(prompts["coin_flips"], FewShot)
    assert find_prompts(tmp_path, None, ["coin_flips"]) == ({"coin_flips": None}, None)  # zero-shot
    with pytest.raises(ReasonDistillError, match="no <task>.txt for other"):
        find_prompts(TASKS, PROMPTS, ["coin_flips", "other"])
    with pytest.raises(ReasonDistillError, match="no such directory"):
        find_prompts(TASKS, tmp_path / "missing", ["coin_flips"])
    shutil.copytree(TASKS, tmp_path / "bbh")
    (tmp_path / "bbh" / "cot-prompts").mkdir()
    (tmp_path / "bbh" / "cot-prompts" / "coin_flips.txt").write_text("no examples here")
    with pytest.raises(ReasonDistillError, match="coin_flips.txt: no example"):
        find_prompts(tmp_path / "bbh", None, ["coin_flips"])


@pytest.fixture
def scripted(monkeypatch):
    """generate_batch replaced by answers looked up from the question in each prompt."""
    tok = tiny_tokenizer()
    answers, seen = {}, []

    def fake_generate(model, tokenizer, prompts, *, max_new_tokens, stop):
        assert stop == "\n\n"
        out = []
        for ids in prompts:
            seen.append(ids)
            text = tokenizer.decode(ids, skip_special_tokens=True)
            question = text.rsplit("Q: ", 1)[1].split("\nA:")[0]
            out.append(Generation(answers.get(question, "I am not sure."), 5, len(ids), True))
        return out

    monkeypatch.setattr(bbh_eval, "generate_batch", fake_generate)
    model = SimpleNamespace(config=SimpleNamespace(max_position_embeddings=4096), eval=lambda: None)
    return model, tok, answers, seen


def test_evaluate_bbh_scores_per_task_and_macro(scripted):
    model, tok, answers, _ = scripted
    tasks = load_bbh(TASKS)
    for task, rows in tasks.items():
        for i, row in enumerate(rows):  # coin_flips 4/4, shelf_order 2/4, sum_items 0/4 correct
            right = task == "coin_flips" or (task == "shelf_order" and i < 2)
            answers[row["input"]] = f"Some steps. So the answer is {row['target'] if right else 'zzz'}."
    prompts, _ = find_prompts(TASKS, None, list(tasks))
    res = evaluate_bbh(model, tok, tasks, prompts, batch_size=3)
    assert {t: m["correct"] for t, m in res["tasks"].items()} == {
        "coin_flips": 4,
        "shelf_order": 2,
        "sum_items": 0,
    }
    assert res["tasks"]["coin_flips"]["shots"] == 3 and res["tasks"]["coin_flips"]["prompts_truncated"] == 0
    avg = res["average"]
    assert avg["accuracy"] == pytest.approx(0.5) and avg["micro"]["correct"] == 6 and avg["n"] == 12
    assert 0 < avg["ci_low"] < 0.5 < avg["ci_high"] < 1
    assert len(res["predictions"]) == 12 and res["predictions"][0]["answer"] == "No"
    table = format_table(res)
    assert "| shelf_order | 4 | 3 | 50.0 | [15.0, 85.0] |" in table
    assert "| average (macro, 3 tasks) | 12 | | 50.0 | [25.4, 74.6] |" in table  # = Wilson(6, 12): equal n
    assert "the macro average's is stratified Wilson 95% (tasks weighted equally)" in table
    assert avg["interval"] == "stratified Wilson 95% (tasks weighted equally)"
    json.dumps(res)
    limited = evaluate_bbh(model, tok, tasks, prompts, limit=1)
    assert all(m["n"] == 1 for m in limited["tasks"].values())


def test_long_prompts_keep_their_end(scripted):
    model, tok, answers, seen = scripted
    model.config.max_position_embeddings = 176
    tasks = load_bbh(TASKS, ["sum_items"])
    prompts, _ = find_prompts(TASKS, None, ["sum_items"])
    for row in tasks["sum_items"]:
        answers[row["input"]] = f"So the answer is {row['target']}."
    res = evaluate_bbh(model, tok, tasks, prompts, max_new_tokens=16)
    assert res["tasks"]["sum_items"]["prompts_truncated"] == 4 and res["tasks"]["sum_items"]["correct"] == 4
    assert all(len(ids) == 160 and ids[0] == tok.bos_token_id for ids in seen)  # the BOS stays
    with pytest.raises(ReasonDistillError, match="leaves no room"):
        evaluate_bbh(model, tok, tasks, prompts, max_new_tokens=175)


def _task(k: int, n: int) -> dict:
    lo, hi = wilson_interval(k, n)
    return {"n": n, "correct": k, "accuracy": k / n if n else None, "ci_low": lo, "ci_high": hi}


def test_macro_average_edge_cases():
    assert macro_average({})["accuracy"] is None and macro_average({})["ci_high"] == 1.0
    assert macro_average({"a": _task(0, 10)})["ci_high"] == pytest.approx(wilson_interval(0, 10)[1])  # one task: Wilson
    # The case: 0 of 6 over 3 tasks of 2 was reported as [0.0, 65.8] (mean of per-task
    # Wilson bounds); the items support Wilson(0, 6) = [0, 39.0].
    zero = macro_average({t: _task(0, 2) for t in "abc"})
    assert (zero["ci_low"], round(100 * zero["ci_high"], 1)) == (0.0, 39.0)
    full = macro_average({t: _task(2, 2) for t in "abc"})
    assert round(100 * full["ci_low"], 1) == 61.0 and full["ci_high"] == pytest.approx(1.0)  # never a point at 100%


def test_macro_interval_is_stratified_wilson_and_covers_the_macro_mean():
    # Unequal task sizes: the macro mean weights tasks equally, so a small task's accuracy moves it
    # more and widens the interval past the pooled one; empty tasks take no part.
    per = {"big": _task(90, 100), "small": _task(1, 4), "empty": _task(0, 0)}
    avg = macro_average(per)
    assert avg["tasks"] == 2 and avg["accuracy"] == pytest.approx((0.9 + 0.25) / 2)
    n_eff = 1 / (0.25 / 100 + 0.25 / 4)  # 1 / sum_i w_i^2 / n_i
    p = avg["accuracy"]
    z = 1.96
    center = (p + z * z / (2 * n_eff)) / (1 + z * z / n_eff)
    half = z * math.sqrt(p * (1 - p) / n_eff + z * z / (4 * n_eff**2)) / (1 + z * z / n_eff)
    assert (avg["ci_low"], avg["ci_high"]) == pytest.approx((center - half, center + half))
    micro = avg["micro"]
    assert avg["ci_high"] - avg["ci_low"] > micro["ci_high"] - micro["ci_low"]


def test_bbh_eval_stage_writes_shared_metrics_a_report_reads(scripted, tmp_path, monkeypatch):
    import reasondistill.models.load as load_mod
    from reasondistill.stages.bbh_eval import BBHEvalConfig, BBHEvalStage
    from reasondistill.stages.report import ReportConfig, ReportStage

    model, tok, answers, _ = scripted
    monkeypatch.setattr(load_mod, "load_model", lambda *a, **k: (model, tok))
    for row in load_bbh(TASKS)["coin_flips"]:
        answers[row["input"]] = f"So the answer is {row['target']}."
    cfg = BBHEvalConfig(kind="bbh_eval", model={"path": "unused"}, bbh_dir=str(TASKS), limit=2, batch_size=2)
    out = tmp_path / "bbh"
    out.mkdir()
    summary = BBHEvalStage().run(StageContext("bbh", cfg, out, {}, {}))
    assert summary == {"tasks": 3, "accuracy": pytest.approx(1 / 3), "prompts_truncated": 0}
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["coin_flips"]["accuracy"] == 1.0 and metrics["average"]["n"] == 6
    assert len((out / "predictions.jsonl").read_text().splitlines()) == 6
    assert BBHEvalStage.fingerprint(cfg)  # the task files' contents are part of the stage hash
    report = tmp_path / "report"
    report.mkdir()
    ReportStage().run(StageContext("r", ReportConfig(kind="report", evals=["bbh"]), report, {}, {"bbh": out}))
    assert "average acc % [95% CI]" in (report / "results.md").read_text()
