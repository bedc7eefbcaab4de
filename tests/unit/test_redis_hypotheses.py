"""Hypotheses (redis/hypotheses.py, redis/search.py, teachers/rules.py): the program teacher, scoring
by batched application, dedup, pairs by margin, SFT rows, the inference tie rule, cost metrics."""

from __future__ import annotations

from pathlib import Path

import pytest

from reasondistill.records import Trace
from reasondistill.redis import hypotheses as H
from reasondistill.redis.search import best, direct, search, summarise
from reasondistill.tasks import build_task
from reasondistill.teachers import TEACHERS
from reasondistill.traces.store import TraceStore
from reasondistill.traces.templates.plain import PlainTemplate

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "redis"


def teacher(kind: str, **cfg):
    return TEACHERS.get(kind)(TEACHERS.config(kind).model_validate({"kind": kind, **cfg}))


def task_items(name: str, n: int, split: str = "train"):
    task = build_task(name, {})
    exs = list(task.examples(split, n, seed=1))
    return task, exs, {k: H.rule_item(k, qs) for k, qs in H.groups(exs).items()}


def scored(name: str, tmp_path, n: int = 12, h: int = 8):
    task, _, items = task_items(name, n)
    with TraceStore(tmp_path / "rules.jsonl") as store:
        teacher("rule_program", n=h).generate(list(items.values()), store, lambda ex, a: False)
        proposals = store.read()
    hyps = H.distinct(items, proposals)
    with TraceStore(tmp_path / "apps.jsonl") as store:
        teacher("rule_program").generate(H.application_items(hyps), store, task.verify)
        H.attach(hyps, store.read())
    return proposals, [H.as_trace(x) for x in hyps]


def test_program_teacher_is_deterministic_and_resumable(tmp_path):
    first, _ = scored("list_functions", tmp_path / "a")
    (tmp_path / "b").mkdir()
    partial = tmp_path / "b" / "rules.jsonl"
    partial.write_text("".join(t.model_dump_json() + "\n" for t in first[:5]))  # a killed run's file
    again, _ = scored("list_functions", tmp_path / "b")
    assert [t.model_dump() for t in again] == [t.model_dump() for t in first]
    assert all(t.metadata["rule_spec"] for t in first) and len(first) == 2 * 8  # 12 queries: 2 tasks of 8


def test_scores_are_per_demonstration_predictions_of_distinct_rules(tmp_path):
    _, traces = scored("arc_1d", tmp_path, n=10, h=10)
    for t in traces:
        preds = t.metadata["predictions"]
        assert len(preds) == t.metadata["demos"] == 3
        assert t.metadata["correct"] == sum(p["correct"] for p in preds)
        assert t.score == t.metadata["correct"] / 3 and all(
            p["question"] and "Rule: " in p["question"] for p in preds
        )
    by_task = H.by_task(traces)
    assert all(len({t.answer for t in ts}) == len(ts) for ts in by_task.values())  # deduplicated by text
    assert any(t.metadata["correct"] == 3 for t in traces) and any(t.metadata["correct"] < 3 for t in traces)


def fake(task: str, key: str, rule: str, correct: int, demos: int = 4) -> Trace:
    preds = [
        {"question": f"apply {rule} to {j}", "prediction": f"[{j}]", "correct": j < correct}
        for j in range(demos)
    ]
    meta = {
        "task": task,
        "group": key,
        "question": f"rules for {key}",
        "correct": correct,
        "demos": demos,
        "predictions": preds,
    }
    return Trace(
        example_id=key, teacher="t", sample=0, prompt="p", completion=rule, answer=rule, metadata=meta
    )


def test_pairs_need_a_margin_strictly_above_d():
    traces = [
        fake("arc_1d", "k", "a", 3),
        fake("arc_1d", "k", "b", 2),
        fake("arc_1d", "k", "c", 1),
        fake("arc_1d", "k", "d", 0),
    ]
    got = {(x.answer, y.answer) for x, y, _ in H.pairs(traces, None)}  # the paper's d = 1 for 1D-ARC
    assert got == {("a", "c"), ("a", "d"), ("b", "d")}
    assert {(x.answer, y.answer) for x, y, _ in H.pairs(traces, 0)} >= got | {("a", "b"), ("c", "d")}
    assert H.pairs([fake("mini_scan", "m", "a", 4), fake("mini_scan", "m", "b", 0)], None) == []  # d = 4
    with pytest.raises(ValueError, match="no paper margin"):
        H.pairs([fake("other", "o", "a", 1)], None)


def test_sft_rows_all_rules_and_applications_of_chosen_ones():
    traces = [
        fake("arc_1d", "k", "good rule", 4),
        fake("arc_1d", "k", "bad rule", 1),
        fake("arc_1d", "j", "lone", 4),
    ]
    template = PlainTemplate()
    gen = H.generation_rows(traces, template)
    assert [r["completion"] for r in gen] == ["Answer: good rule", "Answer: bad rule", "Answer: lone"]
    chosen = {(x.example_id, x.answer) for x, _, _ in H.pairs(traces, 1)}
    follow = H.following_rows(traces, chosen, template)
    assert len(follow) == 4 and all("good rule" in r["prompt"] for r in follow)


def hyp(rule: str, correct: int) -> H.Hypothesis:
    h = H.Hypothesis(item=None, rule=rule, spec=None, samples=[0])
    h.predictions = [{"correct": j < correct} for j in range(3)]
    return h


def test_best_rule_ties_go_to_the_last_text_in_lexicographic_order():
    assert best([hyp("b", 2), hyp("a", 3), hyp("c", 1)]).rule == "a"
    assert best([hyp("apple", 2), hyp("banana", 2), hyp("Zebra", 2)]).rule == "banana"  # reverse sort
    assert best([]) is None


def test_search_with_the_program_teacher_and_cost_per_task(tmp_path):
    task, exs, _ = task_items("list_functions", 24, split="test")
    results = search(
        exs, teacher("rule_program", n=10), teacher("rule_program"), task.verify, tmp_path, "test"
    )
    m = summarise(results)
    assert m["n"] == 24 and m["tasks"] == 3 and m["accuracy"] >= 0.5
    # per task: 10 rule samples + 10 x 8 demonstration applications + one application per query
    assert m["calls_per_task"] == 10 + 10 * 8 + 8
    assert all(r["rule"] and r["rule_score"] is not None for res in results for r in res.rows)
    # resumable: a rerun reads every call back from the stage directory
    again = summarise(
        search(exs, teacher("rule_program", n=10), teacher("rule_program"), task.verify, tmp_path, "test")
    )
    assert again == m
    d = summarise(direct(exs, teacher("rule_program"), task.verify, tmp_path, "direct"))
    assert d["accuracy"] == 0.0 and d["calls_per_task"] == 8  # the program teacher has no few-shot answer


def test_python_rules_teacher_applies_program_hypotheses(tmp_path):
    from reasondistill.records import Demonstration, Example

    task = build_task("list_functions", {})
    demos = [
        Demonstration(input="[1, 2]", output="[2, 1]"),
        Demonstration(input="[3, 4, 5]", output="[5, 4, 3]"),
    ]
    item = Example(id="k", task="list_functions", question="q", answer="", split="train", demonstrations=demos,
                   metadata={"group": "g"})  # fmt: skip
    rules = {
        "h0": "lambda x: x[::-1]",
        "h1": "def f(x):\n    return 1/0",
        "h2": "```python\ndef f(x):\n    return x\n```",
    }
    apps = [H.apply_item(item, f"{h}/d{j}", rule, None, d.input, d.output)
            for h, rule in rules.items() for j, d in enumerate(demos)]  # fmt: skip
    with TraceStore(tmp_path / "apps.jsonl") as store:
        teacher("python_rules", cpu_s=1, wall_s=5).generate(apps, store, task.verify)
        traces = {t.example_id: t for t in store.read()}
    score = {h: sum(traces[f"k/{h}/d{j}"].score for j in range(2)) for h in rules}
    assert score == {"h0": 2.0, "h1": 0.0, "h2": 0.0}
    assert all("ZeroDivisionError" in traces[f"k/h1/d{j}"].error for j in range(2))
    assert traces["k/h2/d0"].answer == "[1, 2]"  # a fenced program runs too (and is wrong here)


def test_pairs_skip_equal_texts_without_dedup():
    """rule_scores `dedup: false`: one text scored twice differently is not a pair with itself."""
    traces = [fake("arc_1d", "k", "same", 3), fake("arc_1d", "k", "same", 0), fake("arc_1d", "k", "other", 0)]
    got = [(x.answer, y.answer) for x, y, _ in H.pairs(traces, None)]
    assert got == [("same", "other")]


def test_unknown_tasks_and_missing_rules_are_user_errors(tmp_path):
    from reasondistill.errors import ReasonDistillError
    from reasondistill.records import Demonstration, Example
    from reasondistill.redis.prompts import prompts_for
    from reasondistill.redis.rules import book_for

    with pytest.raises(ReasonDistillError, match="no ReDis prompts for task 'arithmetic'"):
        prompts_for("arithmetic")
    with pytest.raises(ReasonDistillError, match="no rule book for task 'arithmetic'"):
        book_for("arithmetic")
    ex = Example(id="q", task="arithmetic", question="1+1", answer="2", split="train",
                 demonstrations=[Demonstration(input="1", output="1")], metadata={"group": "g"})  # fmt: skip
    with pytest.raises(ReasonDistillError, match="no ReDis prompts for task 'arithmetic'"):
        H.rule_item("k", [ex])
    _, _, items = task_items("acre", 4)
    item = next(iter(items.values()))
    item.metadata.pop("rule")  # as a file task's item
    with TraceStore(tmp_path / "rules.jsonl") as store, pytest.raises(ReasonDistillError, match="no known rule"):
        teacher("rule_program", n=2).generate([item], store, lambda ex, a: False)


def data_configs(**data):
    from reasondistill.stages.data import DataConfig

    cfg = DataConfig.model_validate({"kind": "data", "task": "arc_1d", "splits": {"train": {"n": 4}}, **data})
    return lambda name: [cfg]


def test_program_teacher_needs_a_procedural_task_in_every_split(tmp_path):
    from reasondistill.stages.hypotheses import HypothesesConfig, HypothesesStage

    fixture = str(FIXTURES / "arc_1d.jsonl")
    cfg = HypothesesConfig.model_validate(
        {"kind": "hypotheses", "data": {"stage": "data", "split": "train"}, "teacher": {"kind": "rule_program"}}
    )
    assert HypothesesStage.check_plan(cfg, data_configs()) == []
    split_file = data_configs(splits={"train": {"n": 4}, "test": {"config": {"path": fixture}}})
    assert "splits.test.config.path" in " ".join(HypothesesStage.check_plan(cfg, split_file))
    jsonl = tmp_path / "rows.jsonl"
    jsonl.write_text('{"question": "q", "answer": "a"}\n')
    from reasondistill.stages.data import DataConfig

    other = DataConfig.model_validate({"kind": "data", "task": "jsonl", "config": {"path": str(jsonl)},
                                       "splits": {"train": {}}})  # fmt: skip
    assert "makes task 'jsonl'" in " ".join(HypothesesStage.check_plan(cfg, lambda name: [other]))
    py = HypothesesConfig.model_validate(
        {"kind": "hypotheses", "data": {"stage": "data", "split": "train"}, "teacher": {"kind": "python_rules"}}
    )
    assert "cannot propose" in " ".join(HypothesesStage.check_plan(py, data_configs()))


def test_rule_program_applier_needs_a_rule_program_proposer():
    from reasondistill.stages.hypothesis_eval import HypothesisEvalConfig, HypothesisEvalStage

    def plan(**cfg):
        c = HypothesisEvalConfig.model_validate({"kind": "hypothesis_eval", "data": "data", "splits": ["test"], **cfg})
        return " ".join(HypothesisEvalStage.check_plan(c, data_configs()))

    model = {"kind": "hf", "model": {"path": "org/model"}}
    assert plan(proposer={"kind": "rule_program"}, applier={"kind": "rule_program"}) == ""
    assert "every rule would fail to apply" in plan(proposer=model, applier={"kind": "rule_program"})
    assert "direct mode needs a model" in plan(mode="direct", applier={"kind": "rule_program"})
    assert "cannot propose" in plan(proposer={"kind": "python_rules"}, applier=model)


def test_python_rules_refuses_items_it_cannot_apply(tmp_path):
    """As a proposer it gets rule-generation items (metadata.rule is a spec dict): an error trace each."""
    _, _, items = task_items("list_functions", 16)
    with TraceStore(tmp_path / "rules.jsonl") as store:
        teacher("python_rules").generate(list(items.values()), store, lambda ex, a: False)
        traces = store.read()
    assert len(traces) == len(items) and all("only applies rules" in t.error for t in traces)


def test_a_failing_teacher_leaves_no_items_or_task_file(tmp_path):
    from reasondistill.config import StageContext
    from reasondistill.errors import ReasonDistillError
    from reasondistill.stages.data import DataConfig, DataStage
    from reasondistill.stages.hypotheses import HypothesesConfig, HypothesesStage

    fixture = FIXTURES / "acre.jsonl"
    data = DataConfig.model_validate({"kind": "data", "task": "acre", "config": {"path": str(fixture)},
                                      "splits": {"train": {}}})  # fmt: skip
    (tmp_path / "data").mkdir()
    DataStage().run(StageContext("data", data, tmp_path / "data", {}, {}))
    # The plan check refuses this (a file task has no known rule); run it anyway: the teacher fails.
    cfg = HypothesesConfig.model_validate(
        {"kind": "hypotheses", "data": {"stage": "data", "split": "train"}, "teacher": {"kind": "rule_program"}}
    )
    out = tmp_path / "rules"
    out.mkdir()
    with pytest.raises(ReasonDistillError, match="no known rule"):
        HypothesesStage().run(StageContext("rules", cfg, out, {}, {"data": tmp_path / "data"}))
    assert not (out / "task.json").exists() and not (out / H.ITEMS_FILE).exists()
