"""Tasks: one contract test over the whole registry, then each task's own behaviour."""

from __future__ import annotations

import json
import re
from decimal import Decimal, InvalidOperation
from pathlib import Path

import pytest

from reasondistill.errors import ReasonDistillError
from reasondistill.records import Example
from reasondistill.tasks import TASKS, build_task, item_seed, load_examples, load_task

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
GSM8K = str(FIXTURES / "gsm8k_sample.jsonl")
PLAIN = str(FIXTURES / "plain_sample.jsonl")

# Every registered task needs at least one case here (test_every_task_has_a_case).
CASES: dict[str, list[dict]] = {
    "arithmetic": [{"digits": 2, "terms": 3}, {"digits": 1, "terms": 4, "ops": "+-"}],
    "multiplication": [{"digits_a": 2, "digits_b": 2}],
    "jsonl": [
        {"path": GSM8K, "answer_format": "gsm8k"},
        {"path": PLAIN, "rationale_field": "rationale"},
    ],
    "reasoning_gym": [{"dataset": "basic_arithmetic"}, {"dataset": "chain_sum"}, {"dataset": "leg_counting"}],
    "bbh": [{"path": str(FIXTURES / "bbh" / "tasks")}],
    "cot_collection": [{"path": str(FIXTURES / "cot_collection_sample.json")}],
    # ReDis induction tasks: procedural, and the original file format (tests/fixtures/redis).
    "arc_1d": [{"min_size": 8, "max_size": 12}, {"path": str(FIXTURES / "redis" / "arc_1d.jsonl")}],
    "list_functions": [{"demos": 4, "queries": 2}, {"path": str(FIXTURES / "redis" / "list_functions.jsonl")}],
    "acre": [{}, {"path": str(FIXTURES / "redis" / "acre.jsonl"), "match": "exact"}],
    "mini_scan": [{"queries": 3}, {"path": str(FIXTURES / "redis" / "mini_scan.jsonl")}],
}
PARAMS = [
    pytest.param(name, cfg, id=f"{name}-{i}") for name, cfgs in CASES.items() for i, cfg in enumerate(cfgs)
]


def wrong_answers(gold: str) -> list[str]:
    """Near misses a lenient grader might accept: extra characters, embedding, another number."""
    out = [gold + "1", "1" + gold, f"The answer is {gold}.", f"{gold} or {gold}1", gold[:-1] or "x"]
    try:
        out.append(str(Decimal(gold.replace(",", "")) + 1))
    except InvalidOperation:
        out.append(gold.upper() if gold.upper() != gold else gold.lower())
    return [w for w in out if w.strip() != gold.strip()]


def test_every_task_has_a_case():
    assert set(TASKS) <= set(CASES), f"add a contract case for {set(TASKS) - set(CASES)}"


@pytest.mark.parametrize("name,cfg", PARAMS)
def test_contract_verify_is_exact(name, cfg):
    task = build_task(name, cfg)
    for ex in task.examples("test", 5, seed=3):
        # Later stages read examples back from JSONL and rebuild the task from task.json.
        stored = Example.model_validate(json.loads(json.dumps(ex.model_dump())))
        rebuilt = build_task(name, cfg)
        for t, e in ((task, ex), (rebuilt, stored)):
            assert t.verify(e, e.answer), (e.question, e.answer)
            assert t.verify(e, f"  {e.answer}\n")
            for wrong in wrong_answers(e.answer):
                assert not t.verify(e, wrong), (e.answer, wrong)
            assert not t.verify(e, None) and not t.verify(e, "") and not t.verify(e, "   ")


@pytest.mark.parametrize("name,cfg", PARAMS)
def test_contract_items(name, cfg):
    task = build_task(name, cfg)
    items = list(task.examples("train", 6, seed=5))
    assert len(items) == 6
    assert list(task.examples("train", 6, seed=5)) == items  # same seed, same items
    assert len({e.id for e in items}) == 6
    for i in (0, 3, 5):  # any item regenerates alone
        assert task.example("train", i, seed=5) == items[i]
    for e in items:
        assert e.task == name and e.split == "train" and e.answer.strip()
        assert {"source", "index", "difficulty"} <= set(e.metadata)
        json.dumps(e.metadata)  # JSON-serializable provenance
    if task.procedural:
        assert [e.question for e in task.examples("train", 6, seed=6)] != [e.question for e in items]
        assert [e.question for e in task.examples("other", 6, seed=5)] != [e.question for e in items]


def test_item_seed_is_stable_across_processes():
    # A literal value: hash() would differ per process (PYTHONHASHSEED).
    assert item_seed(0, "train", 0) == item_seed(0, "train", 0) != item_seed(0, "train", 1)
    assert item_seed(0, "train", 0) == 6336042670216181205


def test_unknown_task_lists_allowed():
    with pytest.raises(ReasonDistillError, match="unknown task 'arith'; allowed: acre, arc_1d, arithmetic, bbh, cot_collection"):
        build_task("arith", {})


# --- arithmetic ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cfg,message",
    [
        ({"digits": 0}, "task arithmetic: config.digits: Input should be greater than or equal to 1"),
        ({"terms": 1}, "task arithmetic: config.terms: Input should be greater than or equal to 2"),
        ({"ops": "*"}, "task arithmetic: config.ops: must be '+', '-' or '+-' (got '*')"),
        ({"digit": 2}, "task arithmetic: config.digit: unknown key; did you mean `digits`? allowed: digits, ops, terms"),
    ],
)
def test_arithmetic_bad_config_one_line(cfg, message):
    with pytest.raises(ReasonDistillError) as err:
        build_task("arithmetic", cfg)
    assert str(err.value) == message


@pytest.mark.parametrize(
    "cfg", [{"digits": 2, "terms": 3}, {"digits": 3, "terms": 4, "ops": "+-"}, {"ops": "-"}]
)
def test_arithmetic_format_and_rationale(cfg):
    task = build_task("arithmetic", cfg)
    c = task.config
    for ex in task.examples("t", 50, seed=0):
        assert re.fullmatch(r"\d+([+-]\d+)+", ex.question)
        nums = [int(x) for x in re.findall(r"\d+", ex.question)]
        assert len(nums) == c.terms and all(len(str(x)) == c.digits for x in nums if c.digits > 1)
        steps = ex.rationale.split(", ")
        assert len(steps) == c.terms - 1
        total = nums[0]
        for step, x in zip(steps, nums[1:], strict=True):
            m = re.fullmatch(r"(-?\d+)([+-])(\d+)=(-?\d+)", step)
            assert m and int(m[1]) == total and int(m[3]) == x
            total = total + x if m[2] == "+" else total - x
            assert int(m[4]) == total
        assert ex.answer == str(total) == str(eval(ex.question))
        assert ex.metadata["difficulty"] == {"terms": c.terms, "digits": c.digits, "ops": c.ops}


def test_arithmetic_example_and_negative_results():
    ex = build_task("arithmetic", {"digits": 2, "terms": 3}).example("test_id", 0, seed=0)
    assert (ex.question, ex.rationale, ex.answer) == ("22+62+30", "22+62=84, 84+30=114", "114")
    answers = [int(e.answer) for e in build_task("arithmetic", {"ops": "+-"}).examples("t", 100, seed=0)]
    assert min(answers) < 0 < max(answers)


def test_arithmetic_accepts_only_canonical_integers():
    task = build_task("arithmetic", {})
    ex = task.example("test_id", 0, seed=0)
    assert all(task.verify(ex, a) for a in ("114", " 114\n", "+114"))
    assert not any(task.verify(ex, a) for a in ("114.0", "0114", "1 14", "114!", "-114", "1_14", "١١٤"))


def test_multiplication_partial_products():
    task = build_task("multiplication", {"digits_a": 3, "digits_b": 3})
    for ex in task.examples("t", 30, seed=1):
        a, b = map(int, ex.question.split("*"))
        assert ex.answer == str(a * b)
        for step in ex.rationale.split(", "):
            lhs, rhs = step.split("=")
            assert eval(lhs) == int(rhs)
        assert ex.rationale.rsplit("=", 1)[1] == ex.answer


# --- reasoning_gym ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cfg,message",
    [
        (
            {"dataset": "chain_sums"},
            "config.dataset: unknown reasoning_gym dataset 'chain_sums'; e.g. chain_sum",
        ),
        (
            {"dataset": "chain_sum", "config": {"terms": 2}},
            "config.config: unknown key 'terms' for chain_sum; allowed: min_terms",
        ),
        ({"dataset": "chain_sum", "config": {"seed": 1}}, "config.config: 'seed' is set by reasondistill"),
        (
            {"dataset": "chain_sum", "config": {"min_terms": 0}},
            "rejected by reasoning_gym dataset chain_sum: min_terms must be positive",
        ),
        ({"dataset": "graph_color"}, "graph_color has no single reference answer"),
    ],
)
def test_reasoning_gym_bad_config(cfg, message):
    with pytest.raises(ReasonDistillError, match=re.escape(message)):
        build_task("reasoning_gym", cfg)


def test_reasoning_gym_no_partial_credit():
    task = build_task("reasoning_gym", {"dataset": "basic_arithmetic"})
    ex = task.example("test", 0, seed=0)
    ds, entry = task._scoring_entry(ex)
    longer = ex.answer + "0"
    assert 0 < ds.score_answer(longer, entry) < 1  # reasoning-gym's substring partial credit
    assert not task.verify(ex, longer)


def test_reasoning_gym_rejects_wrapped_answers_its_scorer_accepts():
    task = build_task("reasoning_gym", {"dataset": "gsm_symbolic"})
    ex = task.example("test", 0, seed=0)
    ds, entry = task._scoring_entry(ex)
    wrapped = f"The answer is {ex.answer}."
    assert ds.score_answer(wrapped, entry) == 1.0  # gsm_symbolic takes the first number
    assert task.verify(ex, ex.answer) and not task.verify(ex, wrapped)


def test_reasoning_gym_metadata_survives_json():
    # rearc compares boards as tuples; stored metadata comes back as lists, so scoring the
    # stored copy gives 0.05. verify regenerates the entry from provenance instead.
    task = build_task("reasoning_gym", {"dataset": "rearc"})
    ex = task.example("test", 0, seed=0)
    stored = Example.model_validate(json.loads(json.dumps(ex.model_dump())))
    assert task.verify(stored, stored.answer)
    ds, _ = task._scoring_entry(stored)
    as_stored = {
        "question": stored.question,
        "answer": stored.answer,
        "metadata": stored.metadata["rg_metadata"],
    }
    assert ds.score_answer(stored.answer, as_stored) < 1.0


def test_reasoning_gym_falls_back_to_stored_metadata():
    task = build_task("reasoning_gym", {"dataset": "chain_sum"})
    ex = task.example("test", 0, seed=0)
    moved = ex.model_copy(update={"metadata": {**ex.metadata, "rg_seed": ex.metadata["rg_seed"] + 1}})
    assert task.verify(moved, ex.answer) and not task.verify(moved, ex.answer + "1")


# --- jsonl --------------------------------------------------------------------------------


def test_jsonl_gsm8k_parsing():
    rows = list(build_task("jsonl", {"path": GSM8K, "answer_format": "gsm8k"}).examples("test", None, seed=0))
    assert len(rows) == 10
    assert rows[0].answer == "43"
    assert rows[0].rationale == "6 boxes of 8 jars is 6*8=48 jars.\nAfter breaking 5 she has 48-5=43 jars."
    assert rows[4].answer == "1200" and "<<" not in rows[4].rationale and "####" not in rows[4].rationale
    assert rows[0].metadata == {"source": GSM8K, "index": 0, "line": 1, "difficulty": {}}


def test_jsonl_verify_normalizes_numbers_only():
    task = build_task("jsonl", {"path": PLAIN})
    by_q = {e.question: e for e in task.examples("t", None, seed=0)}
    ten_k = by_q["What is ten thousand written with digits?"]
    assert all(task.verify(ten_k, a) for a in ("10000", "10,000", " 10000.0 ", "+10000"))
    assert not any(task.verify(ten_k, a) for a in ("1,0000", "10000 dollars", "100000"))
    capital = by_q["What is the capital of the fictional land of Orvia?"]
    assert task.verify(capital, " Tessel ") and not task.verify(capital, "tessel")
    assert capital.rationale is None  # rationale_field not set
    with_r = build_task("jsonl", {"path": PLAIN, "rationale_field": "rationale"}).example("t", 0, seed=0)
    assert with_r.rationale.startswith("The atlas")


@pytest.mark.parametrize(
    "lines,problem",
    [
        (['{"question": "a", "answer": "1"}', '{"question": "b", "answer": '], "line 2: invalid JSON"),
        (['{"question": "a", "answer": "1"}', "", '{"answer": "2"}'], "line 3: missing field 'question'"),
        (['{"question": "a", "answer": 1}'], "line 1: field 'answer' must be a non-empty string, got 1"),
        (['["a", "1"]'], "line 1: expected a JSON object, got list"),
    ],
)
def test_jsonl_bad_row_names_file_and_line(tmp_path, lines, problem):
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n")
    task = build_task("jsonl", {"path": str(path)})
    with pytest.raises(ReasonDistillError, match=re.escape(f"{path}, {problem}")):
        task.check()


def test_jsonl_gsm8k_without_marker(tmp_path):
    path = tmp_path / "g.jsonl"
    path.write_text('{"question": "q", "answer": "so 4"}\n')
    with pytest.raises(ReasonDistillError, match="line 1: no '#### <answer>' marker"):
        list(build_task("jsonl", {"path": str(path), "answer_format": "gsm8k"}).examples("t", None, 0))


def test_jsonl_config_errors(tmp_path):
    with pytest.raises(ReasonDistillError, match="config.path: no such file"):
        build_task("jsonl", {"path": str(tmp_path / "nope.jsonl")}).check()
    with pytest.raises(ReasonDistillError, match="rationale_field: must be unset with answer_format gsm8k"):
        build_task("jsonl", {"path": GSM8K, "answer_format": "gsm8k", "rationale_field": "r"})


# --- io -----------------------------------------------------------------------------------


def test_io_errors_name_what_exists(tmp_path):
    (tmp_path / "train.jsonl").write_text("")
    (tmp_path / "test.jsonl").write_text("")
    with pytest.raises(ReasonDistillError, match="no split 'dev' .*available: test, train"):
        load_examples(tmp_path, "dev")
    with pytest.raises(ReasonDistillError, match="no task.json"):
        load_task(tmp_path)
