"""Steps of a step-by-step rationale, the unit both trace writers (emergent.py, hardcoded.py) build on.

A procedural task's gold rationale is a chain of equations, "7+8=15, 15+9=24, 24+6=30"
(arithmetic) or "47*6=282, 47*30=1410, 282+1410=1692" (multiplication); a free-text rationale
(GSM8K) is a list of sentences. `Step.value` is the integer result of an equation step, None
for a sentence; `recompute` re-evaluates the chain after a slip so an error propagates.
"""

from __future__ import annotations

import ast
import operator
import re
from dataclasses import dataclass

_EQ = re.compile(r"^\s*([-+*/0-9 ()]+?)\s*=\s*(-?\d+)\s*$")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul}


@dataclass(frozen=True)
class Step:
    text: str  # "15+9=24", or a sentence
    lhs: str | None = None  # "15+9"
    value: int | None = None  # 24

    def with_value(self, value: int) -> Step:
        return Step(f"{self.lhs}={value}", self.lhs, value)


def split_steps(rationale: str) -> list[Step]:
    """The steps of a rationale: comma- or line-separated equations, else its sentences."""
    pieces = [p for line in rationale.splitlines() for p in line.split(", ") if p.strip()]
    eqs = [_EQ.match(p) for p in pieces]
    if pieces and all(eqs):
        return [
            Step(f"{m.group(1).strip()}={int(m.group(2))}", m.group(1).strip(), int(m.group(2))) for m in eqs
        ]
    sentences = [s.strip() for line in rationale.splitlines() for s in _SENTENCE.split(line) if s.strip()]
    return [Step(s) for s in sentences]


def evaluate(expr: str) -> int | None:
    """The integer value of +, -, * over integers (None for anything else); no eval()."""
    try:
        node = ast.parse(expr, mode="eval").body
    except SyntaxError:
        return None

    def ev(n) -> int:
        if isinstance(n, ast.Constant) and isinstance(n.value, int):
            return n.value
        if isinstance(n, ast.UnaryOp) and isinstance(n.op, ast.USub):
            return -ev(n.operand)
        if isinstance(n, ast.BinOp) and type(n.op) in _OPS:
            return _OPS[type(n.op)](ev(n.left), ev(n.right))
        raise ValueError

    try:
        return ev(node)
    except ValueError:
        return None


def recompute(steps: list[Step], index: int, wrong: int) -> list[Step] | None:
    """The chain with step `index` giving `wrong`, and every later step that used its value
    re-evaluated from the wrong one (a slip that propagates); None when the chain cannot be
    recomputed (a step that is not an equation)."""
    if any(s.value is None for s in steps):
        return None
    out = list(steps)
    out[index] = steps[index].with_value(wrong)
    for j in range(index + 1, len(steps)):
        lhs = steps[j].lhs or ""
        for k in range(j):
            if steps[k].value != out[k].value:  # substitute a changed earlier result, once
                lhs = re.sub(rf"(?<!\d){steps[k].value}(?!\d)", str(out[k].value), lhs, count=1)
        value = evaluate(lhs)
        if value is None:
            return None
        out[j] = Step(f"{lhs}={value}", lhs, value)
    return out


def terms(question: str) -> list[int] | None:
    """The operands of a pure sum "7+8+9+6" (None for anything else)."""
    if not re.fullmatch(r"\d+(?:\+\d+)+", question.strip()):
        return None
    return [int(x) for x in question.split("+")]
