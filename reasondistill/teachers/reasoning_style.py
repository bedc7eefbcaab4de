"""`reasoning_style` teacher: emergent-style reasoning traces without a reasoning model.

For procedural tasks (arithmetic, multiplication: gold rationales that are chains of
equations) it writes traces in the manner of a reasoning model such as DeepSeek-R1: framing,
exploration with caught slips ("Wait, ..."), verification ("Let me check ..."), synthesis
(traces/style/emergent.py; Lippmann & Yang, arXiv 2504.01738, distil from such traces). Each
trace is drawn from its own seeded generator (stage seed, example id, sample), so a resumed
run writes the same traces, and `wrong_rate` of them end at a wrong answer, which the task's
verifier scores 0. With a real reasoning model the same recipe uses the hf or openai teacher
with the think template instead.
"""

from __future__ import annotations

import hashlib
import random
from typing import Literal

from pydantic import Field

from reasondistill.errors import ReasonDistillError
from reasondistill.records import Example
from reasondistill.teachers.base import TEACHERS, Teacher, TeacherConfig, Verify
from reasondistill.traces.store import TraceStore


class ReasoningStyleConfig(TeacherConfig):
    kind: Literal["reasoning_style"]
    wrong_rate: float = Field(
        0.1, ge=0, le=1, description="share of traces with an uncaught slip: a wrong final answer"
    )
    slip_rate: float = Field(0.5, ge=0, le=1, description="share of traces with a slip caught by 'Wait, ...'")
    hmm_rate: float = Field(0.3, ge=0, le=1, description="share with a hesitation ('Hmm, let me think.')")
    explore_rate: float = Field(0.6, ge=0, le=1, description="share trying another route ('What if ...')")
    verify_rate: float = Field(0.85, ge=0, le=1, description="share checking the result ('Let me check ...')")
    wrong_verify: float = Field(
        0.3, ge=0, le=1, description="a trace that ends wrong checks at verify_rate * wrong_verify"
    )


class ReasoningStyleTeacher(Teacher):
    """Procedural traces in a reasoning model's style: framing, slips caught by 'Wait', checks, synthesis."""

    Config = ReasoningStyleConfig

    def generate(self, examples: list[Example], store: TraceStore, verify: Verify) -> None:
        from reasondistill.traces.style.emergent import EmergentStyle, write_emergent

        cfg: ReasoningStyleConfig = self.cfg
        style = EmergentStyle(
            cfg.wrong_rate, cfg.slip_rate, cfg.hmm_rate, cfg.explore_rate, cfg.verify_rate, cfg.wrong_verify
        )
        seed = getattr(getattr(self.ctx, "cfg", None), "seed", 0)
        for ex in examples:
            if not ex.rationale:
                raise ReasonDistillError(
                    f"reasoning_style teacher: example {ex.id!r} has no gold rationale to write a trace from "
                    "(use a procedural task, or the hf / openai teacher)"
                )
            todo = [s for s in range(cfg.n) if not store.has(ex.id, s)]
            traces = []
            for s in todo:
                key = f"{seed}/{ex.id}/{s}".encode()
                rng = random.Random(int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big"))
                text, answer = write_emergent(ex.question, ex.rationale, ex.answer, rng, style)
                completion = self.template.render(answer, text, "before")
                traces.append(
                    self.make_trace(ex, s, self.template.prompt(ex.question), completion, verify, usage={})
                )
            store.append(traces)


TEACHERS.register("reasoning_style", ReasoningStyleTeacher, paper="arXiv 2504.01738")
