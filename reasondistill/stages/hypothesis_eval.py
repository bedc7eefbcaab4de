"""`hypothesis_eval` stage: accuracy on induction tasks by hypothesis search or direct prompting (ReDis).

```yaml
eval_search:
  kind: hypothesis_eval
  data: data
  splits: [test]
  mode: search                                   # or direct (few-shot: demonstrations -> output)
  proposer: {kind: hf, model: {stage: student}, n: 10, temperature: 0.9, max_new_tokens: 96}
  applier:  {kind: hf, model: {stage: student}, temperature: 0.7, max_new_tokens: 48}
```
Search (redis/search.py, arXiv 2504.10647 Sec. 3.3): H = proposer.n rules per task, each scored
by applying it to the demonstrations, the best kept (ties: the rule text last in lexicographic
order, as the authors' reverse sort), applied to every query. Direct: the applier answers the
task's few-shot question. Any teacher kind proposes or applies (hf, openai, rule_program).

Output: metrics.json in the shared shape, per split: query accuracy with its 95% Wilson interval,
task accuracy (every query right), model calls and prompt / generated tokens per task;
predictions.jsonl (one row per query, with the rule used); the calls of each phase as resumable
trace files (<split>.rules.jsonl, ...).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from reasondistill.artifacts import METRICS_FILE, PREDICTIONS_FILE, Artifact, read_examples
from reasondistill.config import Ref
from reasondistill.records import write_json_atomic, write_jsonl_atomic
from reasondistill.stages.base import STAGES, Stage, StageConfig, StageContext
from reasondistill.teachers import TEACHERS

TeacherConfigs = TEACHERS.config_union()


class HypothesisEvalConfig(StageConfig):
    kind: Literal["hypothesis_eval"]
    data: Ref(Artifact.EXAMPLES) = Field(description="an induction task's data stage")
    splits: list[str] = Field(min_length=1)
    limit: int | None = Field(None, ge=1, description="first N queries of each split")
    mode: Literal["search", "direct"] = "search"
    proposer: TeacherConfigs | None = Field(None, description="search: who samples the H = n rules per task")  # type: ignore[valid-type]
    applier: TeacherConfigs = Field(
        description="who applies rules (search) or answers the few-shot question (direct); n: 1"
    )  # type: ignore[valid-type]

    @model_validator(mode="after")
    def _roles(self):
        if self.mode == "search" and self.proposer is None:
            raise ValueError("proposer: required for mode search (who samples the rules)")
        if self.mode == "direct" and self.proposer is not None:
            raise ValueError("proposer: only used by mode search; remove it")
        if self.applier.n != 1:
            raise ValueError("applier.n: one answer per item (n: 1)")
        return self


def _teachers(cfg: HypothesisEvalConfig, ctx: StageContext):
    """(proposer, applier); one hf model loaded once when both name the same one."""
    applier = TEACHERS.get(cfg.applier.kind)(cfg.applier, ctx)
    if cfg.proposer is None:
        return None, applier
    proposer = TEACHERS.get(cfg.proposer.kind)(cfg.proposer, ctx)
    same = cfg.proposer.kind == cfg.applier.kind == "hf" and cfg.proposer.model == cfg.applier.model
    if same and cfg.proposer.template == cfg.applier.template:
        proposer._load()
        applier.model, applier.tokenizer = proposer.model, proposer.tokenizer
    return proposer, applier


class HypothesisEvalStage(Stage):
    Config = HypothesisEvalConfig
    produces = frozenset({Artifact.METRICS})

    @classmethod
    def check_plan(cls, cfg: HypothesisEvalConfig, configs) -> list[str]:
        from reasondistill.stages.hypotheses import known_rule_problem, proposer_problem

        out = []
        for problem in (proposer_problem(cfg.proposer), known_rule_problem(cfg.proposer, str(cfg.data), configs)):
            if problem:
                out.append(f"proposer: {problem}")
        # A rule_program applier runs only the specs a rule_program proposer wrote: with a model
        # proposer every application would fail ("no program for this rule") and score 0; in
        # direct mode it has no rule to run at all.
        if cfg.applier.kind == "rule_program":
            if cfg.mode == "direct":
                out.append("applier: rule_program answers rule applications only; direct mode needs a model (hf, openai)")
            elif cfg.proposer is not None and cfg.proposer.kind != "rule_program":
                out.append(
                    f"applier: rule_program runs only rules a rule_program proposer wrote, but the proposer is "
                    f"{cfg.proposer.kind!r}: every rule would fail to apply; use a model applier (hf, openai), "
                    f"or python_rules for rules written as programs"
                )
        if cfg.mode == "direct" and cfg.applier.kind == "python_rules":
            out.append("applier: python_rules applies rules only; direct mode needs a model (hf, openai)")
        return out

    @classmethod
    def split_refs(cls, cfg: HypothesisEvalConfig) -> list[tuple[tuple, str, str]]:
        return [(("splits", i), str(cfg.data), s) for i, s in enumerate(cfg.splits)]

    def run(self, ctx: StageContext) -> dict:
        from reasondistill.errors import ReasonDistillError
        from reasondistill.redis.search import direct, search, summarise
        from reasondistill.tasks import load_task

        cfg: HypothesisEvalConfig = ctx.cfg
        data_dir = ctx.path(cfg.data)
        splits = {s: read_examples(data_dir, s, cfg.limit) for s in cfg.splits}
        verify = load_task(data_dir).verify
        proposer, applier = _teachers(cfg, ctx)
        metrics, rows = {}, []
        for split, examples in splits.items():
            try:
                if cfg.mode == "search":
                    results = search(examples, proposer, applier, verify, ctx.out_dir, split)
                else:
                    results = direct(examples, applier, verify, ctx.out_dir, split)
            except ValueError as e:
                raise ReasonDistillError(f"hypothesis_eval stage {ctx.name!r}: {e}") from None
            metrics[split] = summarise(results)
            rows += [r for res in results for r in res.rows]
            ctx.log.info(
                "%s %s: accuracy %s on %d queries",
                ctx.name,
                split,
                metrics[split]["accuracy"],
                metrics[split]["n"],
            )
        write_jsonl_atomic(ctx.out_dir / PREDICTIONS_FILE, rows)
        write_json_atomic(ctx.out_dir / METRICS_FILE, metrics)
        return {
            s: {"accuracy": m["accuracy"], "n": m["n"], "calls_per_task": m["calls_per_task"]}
            for s, m in metrics.items()
        }


STAGES.register(
    "hypothesis_eval",
    HypothesisEvalStage,
    description="induction-task accuracy by hypothesis search or direct few-shot, with cost per task (ReDis)",
    paper="arXiv 2504.10647",
)
