"""`format` stage: examples (gold rationales) or traces -> SFT rows {prompt, completion, example_id}.

Rows follow TRL's prompt/completion convention, rendered by `template` (traces/templates):
text for plain, chat messages for chat and think. Traces are re-rendered from their question
(recovered from whatever template's prompt the teacher wrote) and parsed rationale/answer, so
a teacher prompted one way can teach a student prompted another. `placement` puts the
rationale before or after the label, or drops it, and `transforms` rewrite the rationale
first (shuffled tokens, key tokens only, masking, truncation: traces/transforms, arXiv
2406.14511). Output: out_dir/rows.jsonl, out_dir/prompt_template.json (the template, which a
model trained on the rows records; see templates/base.py) and, with transforms,
out_dir/rationales.jsonl {example_id, original, transformed}; written atomically after every
row has been built, so a bad input leaves nothing behind.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import Field, model_validator

from reasondistill.artifacts import ROWS_FILE, Artifact, read_examples, read_traces
from reasondistill.config import ExampleSource, Ref, exactly_one
from reasondistill.errors import ReasonDistillError
from reasondistill.records import write_jsonl_atomic
from reasondistill.stages.base import STAGES, Stage, StageConfig, StageContext
from reasondistill.traces.format import Placement
from reasondistill.traces.templates import (
    TemplateConfig,
    build_template,
    question_from,
    template_field,
    write_template_record,
)
from reasondistill.traces.transforms import RationaleItem, TransformConfig, TransformEnv, apply_transforms


class FormatConfig(StageConfig):
    kind: Literal["format"]
    source: ExampleSource | None = None  # examples with gold rationales
    traces: Ref(Artifact.TRACES) | None = None
    placement: Placement = "before"
    template: TemplateConfig = template_field("how rows are rendered: plain text, or chat / think messages")
    transforms: list[TransformConfig] = Field(
        default_factory=list, description="rationale transforms, applied in order before rendering"
    )
    missing_rationale: Literal["error", "skip"] = Field(
        "error",
        description="an item without a rationale: error (when the placement needs one), or skip it "
        "in every placement, so the arms of a placement ablation train on the same examples",
    )
    max_rows: int | None = Field(None, ge=1, description="first N rows, in input order")

    @model_validator(mode="after")
    def _one_input(self):
        exactly_one(self, "source", "traces", hint="examples, or a stage's traces")
        if self.transforms and self.placement == "none":
            raise ValueError("`transforms` rewrite the rationale, which placement none drops; remove them")
        build_template(self.template).check_placement(self.placement)
        return self


@dataclass
class Item:
    """What a row is rendered from, whichever input it came from."""

    example_id: str
    question: str
    answer: str
    rationale: str | None


def _items(cfg: FormatConfig, ctx: StageContext) -> list[Item]:
    if cfg.source is not None:
        exs = read_examples(ctx.path(cfg.source.stage), cfg.source.split, cfg.source.limit)
        return [Item(e.id, e.question, e.answer, e.rationale) for e in exs]
    items = []
    for t in read_traces(ctx.path(cfg.traces)):
        if t.answer is None:
            continue  # the teacher wrote no parseable answer: nothing to teach
        try:
            question = question_from(t.prompt)
        except ValueError as e:
            raise ReasonDistillError(f"format: trace of {t.example_id!r} (sample {t.sample}): {e}") from None
        items.append(Item(t.example_id, question, t.answer, t.rationale))
    return items


def select_items(items: list[Item], cfg: FormatConfig) -> list[Item]:
    """The items that become rows (rationale-less ones skipped or refused), then the first max_rows.

    A missing rationale is refused here, before any transform runs (a saliency pass over the
    teacher is the expensive part of this stage).
    """
    if cfg.missing_rationale == "skip":
        items = [it for it in items if it.rationale is not None]
    items = items[: cfg.max_rows]
    if cfg.placement != "none":
        bad = next((it for it in items if it.rationale is None), None)
        if bad is not None:
            raise ReasonDistillError(
                f"format: example {bad.example_id!r}: placement {cfg.placement!r} needs a rationale, got None "
                "(set missing_rationale: skip to drop such examples in every placement)"
            )
    return items


def transformed_rationales(items: list[Item], cfg: FormatConfig, env: TransformEnv | None) -> list[str | None]:
    """Every item's rationale after `cfg.transforms` (None when placement is none).

    `env` gives transforms the stage's seed and inputs (tokenizers, the teacher); without one,
    transforms that need no stage input still run, seeded by `cfg.seed`.
    """
    if cfg.placement == "none":
        return [None] * len(items)
    texts: list[str | None] = [it.rationale for it in items]
    if cfg.transforms and items:
        batch = [RationaleItem(it.example_id, it.question, it.answer, it.rationale or "") for it in items]
        texts = list(apply_transforms(cfg.transforms, batch, env or TransformEnv(seed=cfg.seed)))
    return texts


def render_rows(items: list[Item], rationales: list[str | None], cfg: FormatConfig) -> list[dict]:
    """One row per item; fails on the first one that cannot be rendered, naming it."""
    template = build_template(cfg.template)
    rows = []
    for it, rationale in zip(items, rationales, strict=True):
        try:
            completion = template.completion(it.answer, rationale, cfg.placement)
        except ValueError as e:
            raise ReasonDistillError(f"format: example {it.example_id!r}: {e}") from None
        rows.append(
            {"prompt": template.prompt(it.question), "completion": completion, "example_id": it.example_id}
        )
    return rows


def build_rows(items: list[Item], cfg: FormatConfig, env: TransformEnv | None = None) -> list[dict]:
    """Select, transform and render: the rows of `items`."""
    items = select_items(items, cfg)
    return render_rows(items, transformed_rationales(items, cfg, env), cfg)


class FormatStage(Stage):
    Config = FormatConfig
    produces = frozenset({Artifact.ROWS})

    def run(self, ctx: StageContext) -> dict:
        cfg: FormatConfig = ctx.cfg
        inputs = _items(cfg, ctx)
        items = select_items(inputs, cfg)
        rationales = transformed_rationales(items, cfg, TransformEnv(seed=cfg.seed, ctx=ctx))
        rows = render_rows(items, rationales, cfg)
        if not rows:
            raise ReasonDistillError(f"format: {ctx.name} produced no rows (empty input?)")
        if cfg.transforms:  # what each transform made of each rationale, for inspection
            write_jsonl_atomic(
                ctx.out_dir / "rationales.jsonl",
                (
                    {"example_id": it.example_id, "original": it.rationale, "transformed": r}
                    for it, r in zip(items, rationales, strict=True)
                ),
            )
        write_template_record(ctx.out_dir, cfg.template)
        write_jsonl_atomic(ctx.out_dir / ROWS_FILE, rows)
        return {
            "rows": len(rows),
            "inputs": len(inputs),
            "placement": cfg.placement,
            "template": cfg.template.kind,
            "transforms": [t.kind for t in cfg.transforms],
        }


STAGES.register(
    "format", FormatStage, description="examples or traces -> training rows (rationale placement, transforms)",
    paper="arXiv 2406.14511",
)
