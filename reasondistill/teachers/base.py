"""The teacher seam: a teacher turns examples into scored Trace records in a TraceStore.

Each teacher kind is one file: a config schema (a StrictModel whose `kind` is a Literal)
and a Teacher subclass, registered with `TEACHERS.register(kind, Cls)` and imported in
teachers/__init__.py. The `generate` stage validates `teacher: {kind: ...}` against the
discriminated union of every registered config (`TEACHERS.config_union()`).

Every teacher prompts and parses through its `template` (traces/templates): a trace keeps the
prompt it was given (text or chat messages) and the text generated, and its rationale and
answer are the template's parse of that text. A format stage re-renders traces in the
student's template, so the two need not be the same.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from pydantic import Field

from reasondistill.config import StageContext, StrictModel
from reasondistill.records import Example, Prompt, Trace
from reasondistill.registry import Registry
from reasondistill.traces.store import TraceStore
from reasondistill.traces.templates import TemplateConfig, build_template, template_field

Verify = Callable[[Example, str], bool]  # task verifier: exact verdict on a parsed answer


class TeacherConfig(StrictModel):
    kind: str
    n: int = Field(1, ge=1, description="samples per example")
    template: TemplateConfig = template_field(
        "how the teacher is prompted and its text parsed (the template it was trained with)"
    )


class Teacher:
    """Base of teacher kinds. Subclasses set `Config` and implement `generate`."""

    Config: ClassVar[type[TeacherConfig]]
    # True for a language model that answers any prompt (hf, openai); False for the procedural
    # teachers, which only answer their task's questions. Uses that send other prompts (the style
    # annotator) need one that is.
    any_prompt: ClassVar[bool] = False

    def __init__(self, cfg: TeacherConfig, ctx: StageContext | None = None) -> None:
        self.cfg, self.ctx = cfg, ctx
        self.template = build_template(cfg.template)

    @property
    def name(self) -> str:
        """Provenance written into every trace's `teacher` field."""
        return self.cfg.kind

    def generate(self, examples: list[Example], store: TraceStore, verify: Verify) -> None:
        """Write cfg.n traces per example into `store`, skipping (example_id, sample) pairs it
        already holds, so a rerun after a kill continues where the last one stopped."""
        raise NotImplementedError

    def make_trace(
        self, ex: Example, sample: int, prompt: Prompt, completion: str, verify: Verify, **extra
    ) -> Trace:
        """A Trace with rationale/answer parsed from the generated text `completion` by the
        teacher's template, and the verifier's 1.0/0.0 score."""
        rationale, answer = self.template.parse(completion)
        score = 1.0 if answer is not None and verify(ex, answer) else 0.0
        return Trace(
            example_id=ex.id,
            teacher=self.name,
            sample=sample,
            prompt=prompt,
            completion=completion,
            rationale=rationale,
            answer=answer,
            score=score,
            **extra,
        )


TEACHERS: Registry[type[Teacher]] = Registry("teacher", "teachers", config=lambda t: t.Config)


def build_teacher(cfg: TeacherConfig, ctx: StageContext | None = None) -> Teacher:
    """The Teacher for a validated config (its `kind` selects the registered class)."""
    return TEACHERS.get(cfg.kind)(cfg, ctx)
