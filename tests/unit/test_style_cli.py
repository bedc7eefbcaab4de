"""`reasondistill style analyze` (traces/style/cli.py): outputs, verdicts, and bad input (one
clear message naming file and line, exit 2, nothing half-written)."""

from __future__ import annotations

import argparse
import json

import pytest

from reasondistill.errors import ReasonDistillError
from reasondistill.traces.style.cli import add_style_parser, style_main


def style(*argv: str, capsys=None) -> tuple[int, str]:
    """Run `style ...` as the CLI does: a ReasonDistillError is one `error:` line and exit 2."""
    parser = argparse.ArgumentParser(prog="reasondistill")
    add_style_parser(parser.add_subparsers(dest="command", required=True))
    try:
        return style_main(parser.parse_args(["style", *argv])), ""
    except ReasonDistillError as e:
        return 2, f"error: {e}"


def write(path, lines: list[str | bytes]) -> str:
    path.write_bytes(b"".join((x if isinstance(x, bytes) else x.encode()) + b"\n" for x in lines))
    return str(path)


ROWS = [
    {"completion": "<think>\nHmm, 7+8. Wait, 7+8=15. Let me check: 8+7=15. So overall 15.\n</think>\n\nWait: \\boxed{15}",
     "correct": True, "gold": "15"},
    {"completion": "<think>\n7+8=16.\n</think>\n\n16", "correct": False, "gold": "15"},
    {"completion": "Okay. Maybe 3. The answer is 3.", "correct": None, "gold": "3"},
]  # fmt: skip


def test_analyze_writes_summary_profiles_and_charts(tmp_path, capsys):
    f = write(tmp_path / "t.jsonl", [json.dumps(r) for r in ROWS])
    out = tmp_path / "out"
    code, _ = style("analyze", f, "--out", str(out), "--correct-field", "correct")
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    groups = summary["groups"]
    assert {g: groups[g]["n"] for g in ("all", "correct", "wrong", "unknown")} == {
        "all": 3,
        "correct": 1,
        "wrong": 1,
        "unknown": 1,
    }
    assert (
        groups["correct"]["share_3of4_pivot_types"] == 1.0
        and groups["wrong"]["share_3of4_pivot_types"] == 0.0
    )
    assert all(
        0 <= g[k] <= 1 for g in groups.values() if g["n"] for k in g if k.startswith(("share_", "has_"))
    )
    profiles = [json.loads(x) for x in (out / "traces.jsonl").read_text().splitlines()]
    assert [p["line"] for p in profiles] == [1, 2, 3]
    # the <think> block was split off: the "Wait" after </think> is not counted
    assert profiles[0]["pivots"] == {"realization": 2, "verification": 1, "exploration": 0, "integration": 1}
    for png in ("style_pivots.png", "style_phases.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    printed = capsys.readouterr().out
    assert "≥3 of 4 pivot types" in printed and printed.strip() == (out / "summary.md").read_text().strip()


def test_verdicts_from_gold_answers(tmp_path):
    f = write(tmp_path / "t.jsonl", [json.dumps(r) for r in ROWS])
    code, _ = style("analyze", f, "--out", str(tmp_path / "o"), "--gold-field", "gold", "--no-charts")
    groups = json.loads((tmp_path / "o" / "summary.json").read_text())["groups"]
    # boxed 15 == 15; "16" != 15; "The answer is 3." (the last line) != "3": a free-text line is not an answer
    assert code == 0 and (groups["correct"]["n"], groups["wrong"]["n"], groups["unknown"]["n"]) == (1, 2, 0)
    rows = [{"text": "Wait, 2.", "pred": "2.0", "gold": "2"}, {"text": "Hmm.", "pred": "5", "gold": "2"}]
    f2 = write(tmp_path / "u.jsonl", [json.dumps(r) for r in rows])
    args = ("--text-field", "text", "--answer-field", "pred", "--gold-field", "gold", "--no-charts")
    assert style("analyze", f2, "--out", str(tmp_path / "p"), *args)[0] == 0
    groups = json.loads((tmp_path / "p" / "summary.json").read_text())["groups"]
    assert (groups["correct"]["n"], groups["wrong"]["n"]) == (1, 1)


@pytest.mark.parametrize(
    "lines, message",
    [
        (['{"completion": "ok"}', '{"completion": "x"'], r"t\.jsonl, line 2: invalid JSON"),
        (
            ['{"completion": "ok"}', '{"text": "no completion"}'],
            r"t\.jsonl, line 2: field 'completion' missing; fields: text",
        ),
        (['{"completion": 3}'], r"t\.jsonl, line 1: field 'completion' not a string \(int\)"),
        (['["a list"]'], r"t\.jsonl, line 1: expected a JSON object"),
        ([], r"t\.jsonl: no traces \(the file is empty\)"),
        (
            ['{"completion": "ok"}', b'{"completion": "caf\xe9"}'],
            r"t\.jsonl, line 2: not UTF-8 text \(byte 0xe9",
        ),
        (['{"completion": "ok", "correct": "yes"}'], r"line 1: field 'correct' must be true, false or null"),
    ],
)
def test_bad_input_is_one_clear_error_and_writes_nothing(tmp_path, lines, message):
    f = write(tmp_path / "t.jsonl", lines)
    fresh, existing = tmp_path / "fresh", tmp_path / "existing"
    existing.mkdir()
    (existing / "summary.json").write_text("old")
    flags = ("--correct-field", "correct") if "correct" in message else ()
    for out in (fresh, existing):
        code, err = style("analyze", f, "--out", str(out), *flags)
        assert code == 2 and "\n" not in err
        assert __import__("re").search(message, err), err
    assert not fresh.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["existing", "t.jsonl"]
    assert [p.name for p in existing.iterdir()] == ["summary.json"] and (
        existing / "summary.json"
    ).read_text() == "old"


def test_bad_flags(tmp_path):
    f = write(tmp_path / "t.jsonl", ['{"completion": "ok"}'])
    assert style("analyze", str(tmp_path / "nope.jsonl"), "--out", str(tmp_path / "o"))[1].endswith(
        "no such file"
    )
    assert "needs --gold-field" in style("analyze", f, "--out", str(tmp_path / "o"), "--answer-field", "a")[1]
    assert (
        "does not exist" in style("analyze", f, "--out", str(tmp_path / "o"), "--lexicon", "missing.yaml")[1]
    )
