"""The `cot_collection` task: CoT-Collection rows -> examples -> KD rows with and without rationales."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reasondistill.errors import ReasonDistillError
from reasondistill.records import read_jsonl
from reasondistill.stages import StageContext
from reasondistill.stages.data import DataConfig, DataStage
from reasondistill.stages.format import FormatConfig, FormatStage
from reasondistill.tasks import build_task

SAMPLE = Path(__file__).resolve().parents[1] / "fixtures" / "cot_collection_sample.json"


def load(path, **cfg) -> list:
    task = build_task("cot_collection", {"path": str(path), **cfg})
    task.check()
    return list(task.examples("train", None, seed=0))


def test_released_mapping_format():
    exs = load(SAMPLE)
    assert len(exs) == 8
    first = exs[0]
    assert first.question == "Is 17 a prime number? Options: yes, no" and first.answer == "yes"
    assert first.rationale == "17 has no divisors other than 1 and itself."
    assert first.metadata["cot_task"] == "math_qa_mini" and first.metadata["row"] == "row 'cot_0001'"
    assert {"source", "index", "difficulty"} <= set(first.metadata)
    # instruction-style row: instruction + input form the question
    assert (
        exs[6].question
        == "Answer the question about the sentence.\nSentence: Ada gave Bo a book. Question: who received the book?"
    )
    assert [e.answer for e in load(SAMPLE, tasks=["nli_mini"])] == ["no", "no"]


def test_list_and_jsonl_formats_agree(tmp_path):
    rows = list(json.loads(SAMPLE.read_text()).values())
    (tmp_path / "rows.json").write_text(json.dumps(rows))
    (tmp_path / "rows.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    want = [(e.question, e.rationale, e.answer) for e in load(SAMPLE)]
    for name in ("rows.json", "rows.jsonl"):
        assert [(e.question, e.rationale, e.answer) for e in load(tmp_path / name)] == want


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        ({"source": "q", "rationale": "r", "target": "a\nb"}, "spans several lines"),
        ({"source": "q", "rationale": "r"}, "needs a non-empty string 'target'"),
        ({"rationale": "r", "target": "a"}, "needs a non-empty 'source'"),
        ({"source": "q", "rationale": 3, "target": "a"}, "'rationale' must be a string or null"),
    ],
)
def test_bad_rows_fail_or_are_skipped(tmp_path, row, problem):
    good = {"source": "q0", "rationale": "r0", "target": "a0"}
    path = tmp_path / "rows.jsonl"
    path.write_text(json.dumps(good) + "\n" + json.dumps(row) + "\n")
    with pytest.raises(ReasonDistillError, match=f"rows.jsonl, line 2: .*{problem}"):
        load(path)
    assert [e.answer for e in load(path, bad_rows="skip")] == ["a0"]


def test_file_errors(tmp_path):
    with pytest.raises(ReasonDistillError, match="no such file"):
        load(tmp_path / "missing.json")
    (tmp_path / "x.jsonl").write_text('{"source": "q", "target": "a"}\n{oops\n')
    with pytest.raises(ReasonDistillError, match="line 2: invalid JSON"):
        load(tmp_path / "x.jsonl")
    (tmp_path / "s.json").write_text('"a string"')
    with pytest.raises(ReasonDistillError, match="expected a list of rows or a mapping"):
        load(tmp_path / "s.json")


def test_verify_is_exact():
    task = build_task("cot_collection", {"path": str(SAMPLE)})
    exs = load(SAMPLE)
    assert task.verify(exs[2], " 36 ") and task.verify(exs[2], "36.0")  # numbers compare as numbers
    for wrong in ("Yes", "yes.", "The answer is yes", "", None):
        assert not task.verify(exs[0], wrong)


def test_data_and_format_stages_make_rows_with_and_without_rationale(tmp_path):
    dirs = {n: tmp_path / n for n in ("data", "cot", "plain")}
    for d in dirs.values():
        d.mkdir()
    data = DataConfig.model_validate({"kind": "data", "task": "cot_collection", "config": {"path": str(SAMPLE)},
                                      "splits": {"test": {"n": 2}, "train": {}}})  # fmt: skip
    DataStage().run(StageContext("data", data, dirs["data"], {}, dirs))
    for name, placement in (("cot", "before"), ("plain", "none")):
        cfg = FormatConfig(kind="format", source={"stage": "data", "split": "train"}, placement=placement)
        FormatStage().run(StageContext(name, cfg, dirs[name], {}, dirs))
    cot, plain = (list(read_jsonl(dirs[n] / "rows.jsonl")) for n in ("cot", "plain"))
    assert len(cot) == len(plain) == 6
    assert cot[0]["prompt"] == plain[0]["prompt"] == "Question: What is 12 times 3?\n"
    assert cot[0]["completion"] == "Reasoning: 12 times 3 is 12 + 12 + 12 = 36.\nAnswer: 36"
    assert plain[0]["completion"] == "Answer: 36"
