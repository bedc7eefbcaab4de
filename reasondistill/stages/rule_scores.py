"""`rule_scores` stage: apply every rule to every demonstration, score, deduplicate (ReDis, arXiv 2504.10647).

```yaml
scores:
  kind: rule_scores
  hypotheses: rules                  # a hypotheses stage
  applier: {kind: rule_program}      # or {kind: hf, model: ..., temperature: 0.7} | {kind: openai, ...}
```
Rules are deduplicated by text within a task (`dedup`), then every (rule, demonstration) pair is
one item of a single batched call to the applier (the hf teacher batches them, the openai teacher
sends them concurrently). A rule's score is the number of demonstrations whose predicted output
is verified equal to the gold output (the task's verifier; its `match` option gives the authors'
exact strings). Outputs: applications.jsonl (every application, resumable) and traces.jsonl: one
trace per distinct rule, score = share of demonstrations reproduced, its per-demonstration
predictions, count and provenance in metadata.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from reasondistill.artifacts import Artifact, read_traces, traces_file
from reasondistill.config import Ref
from reasondistill.records import write_jsonl_atomic
from reasondistill.stages.base import STAGES, Stage, StageConfig, StageContext
from reasondistill.teachers import TEACHERS


class RuleScoresConfig(StageConfig):
    kind: Literal["rule_scores"]
    hypotheses: Ref(Artifact.TRACES) = Field(description="a hypotheses stage")
    applier: TEACHERS.config_union() = Field(description="who applies the rules (n: 1)")  # type: ignore[valid-type]
    dedup: bool = Field(True, description="score each distinct rule text of a task once")

    @field_validator("applier")
    @classmethod
    def _one_sample(cls, v):
        if v.n != 1:
            raise ValueError("n: a rule is applied once per demonstration (n: 1)")
        return v


def load_items(hyp_dir, who: str):
    """{id: rule-generation item} of a hypotheses stage; a clear error for any other stage."""
    from reasondistill.errors import ReasonDistillError
    from reasondistill.records import Example, read_records
    from reasondistill.redis.hypotheses import ITEMS_FILE

    path = hyp_dir / ITEMS_FILE
    if not path.is_file():
        raise ReasonDistillError(
            f"{who}: {hyp_dir} has no {ITEMS_FILE}: `hypotheses` must name a hypotheses stage"
        )
    return {ex.id: ex for ex in read_records(path, Example)}


class RuleScoresStage(Stage):
    Config = RuleScoresConfig
    produces = frozenset({Artifact.TRACES})

    def run(self, ctx: StageContext) -> dict:
        from reasondistill.redis.hypotheses import (
            APPLICATIONS_FILE,
            application_items,
            as_trace,
            attach,
            distinct,
        )
        from reasondistill.tasks import load_task
        from reasondistill.traces.store import TraceStore

        cfg: RuleScoresConfig = ctx.cfg
        hyp_dir = ctx.path(cfg.hypotheses)
        items = load_items(hyp_dir, f"rule_scores stage {ctx.name!r}")
        hyps = distinct(items, read_traces(hyp_dir), cfg.dedup)
        verify = load_task(hyp_dir).verify
        applier = TEACHERS.get(cfg.applier.kind)(cfg.applier, ctx)
        with TraceStore(ctx.out_dir / APPLICATIONS_FILE) as store:
            applier.generate(application_items(hyps), store, verify)
            attach(hyps, store.read())
        scored = [as_trace(h) for h in hyps]
        write_jsonl_atomic(traces_file(ctx.out_dir), scored)
        apps = [p for h in hyps for p in h.predictions]
        return {
            "tasks": len({h.item.id for h in hyps}),
            "distinct_rules": len(hyps),
            "applications": len(apps),
            "mean_score": sum(t.score for t in scored) / max(len(scored), 1),
            "perfect_rules": sum(t.score == 1.0 for t in scored),
            "errors": sum(p["error"] is not None for p in apps),
            "completion_tokens": sum(p["usage"].get("completion_tokens", 0) for p in apps),
        }


STAGES.register(
    "rule_scores",
    RuleScoresStage,
    description="apply each rule to each demonstration, score and deduplicate (ReDis)",
    paper="arXiv 2504.10647",
)
