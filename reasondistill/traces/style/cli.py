"""`reasondistill style analyze FILE.jsonl --out DIR`: the style profile of any JSONL of traces.

Pivots, phases and lengths of every trace (arXiv 2504.01738's analysis; traces/style/), split
by correct / wrong / unknown, written to DIR (summary.json, summary.md, traces.jsonl with one
profile per trace, PNG charts) and printed as a table. Every row is read and checked before
anything is written: a bad row raises ReasonDistillError naming the file and the line, which
the CLI prints as one `error:` line with exit code 2.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pydantic import ValidationError

from reasondistill.errors import ReasonDistillError


def add_style_parser(sub) -> None:
    p = sub.add_parser("style", help="style analysis of reasoning traces (pivots, phases; arXiv 2504.01738)")
    ssub = p.add_subparsers(dest="style_command", required=True)
    a = ssub.add_parser("analyze", help="profile a JSONL file of traces: pivots, phases, length")
    a.add_argument("file", help="JSONL, one trace per line")
    a.add_argument("--out", required=True, help="output directory (created; files in it are replaced)")
    a.add_argument(
        "--text-field", default="completion",
        help="field with the trace text (default completion); a <think> block is split off automatically",
    )  # fmt: skip
    a.add_argument("--correct-field", help="boolean field with the verdict (null: unknown)")
    a.add_argument(
        "--answer-field",
        help="field with the answer to verify against --gold-field "
        "(default: the completion's final answer: \\boxed{}, an Answer: line, or the text after </think>)",
    )
    a.add_argument("--gold-field", help="field with the gold answer; correct = the answer equals it")
    a.add_argument(
        "--lexicon", help="a YAML lexicon file (traces/style/lexicon.py; default: the English defaults)"
    )
    a.add_argument(
        "--tokenizer", help="count tokens with this tokenizer (a directory or hub id) instead of the proxy"
    )
    a.add_argument("--no-charts", action="store_true", help="skip the PNG charts")


def style_main(args: argparse.Namespace) -> int:
    from reasondistill.traces.style.analyze import SUMMARY_MD, analyze, write_analysis
    from reasondistill.traces.style.lexicon import DefaultLexicon, FileLexicon
    from reasondistill.traces.style.profile import StyleAnalyzer
    from reasondistill.traces.style.read import read_trace_rows

    if args.style_command != "analyze":  # argparse allows only `analyze` today
        raise ReasonDistillError(f"style: unknown command {args.style_command!r}")
    if args.answer_field and not args.gold_field:
        raise ReasonDistillError("--answer-field needs --gold-field (what the answer is verified against)")
    if args.correct_field and args.gold_field:
        raise ReasonDistillError("give --correct-field or --gold-field, not both")
    path, out = Path(args.file), Path(args.out)
    if not path.is_file():
        raise ReasonDistillError(f"{path}: no such file")
    if out.exists() and not out.is_dir():
        raise ReasonDistillError(f"--out {out}: exists and is not a directory")
    try:
        lexicon_cfg = FileLexicon(kind="file", path=args.lexicon) if args.lexicon else DefaultLexicon()
    except ValidationError as e:  # the file's own message, without pydantic's frame
        raise ReasonDistillError(e.errors()[0]["msg"].removeprefix("Value error, ")) from None
    lexicon = lexicon_cfg.build()
    items = read_trace_rows(path, args.text_field, args.correct_field, args.answer_field, args.gold_field)
    analyzer = StyleAnalyzer(lexicon, _token_counter(args.tokenizer) if args.tokenizer else None)
    profiles, groups = analyze(items, analyzer)
    write_analysis(
        out, profiles, groups, title=f"Style profile of {path.name}", source=str(path),
        lexicon=lexicon.to_dict(), charts=not args.no_charts,
    )  # fmt: skip
    print((out / SUMMARY_MD).read_text(encoding="utf-8"))
    return 0


def _token_counter(name: str):
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(name)
    except (OSError, ValueError) as e:
        raise ReasonDistillError(f"--tokenizer {name}: cannot load a tokenizer ({e})") from None
    return lambda text: len(tok(text, add_special_tokens=False)["input_ids"])
