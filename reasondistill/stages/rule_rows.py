"""`rule_rows` stage: SFT rows for rule generation and rule following (ReDis, arXiv 2504.10647).

```yaml
sft_rows: {kind: rule_rows, scores: scores}     # following: chosen (default) | all | none
```
As the authors' construct_pair.py: rule generation rows for every distinct rule of every task
(unfiltered), and rule following rows from the applier's applications (its parsed output, on the
rule-application prompt) of the rules chosen in some preference pair (`margin` as rule_pairs).
Rendered by `template` (the student's). Output: rows.jsonl (+ the template record).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from reasondistill.artifacts import ROWS_FILE, Artifact
from reasondistill.config import Ref
from reasondistill.records import write_jsonl_atomic
from reasondistill.stages.base import STAGES, Stage, StageConfig, StageContext
from reasondistill.stages.rule_pairs import read_scored
from reasondistill.traces.templates import (
    TemplateConfig,
    build_template,
    template_field,
    write_template_record,
)


class RuleRowsConfig(StageConfig):
    kind: Literal["rule_rows"]
    scores: Ref(Artifact.TRACES) = Field(description="a rule_scores stage")
    generation: bool = Field(True, description="rule generation rows: every distinct rule")
    following: Literal["chosen", "all", "none"] = Field(
        "chosen",
        description="rule following rows: applications of rules chosen in some pair, of all rules, or none",
    )
    margin: int | None = Field(None, ge=0, description="as rule_pairs: which rules count as chosen")
    template: TemplateConfig = template_field("how the student is prompted (its rows)")


class RuleRowsStage(Stage):
    Config = RuleRowsConfig
    produces = frozenset({Artifact.ROWS})

    def run(self, ctx: StageContext) -> dict:
        from reasondistill.errors import ReasonDistillError
        from reasondistill.redis.hypotheses import following_rows, generation_rows, pairs

        cfg: RuleRowsConfig = ctx.cfg
        who = f"rule_rows stage {ctx.name!r}"
        scored = read_scored(ctx.path(cfg.scores), who)
        template = build_template(cfg.template)
        rows = generation_rows(scored, template) if cfg.generation else []
        if cfg.following != "none":
            try:
                chosen = {(x.example_id, x.answer) for x, _, _ in pairs(scored, cfg.margin)}
            except ValueError as e:
                raise ReasonDistillError(f"{who}: {e}") from None
            if cfg.following == "all":
                chosen = {(t.example_id, t.answer) for t in scored}
            rows += following_rows(scored, chosen, template)
        if not rows:
            raise ReasonDistillError(f"{who}: no rows (no rules, or generation off and no rule chosen)")
        write_jsonl_atomic(ctx.out_dir / ROWS_FILE, rows)
        write_template_record(ctx.out_dir, cfg.template)
        kinds = [r["kind"] for r in rows]
        return {
            "rows": len(rows),
            "generate_rule": kinds.count("generate_rule"),
            "apply_rule": kinds.count("apply_rule"),
        }


STAGES.register(
    "rule_rows",
    RuleRowsStage,
    description="SFT rows for rule generation and rule following (ReDis)",
    paper="arXiv 2504.10647",
)
