"""traces/store.py (resumable trace file), traces/filters.py and the `filter` stage."""

from __future__ import annotations

import pytest

from reasondistill.artifacts import read_traces
from reasondistill.errors import ReasonDistillError
from reasondistill.records import Trace, read_jsonl, write_jsonl_atomic
from reasondistill.stages.base import StageContext
from reasondistill.stages.filter import FilterConfig, FilterStage
from reasondistill.traces.filters import filter_traces
from reasondistill.traces.store import TraceStore


def _t(eid: str, sample: int, score: float | None = 1.0, rationale: str | None = "r") -> Trace:
    return Trace(
        example_id=eid,
        teacher="t",
        sample=sample,
        prompt="p",
        completion="c",
        score=score,
        rationale=rationale,
        answer="1",
    )


def test_store_resume_no_duplicates(tmp_path):
    path = tmp_path / "traces.jsonl"
    with TraceStore(path) as store:
        assert store.append([_t("a", 0), _t("a", 1), _t("b", 0)]) == 3
    store = TraceStore(path)
    assert store.done() == {("a", 0), ("a", 1), ("b", 0)}
    assert store.append([_t("a", 0), _t("b", 0), _t("b", 1)]) == 1  # only the missing one
    assert store.append([_t("b", 1)]) == 0
    store.close()
    assert [(t.example_id, t.sample) for t in TraceStore(path).read()] == [
        ("a", 0),
        ("a", 1),
        ("b", 0),
        ("b", 1),
    ]


def test_store_tolerates_torn_last_line(tmp_path):
    path = tmp_path / "traces.jsonl"
    with TraceStore(path) as store:
        store.append([_t("a", 0), _t("a", 1), _t("b", 0)])
    with open(path, "a", encoding="utf-8") as f:
        f.write('{"example_id": "b", "sample": 1, "tea')  # killed mid-write
    store = TraceStore(path)
    assert store.done() == {("a", 0), ("a", 1), ("b", 0)}
    assert store.append([_t("b", 1)]) == 1  # the torn record is rewritten whole
    store.close()
    rows = list(read_jsonl(path))
    assert len(rows) == 4 and path.read_text().endswith("\n")


def test_finished_files_refuse_a_torn_last_line_resumable_ones_skip_it(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text('{"a": 1}\n{"a": 2, "b')  # a finished output cut short
    with pytest.raises(ReasonDistillError, match=r"rows.jsonl, line 2: torn last line"):
        list(read_jsonl(path))
    assert list(read_jsonl(path, torn_tail_ok=True)) == [{"a": 1}]  # a resumable writer's own file
    path.write_text('{"a": 1}\n{"a": 2}')  # a whole record without its final newline is whole
    assert list(read_jsonl(path)) == [{"a": 1}, {"a": 2}]
    path.write_text('{"a": 1}\nnot json\n{"a": 3}\n')  # only the last line may be torn, and only opted in
    with pytest.raises(ReasonDistillError, match=r"line 2: invalid JSON"):
        list(read_jsonl(path, torn_tail_ok=True))
    path.write_bytes(b'{"a": 1}\n[1]\n')
    with pytest.raises(ReasonDistillError, match=r"line 2: expected a JSON object, got list"):
        list(read_jsonl(path))
    path.write_bytes(b'{"a": 1}\n{"a": "caf\xe9"}\n')
    with pytest.raises(ReasonDistillError, match=r"rows.jsonl, line 2: not UTF-8 text \(byte 0xe9 at column 11\)"):
        list(read_jsonl(path))


def test_stage_inputs_are_read_strictly_and_name_the_bad_line(tmp_path):
    gen = tmp_path / "gen"
    gen.mkdir()
    write_jsonl_atomic(gen / "traces.jsonl", TRACES)
    with open(gen / "traces.jsonl", "a", encoding="utf-8") as f:
        f.write('{"example_id": "d", "sa')
    with pytest.raises(ReasonDistillError, match=r"traces.jsonl, line 7: torn last line"):
        read_traces(gen)  # what filter and format read: a finished generate stage's traces
    write_jsonl_atomic(gen / "traces.jsonl", [*TRACES[:2], {"example_id": "x"}])
    with pytest.raises(ReasonDistillError, match=r"traces.jsonl, line 3: not a valid Trace row: teacher: Field required"):
        read_traces(gen)


def test_generation_progress_counts_traces_with_rate_and_eta(tmp_path, capsys):
    path = tmp_path / "traces.jsonl"
    with TraceStore(path) as store:
        store.append([_t("a", 0)])
    with TraceStore(path) as store:  # a resumed run: the bar starts at what is on disk
        store.track(4, "traces: generate")
        store.append([_t("a", 0), _t("b", 0)])
        store.append([_t("c", 0), _t("d", 0)])
    err = capsys.readouterr().err
    assert "traces: generate" in err and "4/4" in err and "trace/s" in err and "<" in err  # rate, ETA


def test_store_missing_file_is_empty(tmp_path):
    store = TraceStore(tmp_path / "sub" / "traces.jsonl")
    assert store.done() == set() and store.read() == []
    store.append([_t("a", 0)])
    store.close()
    assert TraceStore(tmp_path / "sub" / "traces.jsonl").done() == {("a", 0)}


TRACES = [
    _t("a", 0, 0.0),
    _t("a", 1, 1.0),
    _t("a", 2, 1.0),
    _t("b", 0, 0.0),
    _t("c", 1, 1.0),
    _t("c", 0, None),
]


def _keys(ts: list[Trace]) -> list[tuple[str, int]]:
    return [(t.example_id, t.sample) for t in ts]


@pytest.mark.parametrize(
    "keep, one, expected",
    [
        ("correct", False, [("a", 1), ("a", 2), ("c", 1)]),
        ("correct", True, [("a", 1), ("c", 1)]),
        ("wrong", False, [("a", 0), ("b", 0)]),  # unscored (None) is not "wrong"
        ("all", False, _keys(TRACES)),
        ("all", True, [("a", 0), ("b", 0), ("c", 0)]),  # lowest sample, example order kept
    ],
)
def test_filter_semantics(keep, one, expected):
    assert _keys(filter_traces(TRACES, keep, one)) == expected


def test_filter_stage(tmp_path):
    gen, out = tmp_path / "gen", tmp_path / "out"
    gen.mkdir()
    out.mkdir()
    write_jsonl_atomic(gen / "traces.jsonl", TRACES)
    cfg = FilterConfig(kind="filter", traces="gen", max_rows=1)
    ctx = StageContext(name="f", cfg=cfg, out_dir=out, coords={}, dirs={"gen": gen})
    assert FilterStage().run(ctx) == {"kept": 1, "total": 6, "unparseable": 0, "examples": 1}
    assert _keys([Trace.model_validate(r) for r in read_jsonl(out / "traces.jsonl")]) == [("a", 1)]
    with pytest.raises(ValueError):
        FilterConfig(kind="filter", traces="gen", keep="best")


def test_filter_stage_drops_traces_without_rationale_for_every_arm(tmp_path):
    gen, out = tmp_path / "gen", tmp_path / "out"
    gen.mkdir()
    out.mkdir()
    write_jsonl_atomic(
        gen / "traces.jsonl", [_t("a", 0, rationale=None), _t("b", 0), _t("c", 0, rationale="")]
    )
    ctx = StageContext(
        name="f", cfg=FilterConfig(kind="filter", traces="gen"), out_dir=out, coords={}, dirs={"gen": gen}
    )
    assert FilterStage().run(ctx)["unparseable"] == 2
    assert _keys([Trace.model_validate(r) for r in read_jsonl(out / "traces.jsonl")]) == [("b", 0)]
    lenient = FilterConfig(kind="filter", traces="gen", require_rationale=False)
    ctx = StageContext(name="f", cfg=lenient, out_dir=out, coords={}, dirs={"gen": gen})
    assert FilterStage().run(ctx)["kept"] == 3
