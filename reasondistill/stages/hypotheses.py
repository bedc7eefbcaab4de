"""`hypotheses` stage: a teacher proposes H rules for every task of a data split (ReDis, arXiv 2504.10647).

```yaml
rules:
  kind: hypotheses
  data: {stage: data, split: train}
  teacher: {kind: rule_program, n: 10}     # or {kind: hf, model: ..., n: 50, temperature: 1.0} | {kind: openai, ...}
```
One rule-generation item per task (its queries share `metadata.group`; redis/hypotheses.py), `n`
samples each, through the teacher's template. Outputs: traces.jsonl (one trace per rule sample;
resumable), rule_items.jsonl (the items, which a rule_scores stage applies the rules to) and a copy
of the data stage's task.json (how answers are verified).
"""

from __future__ import annotations

import os
import shutil
from typing import Literal

from pydantic import Field

from reasondistill.artifacts import TASK_FILE, Artifact, read_examples, traces_file
from reasondistill.config import ExampleSource
from reasondistill.records import write_jsonl_atomic
from reasondistill.stages.base import STAGES, Stage, StageConfig, StageContext
from reasondistill.teachers import TEACHERS


class HypothesesConfig(StageConfig):
    kind: Literal["hypotheses"]
    data: ExampleSource = Field(
        description="a split of an induction task (arc_1d, list_functions, acre, mini_scan)"
    )
    teacher: TEACHERS.config_union() = Field(description="who writes the rules; `n` rules per task")  # type: ignore[valid-type]
    max_tasks: int | None = Field(None, ge=1, description="the first N tasks of the split")


def known_rule_problem(teacher, data_stage: str, configs) -> str | None:
    """Why a rule_program teacher cannot serve this data stage: the stage must make a procedural
    induction task (a task with a rule book) in every split; a file (`config.path`, or a split's
    `splits.<name>.config.path`) or another task (jsonl, ...) has no known rule."""
    if teacher is None or teacher.kind != "rule_program":
        return None
    from reasondistill.redis.rules import BOOKS

    use = "use a model teacher (hf, openai)"
    for c in configs(data_stage):
        task = getattr(c, "task", None)
        if task is not None and task not in BOOKS:
            return (
                f"the rule_program teacher writes rules from a procedural induction task's known rule "
                f"({', '.join(sorted(BOOKS))}), but stage {data_stage!r} makes task {task!r}: {use}"
            )
        where = [("config.path", getattr(c, "config", None) or {})]
        where += [(f"splits.{name}.config.path", s.config or {}) for name, s in (getattr(c, "splits", None) or {}).items()]
        for key, config in where:
            if isinstance(config, dict) and config.get("path"):
                return (
                    f"the rule_program teacher writes rules from a procedural task's known rule, but stage "
                    f"{data_stage!r} reads a file ({key}): {use}"
                )
    return None


def proposer_problem(teacher) -> str | None:
    """Why a teacher cannot propose rules (python_rules only runs rules it is given)."""
    if teacher is not None and teacher.kind == "python_rules":
        return "python_rules only applies rules written as programs; it cannot propose them (use hf, openai, rule_program)"
    return None


class HypothesesStage(Stage):
    Config = HypothesesConfig
    produces = frozenset({Artifact.TRACES})

    @classmethod
    def check_plan(cls, cfg: HypothesesConfig, configs) -> list[str]:
        problems = [proposer_problem(cfg.teacher), known_rule_problem(cfg.teacher, str(cfg.data.stage), configs)]
        return [f"teacher: {p}" for p in problems if p]

    def run(self, ctx: StageContext) -> dict:
        from reasondistill.errors import ReasonDistillError
        from reasondistill.redis.hypotheses import ITEMS_FILE, groups, rule_item
        from reasondistill.traces.store import TraceStore

        cfg: HypothesesConfig = ctx.cfg
        data_dir = ctx.path(cfg.data.stage)
        try:
            tasks = groups(read_examples(data_dir, cfg.data.split, cfg.data.limit))
        except ValueError as e:
            raise ReasonDistillError(f"hypotheses stage {ctx.name!r}: {e}") from None
        items = [rule_item(k, qs) for k, qs in tasks.items()][: cfg.max_tasks]
        teacher = TEACHERS.get(cfg.teacher.kind)(cfg.teacher, ctx)
        with TraceStore(traces_file(ctx.out_dir)) as store:  # resumable: a rerun continues it
            teacher.generate(items, store, lambda ex, answer: False)  # rules have no gold answer
            traces = store.read()
        # The items and task.json only after every rule is written (task.json last): a failing
        # teacher leaves no stage directory that looks complete to a rule_scores stage.
        write_jsonl_atomic(ctx.out_dir / ITEMS_FILE, items)
        tmp = ctx.out_dir / f"{TASK_FILE}.tmp"
        shutil.copyfile(data_dir / TASK_FILE, tmp)
        os.replace(tmp, ctx.out_dir / TASK_FILE)
        rules = [t for t in traces if t.answer is not None]
        return {
            "tasks": len(items),
            "rules": len(traces),
            "parsed": len(rules),
            "distinct": len({(t.example_id, t.answer.strip()) for t in rules}),
            "completion_tokens": sum(t.usage.get("completion_tokens", 0) for t in traces),
        }


STAGES.register(
    "hypotheses",
    HypothesesStage,
    description="a teacher proposes H rules per induction task (ReDis)",
    paper="arXiv 2504.10647",
)
