"""Stage kinds. Importing this package fills STAGES (explicit registry: one import per kind)."""

from reasondistill.stages import (  # noqa: F401  (imported for their registration side effect)
    bbh_eval,
    data,
    diversity,
    evaluate,
    filter,
    format,
    generate,
    hypotheses,
    hypothesis_eval,
    kd_cache,
    layers,
    layers_report,
    merge,
    report,
    rule_pairs,
    rule_rows,
    rule_scores,
    style_analyze,
    style_sets,
    tokenizer,
    traces_file,
    train,
)
from reasondistill.stages.base import STAGES, Stage, StageConfig, StageContext

__all__ = ["STAGES", "Stage", "StageConfig", "StageContext"]
