"""`traces_file` stage: traces from a JSONL file, as if a teacher had generated them.

Existing reasoning-trace data sets become a recipe's trace set (produces traces: filter, format,
style_sets and style_analyze read it like a generate stage's). Three row layouts:

    completion      {question, completion: "<think>...</think> answer"}    R1-style dumps
    fields          {question, reasoning, answer}                          s1K: reasoning_field:
                                                                           thinking_trajectories
                                                                           (a list is joined),
                                                                           answer_field: attempt
    conversations   {conversations: [{from|role: user, value|content}, {... assistant ...}]}
                                                                           OpenThoughts, Bespoke-Stratos
                                                                           (<|begin_of_thought|> blocks)

The reasoning is split off as traces/style/read.py does; the answer is the final answer of the
text after it (the last \\boxed{}, an Answer: line, or its last line), one line. With
`gold_field` each trace is scored (1.0 when its answer equals the gold, numbers by value);
without, scores are None (use `filter keep: all`). The prompt is recorded under `template`
(default think), so stages that recover the question read it back. Every row is parsed before
anything is written; a bad one fails naming the file, the line and the field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from reasondistill.artifacts import Artifact, traces_file
from reasondistill.errors import ReasonDistillError
from reasondistill.records import Trace, write_jsonl_atomic
from reasondistill.stages.base import STAGES, Stage, StageConfig, StageContext
from reasondistill.traces.templates import TemplateConfig, build_template
from reasondistill.traces.templates.think import ThinkConfig


class TracesFileConfig(StageConfig):
    kind: Literal["traces_file"]
    path: str = Field(min_length=1, description="local JSONL file, one trace per line")
    format: Literal["completion", "fields", "conversations"] = "completion"
    question_field: str = "question"
    completion_field: str = "completion"
    reasoning_field: str = "reasoning"
    answer_field: str | None = Field(
        None, description="the answer text (fields: required; completion: optional)"
    )
    conversations_field: str = "conversations"
    gold_field: str | None = Field(None, description="gold answer: traces are scored against it")
    id_field: str | None = Field(None, description="example id (default <file stem>/<line>)")
    teacher: str = Field("file", description="provenance written into every trace's `teacher`")
    template: TemplateConfig = Field(
        default_factory=ThinkConfig, description="the template prompts are recorded under (default think)"
    )
    limit: int | None = Field(None, ge=1, description="first N rows")

    @field_validator("path")
    @classmethod
    def _exists(cls, v: str) -> str:
        if not Path(v).is_file():
            raise ValueError(f"trace file {v!r} does not exist")
        return v


class TracesFileStage(Stage):
    Config = TracesFileConfig
    produces = frozenset({Artifact.TRACES})

    @classmethod
    def fingerprint(cls, cfg: TracesFileConfig) -> dict:
        from reasondistill.stages.data import file_digest

        return {cfg.path: file_digest(Path(cfg.path))}

    def run(self, ctx: StageContext) -> dict:
        traces = read_trace_file(ctx.cfg)
        write_jsonl_atomic(traces_file(ctx.out_dir), traces)
        scored = [t.score for t in traces if t.score is not None]
        return {"traces": len(traces), "answered": sum(t.answer is not None for t in traces),
                "accuracy": sum(scored) / len(scored) if scored else None}  # fmt: skip


def read_trace_file(cfg: TracesFileConfig) -> list[Trace]:
    """Every row of the file as a Trace (the first `limit`)."""

    from reasondistill.records import json_object, read_lines
    from reasondistill.traces.style.read import final_answer, same_answer, split_reasoning

    template = build_template(cfg.template)
    out, samples = [], {}
    for lineno, line in read_lines(cfg.path, "traces_file: "):
        if cfg.limit is not None and len(out) == cfg.limit:
            break
        if not line.strip():
            continue
        where = f"traces_file: {cfg.path}, line {lineno}"
        row = json_object(line, where)
        question, text = _question_text(cfg, row, where)
        reasoning, _ = split_reasoning(text)
        if cfg.format == "fields":
            reasoning = text
            text = _field(row, cfg.answer_field or "answer", where)
        elif cfg.answer_field is not None:
            text = _field(row, cfg.answer_field, where) if cfg.answer_field in row else text
        answer = final_answer(text)
        answer = " ".join(answer.split()) if answer else None
        ex_id = (
            str(row[cfg.id_field])
            if cfg.id_field and cfg.id_field in row
            else f"{Path(cfg.path).stem}/{lineno}"
        )
        sample = samples[ex_id] = samples.get(ex_id, -1) + 1
        score = (
            None
            if cfg.gold_field is None
            else float(same_answer(answer, str(_field(row, cfg.gold_field, where))))
        )
        out.append(
            Trace(
                example_id=ex_id,
                teacher=cfg.teacher,
                sample=sample,
                prompt=template.prompt(question),
                completion=text if cfg.format != "fields" else f"<think>\n{reasoning}\n</think>\n\n{text}",
                rationale=reasoning.strip() or None,
                answer=answer,
                score=score,
                metadata={"source": f"{cfg.path}:{lineno}"},
            )  # fmt: skip
        )
    if not out:
        raise ReasonDistillError(f"traces_file: {cfg.path} holds no rows")
    return out


def _field(row: dict, name: str, where: str) -> str:
    if name not in row:
        raise ReasonDistillError(f"{where}: field {name!r} missing; fields: {', '.join(row)}")
    value = row[name]
    if isinstance(value, list) and all(isinstance(x, str) for x in value):
        return "\n".join(value)  # s1K's thinking_trajectories: a list of strings
    if not isinstance(value, str | int | float):
        raise ReasonDistillError(f"{where}: field {name!r} must be text, got {type(value).__name__}")
    return str(value)


def _question_text(cfg: TracesFileConfig, row: dict, where: str) -> tuple[str, str]:
    """(question, the text holding the reasoning) of one row."""
    if cfg.format != "conversations":
        text_field = cfg.reasoning_field if cfg.format == "fields" else cfg.completion_field
        return _field(row, cfg.question_field, where), _field(row, text_field, where)
    turns = row.get(cfg.conversations_field)
    if not isinstance(turns, list) or not all(isinstance(t, dict) for t in turns):
        raise ReasonDistillError(f"{where}: field {cfg.conversations_field!r} must be a list of turns")
    role = lambda t: t.get("from", t.get("role"))  # noqa: E731 (ShareGPT: from/value; OpenAI: role/content)
    said = lambda t: t.get("value", t.get("content"))  # noqa: E731
    users = [said(t) for t in turns if role(t) in ("user", "human")]
    bots = [said(t) for t in turns if role(t) in ("assistant", "gpt")]
    if not users or not bots or not isinstance(users[0], str) or not isinstance(bots[-1], str):
        raise ReasonDistillError(
            f"{where}: {cfg.conversations_field!r} needs a user turn and an assistant turn"
        )
    return users[0], bots[-1]


STAGES.register(
    "traces_file", TracesFileStage,
    description="traces from a JSONL file (R1 dumps, s1K, OpenThoughts), as if a teacher had generated them",
)  # fmt: skip
