"""`multiplication`: a*b with `digits_a` x `digits_b` digits, gold rationale by partial products.

Format:
  question   "47*36"
  rationale  "47*6=282, 47*30=1410, 282+1410=1692"   one partial product per non-zero digit
                                                    of b (least significant first), then
                                                    running sums of the partial products
  answer     "1692"
"""

from __future__ import annotations

import random

from pydantic import Field

from reasondistill.records import Example
from reasondistill.tasks.arithmetic import operand_range, verify_integer
from reasondistill.tasks.base import TASKS, ProceduralTask, TaskConfig


class MultiplicationConfig(TaskConfig):
    digits_a: int = Field(2, ge=1, le=18, description="digits of the first factor")
    digits_b: int = Field(1, ge=1, le=18, description="digits of the second factor")


class MultiplicationTask(ProceduralTask):
    """Long multiplication, the classic partial-products rationale."""

    name = "multiplication"
    Config = MultiplicationConfig

    def make(self, rng: random.Random) -> tuple[str, str, str]:
        a = rng.randint(*operand_range(self.config.digits_a))
        b = rng.randint(*operand_range(self.config.digits_b))
        # Zero digits of b contribute nothing and are skipped; b == 0 keeps one step.
        parts = [int(d) * 10**k for k, d in enumerate(reversed(str(b))) if d != "0"] or [0]
        steps = [f"{a}*{m}={a * m}" for m in parts]
        total = a * parts[0]
        for m in parts[1:]:
            steps.append(f"{total}+{a * m}={total + a * m}")
            total += a * m
        return f"{a}*{b}", str(a * b), ", ".join(steps)

    def verify(self, example: Example, answer: str | None) -> bool:
        return verify_integer(answer, example.answer)


TASKS.register("multiplication", MultiplicationTask, description="long multiplication with the partial-products rationale")
