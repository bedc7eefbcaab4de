"""`rule_pairs` stage: preference pairs of rules by score margin (ReDis, arXiv 2504.10647).

```yaml
pairs: {kind: rule_pairs, scores: scores}     # margin: the authors' d per task, or `margin: N`
```
Every ordered pair of a task's distinct rules with score_x > score_y + d (scores = demonstrations
reproduced) becomes a TRL prompt/chosen/rejected row on the rule-generation prompt, rendered by
`template` (the student's). The authors' d: 1 (1D-ARC), 2 (ACRE), 3 (List Functions), 4 (MiniSCAN).
Output: rows.jsonl (+ the template record); no pair at all is an error (nothing to align on).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from reasondistill.artifacts import ROWS_FILE, Artifact, read_traces
from reasondistill.config import Ref
from reasondistill.records import write_jsonl_atomic
from reasondistill.stages.base import STAGES, Stage, StageConfig, StageContext
from reasondistill.traces.templates import (
    TemplateConfig,
    build_template,
    template_field,
    write_template_record,
)


class RulePairsConfig(StageConfig):
    kind: Literal["rule_pairs"]
    scores: Ref(Artifact.TRACES) = Field(description="a rule_scores stage")
    margin: int | None = Field(
        None, ge=0, description="d: chosen beats rejected by more than d; None: the paper's per task"
    )
    template: TemplateConfig = template_field("how the student is prompted (its rows)")


def read_scored(stage_dir, who: str):
    """The scored rules of a rule_scores stage; a clear error for any other traces."""
    from reasondistill.errors import ReasonDistillError

    scored = read_traces(stage_dir)
    if any("correct" not in t.metadata or "predictions" not in t.metadata for t in scored):
        raise ReasonDistillError(
            f"{who}: {stage_dir} holds traces without rule scores: `scores` must name a rule_scores stage"
        )
    return scored


class RulePairsStage(Stage):
    Config = RulePairsConfig
    produces = frozenset({Artifact.PREFERENCES})

    def run(self, ctx: StageContext) -> dict:
        from reasondistill.errors import ReasonDistillError
        from reasondistill.redis.hypotheses import pairs

        cfg: RulePairsConfig = ctx.cfg
        who = f"rule_pairs stage {ctx.name!r}"
        scored = read_scored(ctx.path(cfg.scores), who)
        template = build_template(cfg.template)
        try:
            found = pairs(scored, cfg.margin)
        except ValueError as e:
            raise ReasonDistillError(f"{who}: {e}") from None
        if not found:
            raise ReasonDistillError(
                f"{who}: no task has two rules whose scores differ by more than its margin"
            )
        rows = [
            {
                "prompt": template.prompt(x.metadata["question"]),
                "chosen": template.completion(x.answer, None, "none"),
                "rejected": template.completion(y.answer, None, "none"),
                "example_id": x.example_id,
                "metadata": {
                    "score_chosen": x.metadata["correct"],
                    "score_rejected": y.metadata["correct"],
                    "margin": d,
                    "demos": x.metadata["demos"],
                },
            }  # fmt: skip
            for x, y, d in found
        ]
        write_jsonl_atomic(ctx.out_dir / ROWS_FILE, rows)
        write_template_record(ctx.out_dir, cfg.template)
        return {"pairs": len(rows), "tasks": len({r["example_id"] for r in rows})}


STAGES.register(
    "rule_pairs",
    RulePairsStage,
    description="preference pairs of a task's rules by score margin (ReDis)",
    paper="arXiv 2504.10647",
)
