"""The four ReDis induction tasks (tasks/induction.py and its subclasses): the original files and
their exact 90/10 split, procedural generation with known rules, verification modes, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reasondistill.errors import ReasonDistillError
from reasondistill.redis.rules import book_for
from reasondistill.tasks import build_task
from reasondistill.tasks.induction import answer_matches

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "redis"
TASK_NAMES = ("arc_1d", "list_functions", "acre", "mini_scan")
# The idx order of the tasks in the authors' published test files (data/acre/acre_test.jsonl,
# data/list_func/list_function_test.jsonl (first 10 of 25), data/1d_arc/1D_arc_test.jsonl (first
# 10 of 91)): random.seed(10); random.shuffle(tasks); the last len - int(0.9 len) tasks.
PUBLISHED_TEST_ORDER = {
    100: [35, 62, 59, 26, 1, 99, 61, 54, 4, 73],
    250: [107, 11, 92, 190, 63, 19, 83, 240, 133, 248],
    901: [791, 794, 115, 818, 615, 383, 580, 393, 153, 82],
}


def file_task(name: str, path: Path, **config):
    return build_task(name, {"path": str(path), **config})


def groups(examples) -> list:
    return list(dict.fromkeys(e.metadata["idx"] for e in examples))


@pytest.mark.parametrize("n", sorted(PUBLISHED_TEST_ORDER))
def test_file_split_reproduces_the_authors_test_sets(n, tmp_path):
    line = (FIXTURES / "acre.jsonl").read_text().splitlines()[0]
    path = tmp_path / "tasks.jsonl"
    path.write_text("".join(json.dumps({**json.loads(line), "idx": i}) + "\n" for i in range(n)))
    task = file_task("acre", path)
    test, train = groups(task.examples("test", None, 0)), groups(task.examples("train", None, 0))
    assert test[:10] == PUBLISHED_TEST_ORDER[n]
    assert len(test) == n - int(0.9 * n) and sorted(test + train) == list(range(n))


@pytest.mark.parametrize("name", TASK_NAMES)
def test_original_format_files_load_with_their_idx(name):
    task = file_task(name, FIXTURES / f"{name}.jsonl")
    task.check()
    rows = [json.loads(line) for line in (FIXTURES / f"{name}.jsonl").read_text().splitlines()]
    examples = list(task.examples("train", None, 0)) + list(task.examples("test", None, 0))
    assert sum(len(r["test"]) for r in rows) == len(examples)  # every query, once
    by_idx = {r["idx"]: r for r in rows}
    for ex in examples:
        row = by_idx[ex.metadata["idx"]]
        assert [d.output for d in ex.demonstrations] == [d["output"] for d in row["train"]]
        assert task.verify(ex, ex.answer) and not task.verify(ex, ex.answer + " x")
        assert ex.demonstrations[0].input in ex.question and ex.metadata["query"] in ex.question
    if name == "acre":  # object lists appear as the authors' prompts show them; queries keep their type
        assert examples[0].demonstrations[0].input.startswith("['") and "type" in examples[0].metadata


def test_data_stage_offers_train_and_test_of_a_file(tmp_path):
    from reasondistill.config import StageContext
    from reasondistill.records import Example, read_records
    from reasondistill.stages.data import DataConfig, DataStage

    cfg = DataConfig.model_validate({"kind": "data", "task": "acre", "config": {"path": str(FIXTURES / "acre.jsonl")},
                                     "splits": {"test": {}, "train": {}}})  # fmt: skip
    DataStage().run(StageContext("data", cfg, tmp_path, {}, {}))
    test, train = (read_records(tmp_path / f"{s}.jsonl", Example) for s in ("test", "train"))
    assert len(groups(test)) == 1 and len(groups(train)) == 9  # 10 tasks: int(0.9 * 10) = 9 train


@pytest.mark.parametrize("name", TASK_NAMES)
def test_procedural_tasks_carry_a_rule_that_explains_them(name):
    task, book = build_task(name, {}), book_for(name)
    examples = list(task.examples("train", 24, seed=3))
    assert [e.question for e in examples] == [e.question for e in task.examples("train", 24, seed=3)]
    assert {e.question for e in examples}.isdisjoint(e.question for e in task.examples("test", 24, seed=3))
    for ex in examples:
        rule = ex.metadata["rule"]
        assert all(book.apply(rule, d.input) == d.output for d in ex.demonstrations)
        assert book.apply(rule, ex.metadata["query"]) == ex.answer
        assert task.verify(ex, ex.answer) and ex.rationale and "\n" not in ex.rationale
        queries = [q for q in examples if q.metadata["group"] == ex.metadata["group"]]
        assert all(q.demonstrations == ex.demonstrations for q in queries)


@pytest.mark.parametrize(
    ("kind", "match", "answer", "gold", "ok"),
    [
        ("list", "normalised", "[1,2, 3]", "[1, 2, 3]", True),
        ("list", "normalised", "[1, 2, 3] is the answer", "[1, 2, 3]", False),
        ("list", "exact", "so: [1, 2, 3] is it", "[1, 2, 3]", True),  # the authors' first [...]
        ("list", "exact", "[1,2, 3]", "[1, 2, 3]", False),
        ("word", "normalised", " on ", "on", True),
        ("word", "normalised", "On", "on", False),
        ("word", "exact", "On", "on", False),
        ("tokens", "normalised", "RED  RED BLUE", "RED RED BLUE", True),
        ("tokens", "normalised", "red RED BLUE", "RED RED BLUE", False),
        ("tokens", "exact", "RED  RED BLUE", "RED RED BLUE", False),
        ("tokens", "exact", "RED RED BLUE\n", "RED RED BLUE", True),
        ("list", "normalised", None, "[1]", False),
    ],
)
def test_verification_modes(kind, match, answer, gold, ok):
    assert answer_matches(kind, match, answer, gold) is ok


BAD = {
    "malformed": ("arc_1d", '{"idx": 0, "train": [', "line 2: invalid JSON"),
    "no_demos": ("arc_1d", '{"idx": 1, "train": [], "test": [{"input": "[1]", "output": "[1]"}]}',
                 "line 2: 'train': no demonstrations"),
    "grid_sizes": ("arc_1d", '{"idx": 2, "train": [{"input": "[1, 2]", "output": "[1]"}], "test": [{"input": "[1]", "output": "[1]"}]}',
                   "line 2: mismatched demonstration shapes: train[0]: input grid has 2 cells, output 1"),
    "input_kinds": ("mini_scan", '{"idx": 3, "train": [{"input": ["dax"], "output": "RED"}], "test": [{"input": "dax", "output": "RED"}]}',
                    "line 2: mismatched demonstration shapes: inputs are list and str"),
    "no_output": ("acre", '{"idx": 4, "train": [{"input": ["a"]}], "test": [{"input": ["a"], "output": "on"}]}',
                  "line 2: train[0]: expected {input, output}"),
    "bad_light": ("acre", '{"idx": 5, "train": [{"input": ["a"], "output": "maybe"}], "test": [{"input": ["a"], "output": "on"}]}',
                  "line 2: mismatched demonstration shapes: train[0]: output must be one of on, off, undetermined"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_file_lines_name_the_file_and_line(case, tmp_path):
    name, line, message = BAD[case]
    path = tmp_path / f"{name}.jsonl"
    path.write_text((FIXTURES / f"{name}.jsonl").read_text().splitlines()[0] + "\n" + line + "\n")
    with pytest.raises(ReasonDistillError) as e:
        file_task(name, path).check()
    assert str(path) in str(e.value) and message in str(e.value)


def test_other_file_misuse_is_refused(tmp_path):
    with pytest.raises(ReasonDistillError, match="splits train and test"):
        list(file_task("mini_scan", FIXTURES / "mini_scan.jsonl").examples("dev", None, 0))
    with pytest.raises(ReasonDistillError, match="demos: procedural knobs do nothing with `path`"):
        build_task("list_functions", {"path": str(FIXTURES / "list_functions.jsonl"), "demos": 3})
    with pytest.raises(ReasonDistillError, match="no such file"):
        file_task("acre", tmp_path / "missing.jsonl").check()
    (tmp_path / "latin1.jsonl").write_bytes(b'{"idx": 0, "train": [{"input": "caf\xe9"}]}\n')
    with pytest.raises(ReasonDistillError, match="line 1: not UTF-8"):
        file_task("acre", tmp_path / "latin1.jsonl").check()
    with pytest.raises(ReasonDistillError, match="families: .*not supported: block_touch_dot"):
        build_task("arc_1d", {"families": ["block_touch_dot"]})


@pytest.mark.parametrize(
    "line", ["{[1]: 2}", "[" * 100000 + "]" * 100000, "-" * 100000 + "1"], ids=["unhashable", "deep", "unary"]
)
def test_hostile_literals_name_the_file_and_line(line, tmp_path):
    path = tmp_path / "acre.jsonl"
    path.write_text((FIXTURES / "acre.jsonl").read_text().splitlines()[0] + "\n" + line + "\n")
    with pytest.raises(ReasonDistillError, match=r"acre.jsonl, line 2: invalid JSON"):
        file_task("acre", path).check()


def test_rule_parsers_refuse_hostile_literals():
    from reasondistill.redis.rules import RuleError
    from reasondistill.redis.rules.acre import objects
    from reasondistill.redis.rules.base import parse_list

    for bad in ("{[1]: 2}", "[" * 100000 + "]" * 100000, "-" * 100000 + "1"):
        with pytest.raises(RuleError):
            objects(bad)
        with pytest.raises(RuleError):
            parse_list(bad)


@pytest.mark.parametrize("second", ['"idx": 7', None], ids=["same_idx", "missing_idx"])
def test_a_duplicate_idx_is_refused_naming_file_and_lines(second, tmp_path):
    row = json.loads((FIXTURES / "acre.jsonl").read_text().splitlines()[0])
    first = {**row, "idx": 7 if second else 1}  # line 2 without idx defaults to idx 1
    other = {k: v for k, v in row.items() if k != "idx"}
    if second:
        other["idx"] = 7
    path = tmp_path / "acre.jsonl"
    path.write_text(json.dumps(first) + "\n" + json.dumps(other) + "\n")
    with pytest.raises(ReasonDistillError, match=r"acre.jsonl, line 2: duplicate idx (7|1) \(also line 1"):
        file_task("acre", path).check()


def test_a_procedural_config_that_cannot_fill_a_task_is_a_config_error():
    from reasondistill.redis.rules.arc_1d import RG_SPECS

    family = "move_4pix_solid_left"  # 81 distinct grids of size 8
    assert family in RG_SPECS
    arc = build_task("arc_1d", {"families": [family], "min_size": 8, "max_size": 8, "demos": 100})
    with pytest.raises(ReasonDistillError, match=rf"task arc_1d: family '{family}' at size 8 .*config.demos"):
        next(iter(arc.examples("train", 1, 0)))
    lf = build_task("list_functions", {"functions": [0], "demos": 5000})
    with pytest.raises(ReasonDistillError, match=r"task list_functions: generator \(function\) 0 .*config.demos"):
        next(iter(lf.examples("train", 1, 0)))


def test_file_tasks_are_not_deduplicated_across_splits(tmp_path):
    """Two tasks of a file with the same question: the authors' split keeps both (one per split)."""
    from reasondistill.config import StageContext
    from reasondistill.records import Example, read_records
    from reasondistill.stages.data import DataConfig, DataStage

    row = json.loads((FIXTURES / "acre.jsonl").read_text().splitlines()[0])
    path = tmp_path / "twins.jsonl"
    path.write_text("".join(json.dumps({**row, "idx": i}) + "\n" for i in range(2)))  # cut: 1 train, 1 test
    cfg = DataConfig.model_validate({"kind": "data", "task": "acre", "config": {"path": str(path)},
                                     "splits": {"train": {}, "test": {}}})  # fmt: skip
    out = tmp_path / "data"
    out.mkdir()
    DataStage().run(StageContext("data", cfg, out, {}, {}))
    train, test = (read_records(out / f"{s}.jsonl", Example) for s in ("train", "test"))
    assert len(train) == len(test) == len(row["test"])
    assert {e.question for e in train} == {e.question for e in test}
