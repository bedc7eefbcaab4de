"""`arithmetic`: chains of integer additions (and optionally subtractions), e.g. 23+45+12.

Format (chosen for a ~1M-parameter student trained for minutes on CPU):
  question   "23+45+12"              a bare expression: no spaces, no "=?"; prompt templates
                                     belong to the format stage, not to the task
  rationale  "23+45=68, 68+12=80"    one step per operation, left to right: the running
                                     total, the operator and the next term, '=', the new total
  answer     "80"                    the canonical integer (a leading '-' when negative)
Step-by-step partial sums are the known-good format: each step is a 2-operand sum the
model can learn locally, and the previous total is copied from just before ', '.
"""

from __future__ import annotations

import random
import re

from pydantic import Field, field_validator

from reasondistill.records import Example
from reasondistill.tasks.base import TASKS, ProceduralTask, TaskConfig

# Canonical integers only: no leading zeros, no decimal point, no thousands separators.
# "80", "+80", " -12 " pass; "80.0", "080", "1,000", "80 apples" fail. A strict verifier
# keeps rejection sampling honest: a student must emit exactly the number.
_CANONICAL_INT = re.compile(r"[+-]?(0|[1-9][0-9]*)")


def verify_integer(answer: str | None, gold: str) -> bool:
    """True when `answer` (stripped) is a canonical integer string equal to `gold`."""
    if answer is None:
        return False
    s = answer.strip()
    return bool(_CANONICAL_INT.fullmatch(s)) and int(s) == int(gold)


def operand_range(digits: int) -> tuple[int, int]:
    """Inclusive range of `digits`-digit non-negative integers (0 counts as a 1-digit number)."""
    return (0 if digits == 1 else 10 ** (digits - 1)), 10**digits - 1


class ArithmeticConfig(TaskConfig):
    terms: int = Field(3, ge=2, description="number of operands in the chain")
    digits: int = Field(2, ge=1, le=18, description="digits of every operand")
    ops: str = Field("+", description="operators to draw from, uniformly: '+', '-' or '+-'")

    @field_validator("ops")
    @classmethod
    def _known_ops(cls, v: str) -> str:
        if not v or set(v) - set("+-") or len(set(v)) != len(v):
            raise ValueError(f"must be '+', '-' or '+-' (got {v!r})")
        return v


class ArithmeticTask(ProceduralTask):
    """Chains of `terms` operands with `digits` digits each; OOD splits change a knob."""

    name = "arithmetic"
    Config = ArithmeticConfig

    def make(self, rng: random.Random) -> tuple[str, str, str]:
        c = self.config
        lo, hi = operand_range(c.digits)
        nums = [rng.randint(lo, hi) for _ in range(c.terms)]
        ops = [rng.choice(c.ops) for _ in range(c.terms - 1)]
        total, steps = nums[0], []
        for op, x in zip(ops, nums[1:], strict=True):
            new = total + x if op == "+" else total - x
            steps.append(f"{total}{op}{x}={new}")
            total = new
        question = str(nums[0]) + "".join(f"{op}{x}" for op, x in zip(ops, nums[1:], strict=True))
        return question, str(total), ", ".join(steps)

    def verify(self, example: Example, answer: str | None) -> bool:
        return verify_integer(answer, example.answer)


TASKS.register("arithmetic", ArithmeticTask, description="chains of integer additions (and subtractions), with step-by-step running sums")
