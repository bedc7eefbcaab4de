"""traces/format.py (render / extract round trip) and the `format` stage."""

from __future__ import annotations

import random

import pytest

from reasondistill.errors import ReasonDistillError
from reasondistill.records import Trace, read_jsonl, write_jsonl_atomic
from reasondistill.stages.base import StageContext
from reasondistill.stages.format import FormatConfig, FormatStage, Item, build_rows
from reasondistill.traces.format import (
    PLACEMENTS,
    extract_answer,
    render_completion,
    render_prompt,
    split_completion,
)
from reasondistill.traces.templates import TEMPLATES, build_template, read_template_record

# Pieces chosen to collide with the format's own markers, whitespace and non-ASCII.
PIECES = [
    "a",
    "Z",
    "7",
    " ",
    "  ",
    "\n",
    "\t",
    ":",
    "Answer",
    "Answer:",
    "Reasoning:",
    "Reasoning: ",
    "é",
    "∑",
    "-",
]


def _rand_text(rng: random.Random, max_pieces: int = 8) -> str:
    return "".join(rng.choice(PIECES) for _ in range(rng.randint(0, max_pieces)))


def _rand_answer(rng: random.Random) -> str:
    return _rand_text(rng).replace("\n", " ").strip()


def test_round_trip_property_all_placements():
    rng = random.Random(0)
    checked = 0
    for _ in range(3000):
        a, r = _rand_answer(rng), _rand_text(rng)
        for placement in PLACEMENTS:
            if placement != "none" and "\nAnswer:" in r:
                with pytest.raises(ValueError):
                    render_completion(a, r, placement)
                continue
            text = render_completion(a, r, placement)
            assert extract_answer(text) == a, (a, r, placement)
            assert split_completion(text) == (None if placement == "none" else r, a), (a, r, placement)
            checked += 1
    assert checked > 6000


def test_exact_renderings():
    assert render_prompt("2+3?") == "Question: 2+3?\n"
    assert render_completion("5", "2 plus 3", "none") == "Answer: 5"
    assert render_completion("5", "2 plus 3", "before") == "Reasoning: 2 plus 3\nAnswer: 5"
    assert render_completion("5", "2 plus 3", "after") == "Answer: 5\nReasoning: 2 plus 3"


@pytest.mark.parametrize(
    "answer, rationale, placement",
    [("1\n2", "r", "none"), (" 5", "r", "after"), ("5", "x\nAnswer: 6", "before"), ("5", None, "after")],
)
def test_render_rejects_what_would_not_round_trip(answer, rationale, placement):
    with pytest.raises(ValueError):
        render_completion(answer, rationale, placement)


def test_extract_answer_on_free_text():
    assert extract_answer("let me think\nAnswer:  42 \nmore\nAnswer: 7") == "42"  # first answer line
    assert extract_answer("the Answer: 3") is None  # must start a line
    assert extract_answer("no answer here") is None
    assert extract_answer("Answer:") == ""
    assert split_completion("just rambling") == (None, None)
    assert split_completion("think hard\nAnswer: 3\n") == ("think hard", "3")


def test_split_completion_takes_the_first_answer_line_stripped_on_both_sides():
    # Rendered completions never hold two answer lines or padded answers (the round-trip test
    # cannot tell first from last, or strip from lstrip); a model's free generation can.
    assert split_completion("Reasoning: r\nAnswer: 5\nAnswer: 6") == ("r", "5")
    assert split_completion("Answer: 5\nAnswer: 6") == ("Answer: 6", "5")
    assert split_completion("Answer:  7 \t\nReasoning: r") == ("r", "7")
    assert split_completion("Reasoning: r\nAnswer: 8  ") == ("r", "8")


def _ctx(tmp_path, cfg, dirs) -> StageContext:
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    return StageContext(name="fmt", cfg=cfg, out_dir=out, coords={}, dirs=dirs)


def _trace(eid: str, sample: int = 0, answer: str | None = "5", rationale: str | None = "because") -> Trace:
    return Trace(
        example_id=eid,
        teacher="program",
        sample=sample,
        prompt=f"Question: {eid}?\n",
        completion="",
        rationale=rationale,
        answer=answer,
        score=1.0,
    )


@pytest.mark.parametrize("placement", PLACEMENTS)
def test_format_stage_from_traces(tmp_path, placement):
    gen = tmp_path / "gen"
    gen.mkdir()
    write_jsonl_atomic(gen / "traces.jsonl", [_trace("a"), _trace("b", answer=None), _trace("c")])
    cfg = FormatConfig(kind="format", traces="gen", placement=placement, max_rows=5)
    summary = FormatStage().run(_ctx(tmp_path, cfg, {"gen": gen}))
    rows = list(read_jsonl(tmp_path / "out" / "rows.jsonl"))
    assert summary["rows"] == 2  # the trace without an answer teaches nothing
    assert [r["example_id"] for r in rows] == ["a", "c"]
    assert rows[0]["prompt"] == "Question: a?\n"
    assert rows[0]["completion"] == render_completion("5", "because", placement)


def test_format_config_needs_exactly_one_input():
    with pytest.raises(ValueError, match="exactly one"):
        FormatConfig(kind="format", placement="none")
    with pytest.raises(ValueError, match="exactly one"):
        FormatConfig(kind="format", traces="g", source={"stage": "d", "split": "train"})


def test_build_rows_names_bad_example_and_respects_max_rows():
    cfg = FormatConfig(kind="format", traces="g", placement="after", max_rows=2)
    items = [Item("e1", "1", "1", "r"), Item("e2", "2", "2", "r"), Item("e3", "3", "3", "r")]
    assert [r["example_id"] for r in build_rows(items, cfg)] == ["e1", "e2"]
    assert build_rows(items, cfg)[0]["prompt"] == "Question: 1\n"
    with pytest.raises(ReasonDistillError, match="'e2'"):
        build_rows([items[0], Item("e2", "2", "2", None)], cfg)
    # placement none never needs a rationale
    none_cfg = FormatConfig(kind="format", traces="g", placement="none")
    assert build_rows([Item("e2", "Q", "2", None)], none_cfg)[0]["completion"] == "Answer: 2"


@pytest.mark.parametrize("written", TEMPLATES.names())
@pytest.mark.parametrize("wanted", TEMPLATES.names())
def test_traces_written_under_one_template_are_rerendered_under_another(tmp_path, written, wanted):
    """The question comes back from whatever template's prompt a teacher wrote (question_of), so a
    chat-prompted teacher can teach a plain student and the other way round."""
    src, dst = build_template(TEMPLATES.config(written)()), build_template(TEMPLATES.config(wanted)())
    gen = tmp_path / "gen"
    gen.mkdir()
    traces = [_trace(e).model_copy(update={"prompt": src.prompt(f"{e}?")}) for e in ("a", "b")]
    write_jsonl_atomic(gen / "traces.jsonl", [t.model_dump() for t in traces])
    cfg = FormatConfig(kind="format", traces="gen", placement="before", template={"kind": wanted})
    summary = FormatStage().run(_ctx(tmp_path, cfg, {"gen": gen}))
    rows = list(read_jsonl(tmp_path / "out" / "rows.jsonl"))
    assert summary["template"] == wanted
    assert rows[1] == {"prompt": dst.prompt("b?"), "completion": dst.completion("5", "because", "before"),
                       "example_id": "b"}  # fmt: skip
    assert read_template_record(tmp_path / "out") == cfg.template.model_dump(mode="json")


def test_a_trace_prompt_no_template_made_is_named(tmp_path):
    gen = tmp_path / "gen"
    gen.mkdir()
    write_jsonl_atomic(gen / "traces.jsonl", [_trace("a").model_copy(update={"prompt": "Q: a\n"})])
    cfg = FormatConfig(kind="format", traces="gen", placement="none")
    with pytest.raises(ReasonDistillError, match="trace of 'a' \\(sample 0\\): no prompt template"):
        FormatStage().run(_ctx(tmp_path, cfg, {"gen": gen}))
    assert not (tmp_path / "out" / "rows.jsonl").exists()
