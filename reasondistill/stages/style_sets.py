"""`style_sets` stage: the size-matched training sets of arXiv 2504.01738's arms, one split each.

```yaml
sets:
  kind: style_sets
  traces: kept                          # the emergent set (ST), e.g. a filter stage's correct traces
  source: {stage: data, split: pool}    # the same questions with step-by-step rationales
  splits:                               # split name -> arm (traces/style/arms.py)
    st: {kind: emergent}
    st_hc: {kind: hardcoded}            # rewritten with the emergent set's style profile
    st_hc_w: {kind: hardcoded, wrong_answer: true}
    st_nt: {kind: no_trace}
    sbs: {kind: step_by_step}
```
Every arm is built from the same examples: those of `source` whose question has an emergent
trace (joined on the question text, so traces imported from a file join too), in `source`
order, the first `max_examples`. `match: tokens` then repeats each arm's rows, in order, until
it holds as many training tokens (traces/style/profile.py's proxy) as the longest arm: train
such sets by `epochs`, not `max_steps`, to give every arm the same tokens.

Outputs (produces examples and metrics): `<split>.jsonl` of Example rows whose `answer` is the
answer the arm teaches (ST-HC-W: the wrong one; the gold is `metadata.gold`) and whose
`rationale` is the arm's trace (None for ST-NT), so a format stage renders them and a tokenizer
stage learns their words; metrics.json {split: style summary} (a report's `metric:` can be
any of its numbers) and sets.md, the profile of every arm beside the emergent target's. No
task.json: these answers are not gold, so no evaluation reads them as a task.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from reasondistill.artifacts import METRICS_FILE, Artifact, examples_file, read_examples, read_traces
from reasondistill.config import ExampleSource, Ref
from reasondistill.errors import ReasonDistillError
from reasondistill.records import Example, write_json_atomic, write_jsonl_atomic
from reasondistill.stages.base import STAGES, Stage, StageConfig, StageContext
from reasondistill.traces.style.arms import STYLE_ARMS
from reasondistill.traces.style.lexicon import LexiconField, lexicon_field

_SPLIT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
TARGET = "emergent_target"  # metrics.json's group for the emergent set's profile


class StyleSetsConfig(StageConfig):
    kind: Literal["style_sets"]
    traces: Ref(Artifact.TRACES) = Field(description="the emergent traces (ST) and the style profile to copy")
    source: ExampleSource = Field(description="the same questions with step-by-step rationales (SBS, ST-HC)")
    splits: dict[str, STYLE_ARMS.config_union()] = Field(
        min_length=1, description="split name -> arm {kind: ...}"
    )
    lexicon: LexiconField = lexicon_field()
    max_examples: int | None = Field(None, ge=1, description="the first N shared examples (all: None)")
    match: Literal["examples", "tokens"] = Field(
        "examples",
        description="size matching: the same examples, or also the same training tokens (rows repeated)",
    )

    @field_validator("splits")
    @classmethod
    def _names(cls, v: dict) -> dict:
        bad = [n for n in v if not _SPLIT_NAME.fullmatch(n)]
        if bad:
            raise ValueError(
                f"split name {bad[0]!r}: use letters, digits, '_' and '-' (it names <split>.jsonl)"
            )
        if TARGET in v:
            raise ValueError(
                f"split name {TARGET!r} is taken: metrics.json reports the emergent set under it"
            )
        return v


class StyleSetsStage(Stage):
    Config = StyleSetsConfig
    produces = frozenset({Artifact.EXAMPLES, Artifact.METRICS})

    def run(self, ctx: StageContext) -> dict:
        from reasondistill.traces.style.arms import ArmEnv
        from reasondistill.traces.style.profile import StyleAnalyzer, token_proxy
        from reasondistill.traces.style.summary import group_summary

        cfg: StyleSetsConfig = ctx.cfg
        items = shared_items(ctx, cfg)
        analyzer = StyleAnalyzer(cfg.lexicon.build())
        env = ArmEnv(cfg.seed, [analyzer.profile(it.emergent) for it in items])
        rows: dict[str, list[Example]] = {}
        for split, arm in cfg.splits.items():
            try:
                built = arm.build(items, env)
            except ValueError as e:
                raise ReasonDistillError(
                    f"style_sets {ctx.name!r}: split {split!r} ({arm.kind}): {e}"
                ) from None
            rows[split] = [
                Example(
                    id=it.example_id,
                    task=it.task,
                    question=it.question,
                    answer=answer,
                    rationale=rationale,
                    split=split,
                    metadata={"arm": arm.model_dump(mode="json"), "gold": it.gold},
                )  # fmt: skip
                for it, (rationale, answer) in zip(items, built, strict=True)
            ]
        tokens = {s: sum(token_proxy(_text(e)) for e in exs) for s, exs in rows.items()}
        if cfg.match == "tokens":
            rows = {s: _repeat_to(exs, max(tokens.values())) for s, exs in rows.items()}
            tokens = {s: sum(token_proxy(_text(e)) for e in exs) for s, exs in rows.items()}
        metrics = {TARGET: group_summary(env.profiles)}
        for split, exs in rows.items():
            metrics[split] = group_summary([analyzer.profile(e.rationale or "") for e in exs[: len(items)]])
            metrics[split]["train_tokens_proxy"] = tokens[split]
            metrics[split]["rows"] = len(exs)
        for split, exs in rows.items():
            write_jsonl_atomic(examples_file(ctx.out_dir, split), exs)
        (ctx.out_dir / "sets.md.tmp").write_text(_markdown(metrics), encoding="utf-8")
        (ctx.out_dir / "sets.md.tmp").replace(ctx.out_dir / "sets.md")
        write_json_atomic(ctx.out_dir / METRICS_FILE, metrics)
        return {"examples": len(items), "rows": {s: len(e) for s, e in rows.items()}, "tokens_proxy": tokens}


def shared_items(ctx: StageContext, cfg: StyleSetsConfig):
    """The examples every arm is built from: `source` order, those with an emergent trace."""
    from reasondistill.traces.style.arms import ArmItem
    from reasondistill.traces.style.read import split_reasoning
    from reasondistill.traces.templates import question_from

    emergent = {}
    for t in read_traces(ctx.path(cfg.traces)):
        if t.answer is None:
            continue  # unparseable: no answer to teach
        try:
            q = question_from(t.prompt)
        except ValueError as e:
            raise ReasonDistillError(f"style_sets: trace of {t.example_id!r}: {e}") from None
        # The lowest sample of each question (a filter stage keeps one already).
        emergent.setdefault(q.strip(), (t.rationale or split_reasoning(t.completion)[0], t.answer))
    items = []
    for ex in read_examples(ctx.path(cfg.source.stage), cfg.source.split, cfg.source.limit):
        hit = emergent.get(ex.question.strip())
        if hit is not None and hit[0].strip():
            items.append(
                ArmItem(ex.id, ex.task, ex.question, ex.answer, ex.rationale, hit[0].strip(), hit[1])
            )
        if cfg.max_examples is not None and len(items) == cfg.max_examples:
            break
    if not items:
        raise ReasonDistillError(
            f"style_sets: no question of {cfg.source.stage}/{cfg.source.split} has a trace in {cfg.traces!r}"
        )
    if cfg.max_examples is not None and len(items) < cfg.max_examples:
        ctx.log.warning("style_sets: only %d shared examples (max_examples=%d)", len(items), cfg.max_examples)
    return items


def _text(e: Example) -> str:
    return f"{e.rationale or ''} {e.answer}"


def _repeat_to(exs: list[Example], tokens: int) -> list[Example]:
    """`exs`, then repeats of them in order (ids `<id>#<k>`), until they hold `tokens` tokens."""
    from reasondistill.traces.style.profile import token_proxy

    out, total, k = list(exs), sum(token_proxy(_text(e)) for e in exs), 1
    while total < tokens:
        for e in exs:
            if total >= tokens:
                break
            out.append(e.model_copy(update={"id": f"{e.id}#{k}"}))
            total += token_proxy(_text(e))
        k += 1
    return out


def _markdown(metrics: dict) -> str:
    keys = ["n", "rows", "share_3of4_pivot_types", "pivots_per_1k_words", "realization_per_trace",
            "verification_per_trace", "exploration_per_trace", "integration_per_trace", "words_mean",
            "share_framing", "share_exploration", "share_verification", "share_synthesis", "train_tokens_proxy"]  # fmt: skip
    names = list(metrics)
    lines = ["# Style profile of every arm's training set", "", "| | " + " | ".join(names) + " |",
             "|" + "---|" * (len(names) + 1)]  # fmt: skip
    for k in keys:
        cells = [metrics[n].get(k) for n in names]
        lines.append(f"| {k} | " + " | ".join("—" if v is None else f"{v:.3g}" for v in cells) + " |")
    return "\n".join(lines) + "\n"


STAGES.register(
    "style_sets", StyleSetsStage, paper="arXiv 2504.01738",
    description="size-matched training sets of the style arms (ST, ST-HC, ST-HC-W, ST-NT, SBS), one split each",
)  # fmt: skip
