"""The training sets of arXiv 2504.01738's arms, built from the same examples.

    emergent       ST       the emergent traces as they are (a reasoning model's, or emergent.py's)
    hardcoded      ST-HC    the step-by-step rationale rewritten with the emergent set's style
                            (hardcoded.py); `wrong_answer: true` is ST-HC-W, the same traces
                            with the final answer changed to a wrong one
    step_by_step   SBS      the plain step-by-step rationale
    no_trace       ST-NT    question -> answer, no trace

Each arm is a config of one builder (`kind` selects it, STYLE_ARMS registry); every builder
returns one (rationale or None, answer) per item, in item order, so the arms are size-matched
by construction (stages/style_sets.py).
"""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass
from typing import Literal

from pydantic import Field

from reasondistill.config import StrictModel
from reasondistill.registry import Registry
from reasondistill.traces.style.hardcoded import Target, write_hardcoded
from reasondistill.traces.style.profile import TraceProfile
from reasondistill.traces.style.read import same_answer

_INT = re.compile(r"-?\d+")


@dataclass(frozen=True)
class ArmItem:
    """One example, with everything any arm is built from."""

    example_id: str
    task: str
    question: str
    gold: str
    step_by_step: str | None  # the gold (or a teacher's plain) step-by-step rationale
    emergent: str  # the emergent trace's reasoning
    emergent_answer: str


@dataclass
class ArmEnv:
    """What builders share: the seed and the emergent set's profiles (one per item)."""

    seed: int
    profiles: list[TraceProfile]

    def rng(self, *parts: object) -> random.Random:
        """A generator for one purpose and one item, independent of every other draw."""
        key = "/".join(str(p) for p in (self.seed, *parts)).encode()
        return random.Random(int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big"))


class ArmConfig(StrictModel):
    kind: str

    def build(self, items: list[ArmItem], env: ArmEnv) -> list[tuple[str | None, str]]:
        raise NotImplementedError


class EmergentArm(ArmConfig):
    """ST: the emergent traces as they are."""

    kind: Literal["emergent"] = "emergent"

    def build(self, items, env):
        return [(it.emergent, it.emergent_answer) for it in items]


class HardcodedArm(ArmConfig):
    """ST-HC: rationales rewritten with the emergent set's pivot counts and phase shares (ST-HC-W with wrong_answer)."""

    kind: Literal["hardcoded"] = "hardcoded"
    wrong_answer: bool = Field(
        False, description="ST-HC-W: change the final answer (and its statement) to a wrong one"
    )
    target: Literal["sampled", "paired"] = Field(
        "sampled",
        description="whose style each trace copies: a trace drawn from the emergent set (the set's profile), "
        "or the same example's emergent trace",
    )

    def build(self, items, env):
        out = []
        pool = [it.gold for it in items]
        for i, it in enumerate(items):
            if not it.step_by_step:
                raise ValueError(f"example {it.example_id!r} has no step-by-step rationale to rewrite")
            # The draws depend on the example, not on the arm: ST-HC and ST-HC-W share traces.
            j = i if self.target == "paired" else env.rng("donor", it.example_id).randrange(len(items))
            trace = write_hardcoded(
                it.question, it.step_by_step, target_of(env.profiles[j]), env.rng("hc", it.example_id)
            )
            answer = (
                wrong_answer(it.gold, env.rng("wrong", it.example_id), pool) if self.wrong_answer else it.gold
            )
            out.append((trace.text(answer), answer))
        return out


class StepByStepArm(ArmConfig):
    """SBS: the plain step-by-step rationale."""

    kind: Literal["step_by_step"] = "step_by_step"

    def build(self, items, env):
        missing = next((it.example_id for it in items if not it.step_by_step), None)
        if missing is not None:
            raise ValueError(f"example {missing!r} has no step-by-step rationale")
        return [(it.step_by_step, it.gold) for it in items]


class NoTraceArm(ArmConfig):
    """ST-NT: question -> answer, no trace."""

    kind: Literal["no_trace"] = "no_trace"

    def build(self, items, env):
        return [(None, it.gold) for it in items]


STYLE_ARMS: Registry[type[ArmConfig]] = Registry("style arm", "style arms")
STYLE_ARMS.register("emergent", EmergentArm, paper="arXiv 2504.01738")
STYLE_ARMS.register("hardcoded", HardcodedArm, paper="arXiv 2504.01738")
STYLE_ARMS.register("step_by_step", StepByStepArm)
STYLE_ARMS.register("no_trace", NoTraceArm)


def target_of(p: TraceProfile) -> Target:
    return Target(dict(p.pivots), p.phase_share, p.words)


def wrong_answer(gold: str, rng: random.Random, pool: list[str]) -> str:
    """A wrong answer, as a careless solver would give: an integer off by a small amount
    (never the gold, never negative when the gold is not), else another example's answer."""
    if _INT.fullmatch(gold.strip()):
        g = int(gold)
        offsets = [d for d in (-3, -2, -1, 1, 2, 3, 10, -10) if g < 0 or g + d >= 0]
        return str(g + rng.choice(offsets))
    others = sorted({a for a in pool if not same_answer(a, gold)})
    if not others:
        raise ValueError(f"no wrong answer to give for {gold!r}: every example has the same answer")
    return rng.choice(others)
