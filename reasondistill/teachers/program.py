"""`program` teacher: the task's own gold rationales, rendered as traces.

Procedural tasks know how they built each answer, so their worked solution is a perfect
teacher; it is the reference point the model teachers are compared against.
"""

from __future__ import annotations

from typing import Literal

from reasondistill.records import Example
from reasondistill.teachers.base import TEACHERS, Teacher, TeacherConfig, Verify
from reasondistill.traces.store import TraceStore


class ProgramConfig(TeacherConfig):
    kind: Literal["program"]
    # n > 1 repeats the same gold trace (sample 0..n-1), to size-match a sampled teacher.


class ProgramTeacher(Teacher):
    Config = ProgramConfig

    def generate(self, examples: list[Example], store: TraceStore, verify: Verify) -> None:
        for ex in examples:
            # Gold rationale first, as a CoT teacher would write it; an example without one
            # becomes an answer-only trace.
            placement = "before" if ex.rationale is not None else "none"
            completion = self.template.render(ex.answer, ex.rationale, placement)
            prompt = self.template.prompt(ex.question)
            store.append(
                self.make_trace(ex, s, prompt, completion, verify, usage={})
                for s in range(self.cfg.n)
                if not store.has(ex.id, s)
            )


TEACHERS.register("program", ProgramTeacher, description="gold traces written from the task's own rationales (no model)")
