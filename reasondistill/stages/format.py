"""`format` stage: examples (gold rationales) or traces -> SFT rows {prompt, completion, example_id}.

Rows follow TRL's prompt/completion convention. `placement` puts the rationale before or
after the label, or drops it (arXiv 2406.14511). Output: out_dir/rows.jsonl, written
atomically after every row has been built, so a bad input leaves nothing behind.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import Field, model_validator

from reasondistill.errors import ReasonDistillError
from reasondistill.records import Trace, read_jsonl, write_jsonl_atomic
from reasondistill.stages.base import STAGES, Ref, Stage, StageConfig, StageContext
from reasondistill.stages.common import ExampleSource
from reasondistill.traces.format import Placement, render_completion, render_prompt


class FormatConfig(StageConfig):
    kind: Literal["format"]
    source: ExampleSource | None = None  # examples with gold rationales
    traces: Ref | None = None  # a generate / filter stage (its traces.jsonl)
    placement: Placement = "before"
    max_rows: int | None = Field(None, ge=1, description="first N rows, in input order")

    @model_validator(mode="after")
    def _one_input(self):
        if (self.source is None) == (self.traces is None):
            raise ValueError("give exactly one of `source` (examples) or `traces` (a generate/filter stage)")
        return self


@dataclass
class Item:
    """What a row is rendered from, whichever input it came from."""

    example_id: str
    prompt: str
    answer: str
    rationale: str | None


def rationale_for(item: Item, cfg: FormatConfig) -> str | None:
    """The rationale to render for `item`: the one seam for rationale transforms
    (shuffled tokens, key tokens only, masking; arXiv 2406.14511), applied here in order
    once a `transforms` field exists. Today: the rationale unchanged."""
    return item.rationale


def _items(cfg: FormatConfig, ctx: StageContext) -> list[Item]:
    if cfg.source is not None:
        from reasondistill.tasks import load_examples  # lazy: no tasks <-> stages import cycle

        exs = load_examples(ctx.path(cfg.source.stage), cfg.source.split, cfg.source.limit)
        return [Item(e.id, render_prompt(e.question), e.answer, e.rationale) for e in exs]
    items = []
    for row in read_jsonl(ctx.path(cfg.traces) / "traces.jsonl"):
        t = Trace.model_validate(row)
        if t.answer is None:
            continue  # the teacher wrote no parseable answer: nothing to teach
        items.append(Item(t.example_id, t.prompt, t.answer, t.rationale))
    return items


def build_rows(items: list[Item], cfg: FormatConfig) -> list[dict]:
    """Render every item; fails on the first one that cannot be rendered, naming it."""
    rows = []
    for it in items[: cfg.max_rows]:
        rationale = rationale_for(it, cfg) if cfg.placement != "none" else None
        try:
            completion = render_completion(it.answer, rationale, cfg.placement)
        except ValueError as e:
            raise ReasonDistillError(f"format: example {it.example_id!r}: {e}") from None
        rows.append({"prompt": it.prompt, "completion": completion, "example_id": it.example_id})
    return rows


class FormatStage(Stage):
    Config = FormatConfig

    def run(self, ctx: StageContext) -> dict:
        cfg: FormatConfig = ctx.cfg
        items = _items(cfg, ctx)
        rows = build_rows(items, cfg)
        if not rows:
            raise ReasonDistillError(f"format: {ctx.name} produced no rows (empty input?)")
        write_jsonl_atomic(ctx.out_dir / "rows.jsonl", rows)
        return {"rows": len(rows), "inputs": len(items), "placement": cfg.placement}


STAGES.register("format", FormatStage)
