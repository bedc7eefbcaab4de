"""`list_functions`: List Functions (Rule, 2020) as a ReDis induction task (arXiv 2504.10647).

Procedural tasks come from reasoning-gym's 17 list_functions generators (`functions` picks some),
called until `demos` + `queries` distinct inputs exist; redis/rules/list_functions.py knows each
generator's function. One generator (14) draws from Python's global `random`: its state is seeded
from the task's own RNG around the call and restored after, so items stay reproducible and the
caller's global RNG is untouched. With `path`, the original file (250 tasks, 8 + 8 pairs).
"""

from __future__ import annotations

import random

from pydantic import Field, field_validator

from reasondistill.errors import ReasonDistillError
from reasondistill.redis.rules import list_functions as rules
from reasondistill.redis.rules.base import RuleError, parse_list
from reasondistill.tasks.base import TASKS
from reasondistill.tasks.induction import InductionConfig, InductionTask, Instance


class ListFunctionsConfig(InductionConfig):
    functions: list[int] | None = Field(None, description="reasoning-gym generator numbers 0..16; None: all")
    demos: int = Field(8, ge=1, description="demonstrations per task (the original: 8)")
    queries: int = Field(8, ge=1, description="queries per task (the original: 8)")

    @field_validator("functions")
    @classmethod
    def _known(cls, v: list[int] | None) -> list[int] | None:
        bad = [f for f in v or [] if f not in rules.GENERATOR_SPECS]
        if bad or (v is not None and not v):
            raise ValueError(f"functions must be a non-empty list of 0..16, got {v}")
        return v


class ListFunctionsTask(InductionTask):
    """List Functions: reasoning-gym's generators (or the original file); lists as "[1, 2]"."""

    name = "list_functions"
    Config = ListFunctionsConfig
    answer_kind = "list"

    def make(self, rng: random.Random) -> Instance:
        from reasoning_gym.induction.list_functions import generators

        c = self.config
        k = rng.choice(sorted(c.functions or rules.GENERATOR_SPECS))
        gen = getattr(generators, f"generate_{k}")
        pairs: dict[str, str] = {}
        for _ in range(20):
            state = random.getstate()
            random.seed(rng.getrandbits(64))
            try:
                got = gen(rng)
            finally:
                random.setstate(state)
            for i, o in got.items():
                pairs.setdefault(i, o)
            if len(pairs) >= c.demos + c.queries:
                break
        else:
            # A config problem (this generator's input space is too small), not a bad rule.
            raise ReasonDistillError(
                f"task list_functions: generator (function) {k} gave fewer than demos + queries = "
                f"{c.demos + c.queries} distinct inputs in 20 calls; lower config.demos / config.queries "
                f"or choose other config.functions"
            )
        items = list(pairs.items())[: c.demos + c.queries]
        return Instance(
            items[: c.demos], items[c.demos :], {"rule": rules.GENERATOR_SPECS[k], "rg_function": k}
        )

    def check_pair(self, input: str, output: str) -> str | None:
        try:
            parse_list(input), parse_list(output)
        except RuleError as e:
            return str(e)
        return None


TASKS.register(
    "list_functions",
    ListFunctionsTask,
    description="List Functions induction tasks: reasoning-gym generators or the original file",
)
