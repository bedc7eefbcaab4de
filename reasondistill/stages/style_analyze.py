"""`style_analyze` stage: the style profile (pivots, phases, length) of a trace set or of a
model's test-time outputs, split by correct / wrong / unknown (arXiv 2504.01738's analysis).

```yaml
st_style:      {kind: style_analyze, traces: kept}                               # a trace set
sbs_style:     {kind: style_analyze, examples: {stage: sets, split: sbs}}        # rationales of examples
student_style: {kind: style_analyze, predictions: student_eval, split: test_id}  # do students copy the pivots?
```
Exactly one input. A trace's verdict is its score (1.0 correct); an example's is whether its
answer is its gold (`metadata.gold` of a style_sets split, else the answer itself: correct); a
prediction's is evaluate's `correct`. Reasoning is split off each text as
traces/style/read.py does (<think> blocks, Reasoning:/Answer: lines).

With `annotator: {teacher: {kind: openai, ..., template: {kind: chat}}}` a language model labels
the pivots and phases of every sentence instead of the lexicon (traces/style/annotate.py); the
same files are written from its labels, plus annotation.json (calls, unparsed replies, and how
often the annotator and the lexicon agree on the paper's >= 3-of-4-types verdict) and the
teacher's replies (annotations.jsonl; a rerun after a kill resumes them).

Outputs: metrics.json {all, correct, wrong, unknown: summary; empty groups left out} (the shared shape: a report's
`metric: share_3of4_pivot_types` tabulates it over arms and seeds), summary.json, summary.md,
profiles.jsonl (one profile per trace) and style_*.png (traces/style/analyze.py).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from reasondistill.artifacts import METRICS_FILE, PREDICTIONS_FILE, Artifact, read_examples, read_traces
from reasondistill.config import ExampleSource, Ref, exactly_one
from reasondistill.errors import ReasonDistillError
from reasondistill.records import read_jsonl
from reasondistill.stages.base import STAGES, Stage, StageConfig, StageContext
from reasondistill.traces.style.annotate import AnnotatorConfig
from reasondistill.traces.style.lexicon import LexiconField, lexicon_field


class StyleAnalyzeConfig(StageConfig):
    kind: Literal["style_analyze"]
    traces: Ref(Artifact.TRACES) | None = None
    examples: ExampleSource | None = None
    predictions: Ref(Artifact.METRICS) | None = Field(None, description="an evaluate stage: its predictions")
    split: str | None = Field(None, description="with `predictions`: only this split's (default all)")
    lexicon: LexiconField = lexicon_field()
    tokenizer: Ref(Artifact.TOKENIZER, Artifact.MODEL) | None = Field(
        None, description="count tokens with this stage's tokenizer (default: words + punctuation)"
    )
    annotator: AnnotatorConfig | None = Field(
        None, description="label pivots and phases with a language model instead of the lexicon"
    )
    charts: bool = True

    @model_validator(mode="after")
    def _one_input(self):
        exactly_one(
            self, "traces", "examples", "predictions", hint="a trace set, examples, or a model's predictions"
        )
        if self.split is not None and self.predictions is None:
            raise ValueError("`split` selects predictions; use `examples: {stage, split}` for examples")
        return self


class StyleAnalyzeStage(Stage):
    Config = StyleAnalyzeConfig
    produces = frozenset({Artifact.METRICS})

    @classmethod
    def check_plan(cls, cfg: StyleAnalyzeConfig, configs) -> list[str]:
        if cfg.predictions is None:
            return []
        kinds = {c.kind for c in configs(str(cfg.predictions))}
        if kinds and kinds != {"evaluate"}:
            return [f"predictions: stage {cfg.predictions!r} is a {', '.join(sorted(kinds))} stage; this needs "
                    "an evaluate stage (its predictions.jsonl)"]  # fmt: skip
        splits = {s for c in configs(str(cfg.predictions)) for s in c.splits}
        if cfg.split is not None and splits and cfg.split not in splits:
            return [
                f"split: {cfg.split!r} is not evaluated by {cfg.predictions!r}; splits: {', '.join(sorted(splits))}"
            ]
        return []

    def run(self, ctx: StageContext) -> dict:
        from reasondistill.traces.style.analyze import analyze, write_analysis
        from reasondistill.traces.style.profile import StyleAnalyzer

        cfg: StyleAnalyzeConfig = ctx.cfg
        items, source = load_items(cfg, ctx)
        if not items:
            raise ReasonDistillError(f"style_analyze {ctx.name!r}: {source} holds no traces to analyse")
        lexicon = cfg.lexicon.build()
        analyzer = StyleAnalyzer(lexicon, _token_counter(ctx, cfg.tokenizer) if cfg.tokenizer else None)
        profiles, groups = analyze(items, analyzer)
        extra: dict = {}
        if cfg.annotator is not None:
            profiles, groups, extra["annotation.json"] = _annotate(cfg.annotator, ctx, items, analyzer, profiles)
        write_analysis(
            ctx.out_dir, profiles, groups, title=f"Style profile: {ctx.name}", source=source,
            lexicon=lexicon.to_dict(), profiles_file="profiles.jsonl", charts=cfg.charts,
            # Empty groups left out: a report makes a column of every group it sees.
            extra_files={METRICS_FILE: {g: m for g, m in groups.items() if m["n"]}, **extra},
        )  # fmt: skip
        return {
            **{g: {"n": s["n"], "share_3of4_pivot_types": s.get("share_3of4_pivot_types")} for g, s in groups.items()},
            **({"annotation": extra["annotation.json"]} if extra else {}),
        }


def _annotate(cfg: AnnotatorConfig, ctx: StageContext, items, analyzer, lexicon_profiles):
    """(the annotator's profiles of the traces it labelled, their groups, annotation.json)."""
    from reasondistill.traces.style.annotate import ANNOTATIONS_FILE, LLMAnnotator
    from reasondistill.traces.style.summary import group_of, summarize

    extras = [{**it.meta, "group": group_of(it.correct)} for it in items]
    llm = LLMAnnotator(cfg, ctx, ctx.out_dir / ANNOTATIONS_FILE, analyzer.count_tokens)
    labelled, info = llm.profile_all([it.text for it in items], extras)
    pairs = [(a, b) for a, b in zip(labelled, lexicon_profiles, strict=True) if a is not None]
    if not pairs:
        raise ReasonDistillError(
            f"style_analyze {ctx.name!r}: the annotator's replies to all {len(items)} traces failed to parse "
            f"(see {ANNOTATIONS_FILE}); a model that follows the reply format is needed"
        )
    kept = [a for a, _ in pairs]
    # How far the two detectors agree, on the traces both profiled: the paper's verdict and the types.
    info["agree_3of4"] = sum((a.distinct_pivot_types >= 3) == (b.distinct_pivot_types >= 3) for a, b in pairs) / len(pairs)
    info["distinct_types_mean_abs_diff"] = sum(abs(a.distinct_pivot_types - b.distinct_pivot_types) for a, b in pairs) / len(pairs)
    return kept, summarize(kept, [p.extra["group"] for p in kept]), info


def load_items(cfg: StyleAnalyzeConfig, ctx: StageContext):
    """(TraceText items, a description of the source)."""
    from reasondistill.traces.style.read import TraceText, same_answer, split_reasoning

    if cfg.traces is not None:
        items = [
            TraceText(t.rationale if t.rationale is not None else split_reasoning(t.completion)[0],
                      None if t.score is None else t.score >= 1.0, {"id": t.example_id, "sample": t.sample})
            for t in read_traces(ctx.path(cfg.traces))
        ]  # fmt: skip
        return items, f"traces of {cfg.traces}"
    if cfg.examples is not None:
        exs = read_examples(ctx.path(cfg.examples.stage), cfg.examples.split, cfg.examples.limit)
        items = [
            TraceText(
                e.rationale or "", same_answer(e.answer, e.metadata.get("gold", e.answer)), {"id": e.id}
            )
            for e in exs
        ]
        return items, f"{cfg.examples.stage}/{cfg.examples.split}"
    path = ctx.path(cfg.predictions) / PREDICTIONS_FILE
    if not path.is_file():
        raise ReasonDistillError(f"style_analyze: {ctx.path(cfg.predictions)} holds no {PREDICTIONS_FILE}")
    items = [
        TraceText(
            split_reasoning(r["prediction"])[0],
            r.get("correct"),
            {"id": r["example_id"], "split": r.get("split")},
        )
        for r in read_jsonl(path)
        if cfg.split is None or r.get("split") == cfg.split
    ]
    return items, f"predictions of {cfg.predictions}" + (f" ({cfg.split})" if cfg.split else "")


def _token_counter(ctx: StageContext, ref: str):
    from transformers import AutoTokenizer

    from reasondistill.artifacts import tokenizer_dir

    tok = AutoTokenizer.from_pretrained(str(tokenizer_dir(ctx.path(ref))))
    return lambda text: len(tok(text, add_special_tokens=False)["input_ids"])


STAGES.register(
    "style_analyze", StyleAnalyzeStage, paper="arXiv 2504.01738",
    description="style profile (pivots, phases, length) of traces, examples or a model's outputs, by correctness",
)  # fmt: skip
