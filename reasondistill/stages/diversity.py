"""`diversity` stage: how varied a model's sampled solutions are, per question.

Self-improvement that trains on its own correct samples can collapse onto one solution per
question (model collapse); IMM (arXiv 2503.02103) contrasts merging with that effect, and the
authors' README names the falling diversity of synthetic data as why plain iterations plateau.
Put inside a repeat block on the iteration's `generate` stage, it draws the curve over iterations.

```yaml
diversity: {kind: diversity, traces: samples}     # all samples, before filtering
```
metrics.json (shared shape, one group "samples"): distinct_correct (mean number of distinct
correct solutions per question, whitespace-normalised rationale + answer, with a normal 95%
interval), distinct (the same over all parseable samples), solved (fraction of questions with a
correct sample, Wilson interval), correct (fraction of samples correct), n (questions),
samples_per_question.
"""

from __future__ import annotations

import math
from typing import Literal

from reasondistill.artifacts import METRICS_FILE, Artifact, read_traces
from reasondistill.config import Ref
from reasondistill.records import write_json_atomic
from reasondistill.stages.base import STAGES, Stage, StageConfig, StageContext


class DiversityConfig(StageConfig):
    kind: Literal["diversity"]
    traces: Ref(Artifact.TRACES)


def _key(rationale: str | None, answer: str | None) -> tuple[str, str]:
    return (" ".join((rationale or "").split()), " ".join((answer or "").split()))


def _mean_ci(values: list[float]) -> tuple[float | None, float | None, float | None]:
    n = len(values)
    if not n:
        return None, None, None
    mean = sum(values) / n
    if n < 2:
        return mean, None, None
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return mean, mean - 1.96 * sd / math.sqrt(n), mean + 1.96 * sd / math.sqrt(n)


def diversity_metrics(traces) -> dict:
    """The "samples" group of metrics.json (see the module docstring) for a list of Trace."""
    from reasondistill.evaluate.metrics import wilson_interval

    by_q: dict[str, list] = {}
    for t in traces:
        by_q.setdefault(t.example_id, []).append(t)
    correct_sets = [{_key(t.rationale, t.answer) for t in ts if t.score == 1.0} for ts in by_q.values()]
    all_sets = [{_key(t.rationale, t.answer) for t in ts if t.answer is not None} for ts in by_q.values()]
    dc, dc_lo, dc_hi = _mean_ci([len(s) for s in correct_sets])
    da, da_lo, da_hi = _mean_ci([len(s) for s in all_sets])
    solved = sum(bool(s) for s in correct_sets)
    lo, hi = wilson_interval(solved, len(by_q)) if by_q else (None, None)
    scored = [t.score for t in traces if t.score is not None]
    return {
        "distinct_correct": dc,
        "distinct_correct_ci_low": dc_lo,
        "distinct_correct_ci_high": dc_hi,
        "distinct": da,
        "distinct_ci_low": da_lo,
        "distinct_ci_high": da_hi,
        "solved": solved / len(by_q) if by_q else None,
        "solved_ci_low": lo,
        "solved_ci_high": hi,
        "correct": sum(s == 1.0 for s in scored) / len(scored) if scored else None,
        "n": len(by_q),
        "samples_per_question": len(traces) / len(by_q) if by_q else None,
    }


class DiversityStage(Stage):
    Config = DiversityConfig
    produces = frozenset({Artifact.METRICS})

    def run(self, ctx: StageContext) -> dict:
        metrics = {"samples": diversity_metrics(read_traces(ctx.path(ctx.cfg.traces)))}
        write_json_atomic(ctx.out_dir / METRICS_FILE, metrics)
        return {k: metrics["samples"][k] for k in ("distinct_correct", "distinct", "solved")}


STAGES.register(
    "diversity",
    DiversityStage,
    description="distinct correct solutions per question among a model's samples (collapse check)",
    paper="arXiv 2503.02103",
)
