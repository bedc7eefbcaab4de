"""Hypothesis search at inference, and direct few-shot prompting (ReDis, arXiv 2504.10647, Sec. 3.3).

Search, per task: the proposer samples H rules (the authors: temperature 0.9); the applier applies
each to every demonstration (0.7), all (rule, demonstration) items of a split in one call; each
rule's score is the number of demonstrations reproduced; the best rule is kept, and the applier
applies it to every query. Ties: the authors sort (score, rule text) pairs in reverse, so among
equally scored rules the one LAST in lexicographic order of its text wins (`best`). All H samples
are scored, duplicates included, as the authors do. Direct: the applier answers the few-shot
question (demonstrations + query) itself.

Each phase writes its traces to a TraceStore in the stage directory, so a killed run resumes and
the cost of every call (model calls, prompt and generated tokens) is on disk.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from reasondistill.records import Example, Trace
from reasondistill.redis.hypotheses import (
    Hypothesis,
    application_items,
    apply_item,
    attach,
    distinct,
    groups,
    rule_item,
)
from reasondistill.traces.store import TraceStore

Verify = Callable[[Example, str], bool]


@dataclass
class TaskResult:
    key: str
    queries: list[Example]
    traces: list[Trace]  # every call made for this task
    rows: list[dict]  # one prediction row per query
    best: Hypothesis | None = None


def best(hyps: Sequence[Hypothesis]) -> Hypothesis | None:
    """The highest-scoring rule; ties go to the rule text last in lexicographic order (the authors'
    `sorted_list.sort(reverse=True)` over (score, rule) pairs)."""
    return max(hyps, key=Hypothesis.key, default=None)


def _run(teacher, items: list[Example], path: Path, verify: Verify) -> list[Trace]:
    with TraceStore(path) as store:
        teacher.generate(items, store, verify)
        return store.read()


def search(
    examples: list[Example], proposer, applier, verify: Verify, out_dir: Path, tag: str
) -> list[TaskResult]:
    """Hypothesis search on every task of `examples` (one split); traces under out_dir/<tag>.*.jsonl."""
    tasks = groups(examples)
    items = {k: rule_item(k, qs) for k, qs in tasks.items()}
    proposals = _run(proposer, list(items.values()), out_dir / f"{tag}.rules.jsonl", lambda ex, a: False)
    hyps = distinct(items, proposals, dedup=False)
    demo_apps = _run(applier, application_items(hyps), out_dir / f"{tag}.demo_applications.jsonl", verify)
    attach(hyps, demo_apps)
    chosen = {k: best([h for h in hyps if h.item.id == k]) for k in tasks}
    queries = [
        apply_item(items[k], f"best/q{j}", chosen[k].rule, chosen[k].spec, q.metadata["query"], q.answer)
        for k, qs in tasks.items() if chosen[k] is not None for j, q in enumerate(qs)
    ]  # fmt: skip
    query_apps = {
        t.example_id: t for t in _run(applier, queries, out_dir / f"{tag}.query_applications.jsonl", verify)
    }
    spent: dict[str, list[Trace]] = {k: [] for k in tasks}
    for t in proposals + demo_apps + list(query_apps.values()):
        # A rule item's id is its task key; an application's is "<key>/<h..|best>/<d..|q..>".
        spent[t.example_id if t.example_id in spent else t.example_id.rsplit("/", 2)[0]].append(t)
    return [
        TaskResult(
            k,
            qs,
            spent[k],
            [_row(q, query_apps.get(f"{k}/best/q{j}"), chosen[k]) for j, q in enumerate(qs)],
            chosen[k],
        )
        for k, qs in tasks.items()
    ]


def direct(examples: list[Example], applier, verify: Verify, out_dir: Path, tag: str) -> list[TaskResult]:
    """Direct few-shot prompting: the applier answers each query's question (demos + query)."""
    answered = {t.example_id: t for t in _run(applier, examples, out_dir / f"{tag}.direct.jsonl", verify)}
    results = []
    for k, qs in groups(examples).items():
        traces = [answered[q.id] for q in qs if q.id in answered]
        results.append(TaskResult(k, qs, traces, [_row(q, answered.get(q.id), None) for q in qs]))
    return results


def _row(q: Example, t: Trace | None, h: Hypothesis | None) -> dict:
    return {
        "example_id": q.id,
        "split": q.split,
        "group": q.metadata.get("group"),
        "rule": h.rule if h else None,
        "rule_score": h.correct if h else None,
        "demos": len(q.demonstrations),
        "prediction": t.completion if t else None,
        "answer": t.answer if t else None,
        "gold": q.answer,
        "correct": bool(t is not None and t.score == 1.0),
        "error": t.error if t else "no rule",
    }


def summarise(results: Sequence[TaskResult]) -> dict:
    """One split's metrics in the shared shape: query accuracy with a Wilson interval, task
    accuracy (every query right), and the cost per task (model calls, prompt / generated tokens)."""
    from reasondistill.evaluate.metrics import wilson_interval

    rows = [r for res in results for r in res.rows]
    n, k = len(rows), sum(r["correct"] for r in rows)
    tasks = len(results)
    solved = sum(all(r["correct"] for r in res.rows) for res in results)
    lo, hi = wilson_interval(k, n)
    tlo, thi = wilson_interval(solved, tasks)
    calls = sum(len(res.traces) for res in results)
    gen = sum(t.usage.get("completion_tokens", 0) for res in results for t in res.traces)
    prompt = sum(t.usage.get("prompt_tokens", 0) for res in results for t in res.traces)
    fit = [res.best.correct == len(res.best.predictions) for res in results if res.best is not None]
    return {
        "n": n, "correct": k, "accuracy": k / n if n else None, "ci_low": lo, "ci_high": hi,
        "tasks": tasks, "task_accuracy": solved / tasks if tasks else None,
        "task_accuracy_ci_low": tlo, "task_accuracy_ci_high": thi,
        "calls_per_task": calls / tasks if tasks else None,
        "generated_tokens_per_task": gen / tasks if tasks else None,
        "prompt_tokens_per_task": prompt / tasks if tasks else None,
        "mean_generated_tokens": gen / n if n else None,
        "best_rule_fits_all": sum(fit) / len(fit) if fit else None,
    }  # fmt: skip
