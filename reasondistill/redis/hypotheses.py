"""Hypotheses: the items models answer, and what is made of their answers (ReDis, arXiv 2504.10647).

Items are Examples, so any teacher (hf, openai, rule_program) answers them through its template:
- a rule-generation item per task (`rule_item`): the rule-generation question over the task's
  demonstrations; its answer is a rule (no gold answer: the stages score rules by applying them);
- a rule-application item per (rule, input) (`apply_item`): its gold answer is the pair's output,
  so the teacher's verdict on it is "this application reproduces the demonstration".

From the applications, `score` gives each distinct rule of a task its per-demonstration
predictions and count of correct ones (the authors' score); `pairs` are the authors'
construct_pair.py: every ordered pair of a task's distinct rules with score_x > score_y + d;
`generation_rows` / `following_rows` are its SFT sets: every distinct rule (rule generation,
unfiltered), and the applications of the rules chosen in some pair (rule following).
Departure: rules are deduplicated by text within a task; the authors' set spans all tasks, which
would drop the many rules a program teacher words identically for different tasks.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from reasondistill.records import Demonstration, Example, Trace
from reasondistill.redis.prompts import rule_application_question, rule_generation_question

# The authors' margins d (construct_pair.py), per task: a pair needs score_x > score_y + d.
PAPER_MARGINS = {"arc_1d": 1, "acre": 2, "list_functions": 3, "mini_scan": 4}
ITEMS_FILE = "rule_items.jsonl"  # a hypotheses stage's rule-generation items (Examples)
APPLICATIONS_FILE = "applications.jsonl"  # a rule_scores stage's rule applications (Traces)


def groups(examples: Iterable[Example]) -> dict[str, list[Example]]:
    """A data split's queries by task (`metadata.group`), in order of first appearance."""
    out: dict[str, list[Example]] = {}
    for ex in examples:
        if not ex.demonstrations or "group" not in ex.metadata:
            raise ValueError(
                f"example {ex.id!r} has no demonstrations / metadata.group: not an induction task "
                "(arc_1d, list_functions, acre, mini_scan)"
            )
        out.setdefault(f"{ex.task}:{ex.split}:{ex.metadata['group']}", []).append(ex)
    return out


def rule_item(key: str, queries: Sequence[Example]) -> Example:
    """The rule-generation item of one task (its queries listed in metadata, for evaluation)."""
    first = queries[0]
    demos = [(d.input, d.output) for d in first.demonstrations]
    meta = {"redis": "generate_rule", "group": first.metadata["group"], "queries": [q.id for q in queries]}
    if "rule" in first.metadata:
        meta["rule"] = first.metadata["rule"]  # the generator's known rule (program teacher)
    return Example(id=key, task=first.task, question=rule_generation_question(first.task, demos), answer="",
                   split=first.split, demonstrations=first.demonstrations, metadata=meta)  # fmt: skip


def apply_item(item: Example, tag: str, rule: str, spec: dict | None, value: str, gold: str) -> Example:
    """A rule-application item: apply `rule` (a program teacher's `spec`, if any) to `value`."""
    meta = {"redis": "apply_rule", "group": item.metadata["group"], "input": value, "rule": rule}
    if spec is not None:
        meta["rule_spec"] = spec
    return Example(id=f"{item.id}/{tag}", task=item.task, question=rule_application_question(item.task, rule, value),
                   answer=gold, split=item.split, metadata=meta)  # fmt: skip


@dataclass
class Hypothesis:
    """One distinct rule of a task with its applications to the demonstrations."""

    item: Example  # the task's rule-generation item
    rule: str
    spec: dict | None  # a program teacher's runnable spec
    samples: list[int]  # the teacher's samples that wrote this text
    prompt: Any = None  # what the proposer was given
    completion: str = ""
    usage: dict = field(default_factory=dict)
    predictions: list[dict] = field(default_factory=list)  # per demonstration

    @property
    def correct(self) -> int:
        return sum(p["correct"] for p in self.predictions)

    def key(self) -> tuple[int, str]:
        """Sort key: score, then the rule text; sorted in reverse (the authors' sort(reverse=True))."""
        return self.correct, self.rule


def distinct(items: dict[str, Example], traces: Iterable[Trace], dedup: bool = True) -> list[Hypothesis]:
    """Hypotheses of every task (rules with a parsed answer), deduplicated by text within a task."""
    out: dict[tuple[str, str], Hypothesis] = {}
    for t in sorted(traces, key=lambda t: (t.example_id, t.sample)):
        if t.answer is None or t.example_id not in items:
            continue
        k = (t.example_id, t.answer.strip() if dedup else f"{t.sample}\x00{t.answer}")
        if k in out:
            out[k].samples.append(t.sample)
            continue
        spec = t.metadata.get("rule_spec")
        out[k] = Hypothesis(
            items[t.example_id], t.answer.strip(), spec, [t.sample], t.prompt, t.completion, t.usage
        )
    return list(out.values())


def application_items(hyps: Sequence[Hypothesis], on: str = "demos") -> list[Example]:
    """One application item per (hypothesis, demonstration), all of them, for one batched call."""
    out = []
    for h in hyps:
        for j, d in enumerate(h.item.demonstrations):
            out.append(apply_item(h.item, f"h{h.samples[0]}/d{j}", h.rule, h.spec, d.input, d.output))
    return out


def attach(hyps: Sequence[Hypothesis], applications: Iterable[Trace]) -> None:
    """Fill each hypothesis's per-demonstration predictions from the application traces."""
    by_id = {t.example_id: t for t in applications}
    for h in hyps:
        h.predictions = []
        for j, d in enumerate(h.item.demonstrations):
            t = by_id.get(f"{h.item.id}/h{h.samples[0]}/d{j}")
            h.predictions.append(prediction(d, t, h.rule, h.item.task))


def prediction(d: Demonstration, t: Trace | None, rule: str, task: str) -> dict:
    return {
        "input": d.input,
        "gold": d.output,
        "question": rule_application_question(task, rule, d.input),
        "completion": t.completion if t else None,
        "prediction": t.answer if t else None,
        "correct": bool(t is not None and t.score == 1.0),
        "error": t.error if t else "not applied",
        "usage": t.usage if t else {},
    }


def as_trace(h: Hypothesis) -> Trace:
    """The scored hypothesis as a Trace: score = share of demonstrations reproduced; the
    predictions, count and provenance in metadata (what rule_pairs / rule_rows read)."""
    n = len(h.predictions)
    meta = {"task": h.item.task, "group": h.item.metadata["group"], "question": h.item.question,
            "rule": h.rule, "rule_spec": h.spec, "samples": h.samples, "correct": h.correct, "demos": n,
            "predictions": h.predictions}  # fmt: skip
    return Trace(example_id=h.item.id, teacher="hypothesis", sample=h.samples[0], prompt=h.prompt,
                 completion=h.completion, answer=h.rule, score=h.correct / n if n else 0.0, usage=h.usage,
                 metadata=meta)  # fmt: skip


def by_task(scored: Iterable[Trace]) -> dict[str, list[Trace]]:
    out: dict[str, list[Trace]] = {}
    for t in scored:
        out.setdefault(t.example_id, []).append(t)
    return out


def margin_for(task: str, margin: int | None) -> int:
    if margin is not None:
        return margin
    if task not in PAPER_MARGINS:
        raise ValueError(f"no paper margin for task {task!r}: set `margin`")
    return PAPER_MARGINS[task]


def pairs(scored: Iterable[Trace], margin: int | None) -> list[tuple[Trace, Trace, int]]:
    """(chosen, rejected, d) for every ordered pair of a task's rules with correct_x > correct_y + d.

    A pair whose chosen and rejected rules have the same text is skipped: without deduplication
    (rule_scores `dedup: false`) one text can score differently in two samples (a sampling
    applier), and such a pair teaches nothing (a preference trainer refuses it)."""
    out = []
    for hyps in by_task(scored).values():
        ranked = sorted(hyps, key=lambda t: (t.metadata["correct"], t.answer), reverse=True)
        d = margin_for(ranked[0].metadata["task"], margin)
        for x in ranked:
            for y in ranked:
                if x.metadata["correct"] > y.metadata["correct"] + d and x.answer != y.answer:
                    out.append((x, y, d))
    return out


def generation_rows(scored: Iterable[Trace], template) -> list[dict]:
    """Rule generation SFT rows: every distinct rule of every task, whatever its score."""
    return [
        {
            "prompt": template.prompt(t.metadata["question"]),
            "completion": template.completion(t.answer, None, "none"),
            "example_id": t.example_id,
            "kind": "generate_rule",
            "correct": t.metadata["correct"],
        }  # fmt: skip
        for t in scored
    ]


def following_rows(scored: Iterable[Trace], chosen: set[tuple[str, str]], template) -> list[dict]:
    """Rule following SFT rows: the applications of the rules in `chosen` ((task, rule) keys)."""
    rows = []
    for t in scored:
        if (t.example_id, t.answer) not in chosen:
            continue
        for p in t.metadata["predictions"]:
            if p["prediction"] is None:
                continue  # the applier wrote nothing parseable: nothing to imitate
            rows.append({"prompt": template.prompt(p["question"]),
                         "completion": template.completion(p["prediction"], None, "none"),
                         "example_id": t.example_id, "kind": "apply_rule", "correct": p["correct"]})  # fmt: skip
    return rows
