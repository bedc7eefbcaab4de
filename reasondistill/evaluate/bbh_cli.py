"""`reasondistill eval MODEL_DIR --bbh-dir DIR`: BIG-Bench-Hard 3-shot CoT accuracy of a saved model.

Prints a per-task and macro-average table (evaluate/bbh.py). Every input is checked before the
model runs (task files parsed, prompt files parsed, output directory present, model loadable);
a bad one raises ReasonDistillError, which the CLI prints as one `error:` line with exit code 2.
`--out FILE` gets the metrics and every prediction as JSON, written atomically at the end.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from reasondistill.errors import ReasonDistillError


def add_eval_parser(sub) -> None:
    p = sub.add_parser("eval", help="BIG-Bench-Hard 3-shot CoT accuracy of a model directory")
    p.add_argument("model_dir", help="a saved transformers model (e.g. runs/<recipe>/<stage>/model)")
    p.add_argument("--bbh-dir", required=True, help="a directory of BBH <task>.json files (or one file)")
    p.add_argument(
        "--prompts-dir",
        help="BBH cot-prompts/<task>.txt files (default: cot-prompts/ in or beside --bbh-dir)",
    )
    p.add_argument("--limit", type=int, help="first N examples of each task")
    p.add_argument("--batch-size", type=int, default=16, help="prompts generated together (default 16)")
    p.add_argument(
        "--max-new-tokens", type=int, default=256, help="tokens generated per answer (default 256)"
    )
    p.add_argument("--out", help="write metrics and predictions to this JSON file")


def eval_main(args: argparse.Namespace) -> int:
    from reasondistill.evaluate.bbh import evaluate_bbh, find_prompts, format_table
    from reasondistill.records import write_json_atomic
    from reasondistill.tasks.bbh import load_bbh

    for flag in ("limit", "batch_size", "max_new_tokens"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise ReasonDistillError(f"--{flag.replace('_', '-')} must be >= 1, got {value}")
    bbh_dir = Path(args.bbh_dir)
    tasks = load_bbh(bbh_dir)  # every file parsed now: a malformed one fails before the model loads
    prompts, used = find_prompts(bbh_dir, Path(args.prompts_dir) if args.prompts_dir else None, list(tasks))
    out = Path(args.out) if args.out else None
    if out is not None and not out.parent.is_dir():
        raise ReasonDistillError(f"--out {out}: directory {out.parent} does not exist")
    model, tokenizer = _load(args.model_dir)
    where = f"few-shot prompts from {used}" if used else "no cot-prompts found: zero-shot CoT"
    print(f"BBH: {len(tasks)} tasks from {bbh_dir}; {where}", file=sys.stderr)
    results = evaluate_bbh(
        model, tokenizer, tasks, prompts,
        batch_size=args.batch_size, max_new_tokens=args.max_new_tokens, limit=args.limit,
    )  # fmt: skip
    print(format_table(results))
    truncated = sum(m["prompts_truncated"] for m in results["tasks"].values())
    if truncated:  # never silently: a cut few-shot prefix changes what is being measured
        print(f"BBH: {truncated} prompts were cut at the start to fit the model's context", file=sys.stderr)
    if out is not None:
        meta = {"model": args.model_dir, "bbh_dir": str(bbh_dir), "prompts_dir": str(used) if used else None,
                "limit": args.limit, "max_new_tokens": args.max_new_tokens}  # fmt: skip
        write_json_atomic(out, {**meta, **results})
    return 0


def _load(model_dir: str):
    """(model, tokenizer) on the default device; load_model turns every loading failure into
    one ReasonDistillError naming the directory."""
    from reasondistill.evaluate.generate import default_device
    from reasondistill.models.load import load_model

    if not Path(model_dir).is_dir():
        raise ReasonDistillError(f"model directory {model_dir!r} does not exist")
    return load_model(model_dir, device=default_device())
