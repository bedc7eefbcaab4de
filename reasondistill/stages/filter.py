"""`filter` stage: keep traces by verifier score (rejection sampling keeps the correct ones).

Output: out_dir/traces.jsonl (same schema as the input, written atomically).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from reasondistill.artifacts import Artifact, read_traces, traces_file
from reasondistill.config import Ref
from reasondistill.records import write_jsonl_atomic
from reasondistill.stages.base import STAGES, Stage, StageConfig, StageContext
from reasondistill.traces.filters import filter_traces


class FilterConfig(StageConfig):
    kind: Literal["filter"]
    traces: Ref(Artifact.TRACES)
    keep: Literal["correct", "all", "wrong"] = "correct"  # correct: score == 1.0
    one_per_example: bool = True  # the lowest-index matching sample of each example
    max_rows: int | None = Field(None, ge=1, description="first N kept traces, in input order")
    # A trace with no parseable rationale or answer cannot train a CoT student. Dropping it
    # here (not in `format`) keeps every placement arm of a comparison on the same examples.
    require_rationale: bool = True


class FilterStage(Stage):
    Config = FilterConfig
    produces = frozenset({Artifact.TRACES})

    def run(self, ctx: StageContext) -> dict:
        cfg: FilterConfig = ctx.cfg
        traces = read_traces(ctx.path(cfg.traces))
        usable = [t for t in traces if t.answer is not None and (t.rationale or not cfg.require_rationale)]
        kept = filter_traces(usable, cfg.keep, cfg.one_per_example)[: cfg.max_rows]
        write_jsonl_atomic(traces_file(ctx.out_dir), kept)
        return {
            "kept": len(kept),
            "total": len(traces),
            "unparseable": len(traces) - len(usable),
            "examples": len({t.example_id for t in kept}),
        }


STAGES.register("filter", FilterStage, description="keep traces by verifier score (rejection sampling keeps the correct ones)")
