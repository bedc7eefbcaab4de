"""BIG-Bench-Hard evaluation, 3-shot chain of thought (Suzgun et al., arXiv 2210.09261), as used by
white-box KD with CoT (Do, Doddipatla & Knill, INLG 2025, arXiv 2511.05184): per-task and
macro-average exact-match accuracy, with 95% intervals (per task: Wilson; the macro average:
stratified Wilson, evaluate/metrics.py).

Prompt (the BBH repo's cot-prompts/<task>.txt, which lm-eval's bbh_cot_fewshot also uses): the
file's task description and its worked examples, then the question:

    {description}\\n\\n{example 1}\\n\\n{example 2}\\n\\n{example 3}\\n\\nQ: {input}\\nA: Let's think step by step.

A prompt file is a description, then examples each starting with a line "Q: ..." and holding
an "A: Let's think step by step. ... So the answer is X." answer; a preamble ending in a line
of dashes (the BBH repo's canary header) is dropped. Without prompt files the prompt is
zero-shot CoT (the question and the trigger alone).

Generation is greedy and stops at the first blank line (lm-eval stops at "\\n\\n" too). The
answer is extracted as lm-eval's filter does, `(?<=the answer is )(.*)(?=.)` on the first
match: the rest of that line without its final character (the period). Departures, both only
for outputs lm-eval scores as wrong whatever the target: a final character other than "." is
kept (lm-eval would cut "True" to "Tru"), and an output with no "the answer is" falls back to
an "Answer: X" line, the format reasondistill students are trained on. lm-eval also stops at
any capital "Q"; here only a blank line ends generation. Scoring is exact match
(tasks/bbh.py verify_answer: numbers compare as numbers, nothing else is normalised).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from reasondistill.errors import ReasonDistillError
from reasondistill.evaluate.generate import generate_batch
from reasondistill.evaluate.metrics import stratified_wilson, wilson_interval
from reasondistill.models.tokenize import encode_prompt
from reasondistill.progress import item_bar
from reasondistill.records import read_text
from reasondistill.tasks.bbh import verify_answer
from reasondistill.traces.format import extract_answer as extract_answer_line

COT_TRIGGER = "A: Let's think step by step."
STOP = "\n\n"
_ANSWER = re.compile(r"the answer is (.*)")  # no DOTALL: the rest of the line, like lm-eval's regex


@dataclass(frozen=True)
class FewShot:
    """A parsed prompt file: the task description and its worked examples (each "Q: ...\\nA: ...")."""

    description: str
    examples: list[str]


def read_prompt_file(path: str | Path) -> FewShot:
    """Parse a BBH cot-prompts/<task>.txt file; raises ReasonDistillError naming the problem."""
    path = Path(path)
    try:
        lines = read_text(path, who="BBH prompt file ").splitlines()
    except OSError as e:
        raise ReasonDistillError(f"BBH prompt file {path}: cannot read it ({e})") from None
    starts = [i for i, line in enumerate(lines) if line.startswith("Q:")]
    if not starts:
        raise ReasonDistillError(f"BBH prompt file {path}: no example (a line starting with 'Q:')")
    header = lines[: starts[0]]
    dashes = [i for i, line in enumerate(header) if line.strip() and set(line.strip()) == {"-"}]
    if dashes:  # the BBH repo's files may open with a canary line and a '-----' separator
        header = header[dashes[-1] + 1 :]
    examples = ["\n".join(lines[a:b]).strip() for a, b in zip(starts, starts[1:] + [len(lines)], strict=True)]
    for n, ex in enumerate(examples, 1):
        if not any(line.startswith("A:") for line in ex.splitlines()):
            raise ReasonDistillError(
                f"BBH prompt file {path}: example {n} has no answer line starting with 'A:'"
            )
    return FewShot("\n".join(header).strip(), examples)


def build_prompt(fewshot: FewShot | None, question: str) -> str:
    """The CoT prompt for one question: few-shot examples when given, else zero-shot CoT."""
    parts = [] if fewshot is None else [p for p in (fewshot.description, *fewshot.examples) if p]
    return "\n\n".join([*parts, f"Q: {question}\n{COT_TRIGGER}"])


def extract_answer(text: str) -> str | None:
    """The answer in a chain of thought: after the first "the answer is", minus a final "."."""
    m = _ANSWER.search(text)
    if m is None:
        return extract_answer_line(text)  # "Answer: X" (reasondistill's own format) or None
    span = m.group(1).strip()
    return span.removesuffix(".").strip() or None


def find_prompts(bbh_dir: Path, prompts_dir: Path | None, tasks: list[str]) -> tuple[dict, Path | None]:
    """({task: FewShot or None}, the prompts directory used or None for zero-shot).

    prompts_dir None: `cot-prompts/` inside or beside bbh_dir (the BBH repo layout), if present.
    A prompts directory must hold a <task>.txt for every task.
    """
    if prompts_dir is None:
        base = bbh_dir if bbh_dir.is_dir() else bbh_dir.parent
        found = [d for d in (base / "cot-prompts", base.parent / "cot-prompts") if d.is_dir()]
        if not found:
            return {t: None for t in tasks}, None
        prompts_dir = found[0]
    elif not prompts_dir.is_dir():
        raise ReasonDistillError(f"--prompts-dir {prompts_dir}: no such directory")
    missing = [t for t in tasks if not (prompts_dir / f"{t}.txt").is_file()]
    if missing:
        raise ReasonDistillError(f"BBH prompts {prompts_dir}: no <task>.txt for {', '.join(missing)}")
    return {t: read_prompt_file(prompts_dir / f"{t}.txt") for t in tasks}, prompts_dir


def _fit(ids: list[int], budget: int, bos: int | None) -> tuple[list[int], bool]:
    """Keep the end of a prompt too long for the context (the question), and its BOS."""
    if len(ids) <= budget:
        return ids, False
    head = [bos] if bos is not None and ids and ids[0] == bos else []
    return head + ids[len(ids) - (budget - len(head)) :], True


def evaluate_bbh(
    model,
    tokenizer,
    tasks: dict[str, list[dict[str, str]]],
    prompts: dict[str, FewShot | None],
    *,
    batch_size: int = 16,
    max_new_tokens: int = 256,
    limit: int | None = None,
) -> dict:
    """{"tasks": {task: metrics}, "average": {...}, "predictions": [...]} for `tasks` (load_bbh)."""
    context = getattr(model.config, "max_position_embeddings", None) or 10**9
    budget = context - max_new_tokens
    if budget < 8:
        raise ReasonDistillError(
            f"--max-new-tokens {max_new_tokens} leaves no room for a prompt in a {context}-token context"
        )
    per_task, predictions = {}, []
    model.eval()
    bar = item_bar(sum(len(rows[:limit]) for rows in tasks.values()), "BBH", "question")
    for task, rows in tasks.items():
        rows = rows[:limit]
        fitted = [
            _fit(
                encode_prompt(tokenizer, build_prompt(prompts.get(task), r["input"])),
                budget,
                tokenizer.bos_token_id,
            )
            for r in rows
        ]
        correct = []
        for start in range(0, len(rows), batch_size):
            batch = fitted[start : start + batch_size]
            gens = generate_batch(
                model, tokenizer, [ids for ids, _ in batch], max_new_tokens=max_new_tokens, stop=STOP
            )
            for i, (g, (_, truncated)) in enumerate(zip(gens, batch, strict=True)):
                row = rows[start + i]
                answer = extract_answer(g.text)
                ok = verify_answer(answer, row["target"])
                correct.append(ok)
                predictions.append({"task": task, "index": start + i, "target": row["target"], "answer": answer,
                                    "correct": ok, "prediction": g.text, "prompt_truncated": truncated})  # fmt: skip
            bar.update(len(batch))
        fewshot = prompts.get(task)
        per_task[task] = _summary(sum(correct), len(correct)) | {
            "shots": 0 if fewshot is None else len(fewshot.examples),
            "prompts_truncated": sum(t for _, t in fitted),
        }
    bar.close()
    return {"tasks": per_task, "average": macro_average(per_task), "predictions": predictions}


def _summary(k: int, n: int) -> dict:
    lo, hi = wilson_interval(k, n)
    return {"n": n, "correct": k, "accuracy": k / n if n else None, "ci_low": lo, "ci_high": hi}


MACRO_INTERVAL = "stratified Wilson 95% (tasks weighted equally)"


def macro_average(per_task: dict[str, dict]) -> dict:
    """Mean of the per-task accuracies (BBH's headline number) with its stratified Wilson 95%
    interval (metrics.stratified_wilson), plus the pooled (micro) accuracy with its Wilson interval.

    The interval is named in the result (`interval`) and in the table. It never collapses to a
    point at 0% or 100%, where small students on BBH sit, and it is as wide as the items allow:
    the earlier mean of the per-task Wilson bounds gave [0, 65.8] for 0 of 6 (3 tasks x 2), where
    the items support [0, 39.0].
    """
    scored = [m for m in per_task.values() if m["n"]]
    micro = _summary(sum(m["correct"] for m in scored), sum(m["n"] for m in scored))
    lo, hi = stratified_wilson([(m["correct"], m["n"]) for m in scored])
    mean = sum(m["accuracy"] for m in scored) / len(scored) if scored else None
    return {"tasks": len(scored), "n": micro["n"], "accuracy": mean, "ci_low": lo, "ci_high": hi,
            "interval": MACRO_INTERVAL, "micro": micro}  # fmt: skip


def format_table(results: dict) -> str:
    """A markdown table: one row per task (Wilson 95%), then the macro average (stratified Wilson
    95%), and a line saying which interval each row has."""

    def pct(x: float | None) -> str:
        return "—" if x is None else f"{100 * x:.1f}"

    lines = ["| task | n | shots | accuracy % | 95% CI |", "|---|---|---|---|---|"]
    for task, m in results["tasks"].items():
        lines.append(f"| {task} | {m['n']} | {m['shots']} | {pct(m['accuracy'])} | "
                     f"[{pct(m['ci_low'])}, {pct(m['ci_high'])}] |")  # fmt: skip
    a = results["average"]
    lines.append(f"| average (macro, {a['tasks']} tasks) | {a['n']} | | {pct(a['accuracy'])} | "
                 f"[{pct(a['ci_low'])}, {pct(a['ci_high'])}] |")  # fmt: skip
    lines.append(f"\nIntervals: per task Wilson 95%; the macro average's is {a['interval']}.")
    return "\n".join(lines)
