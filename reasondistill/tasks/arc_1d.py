"""`arc_1d`: 1D-ARC (Xu et al., arXiv 2305.18354) as a ReDis induction task (arXiv 2504.10647).

Procedural tasks come from reasoning-gym's arc_1d generators (one task family and one grid size
per task, `demos` + `queries` pairs with distinct inputs); `families` restricts them to the ones
our program rule teacher can run as rules (redis/rules/arc_1d.py RG_SPECS: moves, wrapped moves,
gravity, counting, one-step gravity, recolouring, filling between two points and its inverse).
With `path`, the original 1D-ARC file (901 tasks, 3 demonstrations and 1 query each).
Grids are written like the original files: "[0, 2, 2, 0]". A pair whose input and output grids
differ in length is refused in a file: no 1D-ARC rule changes the grid size.
"""

from __future__ import annotations

import random

from pydantic import Field, field_validator, model_validator

from reasondistill.errors import ReasonDistillError
from reasondistill.redis.rules import arc_1d as rules
from reasondistill.redis.rules.base import RuleError, parse_list
from reasondistill.tasks.base import TASKS
from reasondistill.tasks.induction import InductionConfig, InductionTask, Instance


class Arc1DConfig(InductionConfig):
    families: list[str] | None = Field(
        None, description="reasoning-gym arc_1d task names to draw from; None: every supported one"
    )
    min_size: int = Field(10, ge=8, description="grid size range (reasoning-gym needs >= 8)")
    max_size: int = Field(30, ge=8)
    demos: int = Field(3, ge=1, description="demonstrations per task (the original: 3)")
    queries: int = Field(1, ge=1, description="queries per task (the original: 1)")

    @field_validator("families")
    @classmethod
    def _supported(cls, v: list[str] | None) -> list[str] | None:
        bad = [f for f in v or [] if f not in rules.RG_SPECS]
        if bad:
            raise ValueError(
                f"not supported: {', '.join(bad)}; supported: {', '.join(sorted(rules.RG_SPECS))}"
            )
        if v is not None and not v:
            raise ValueError("give at least one family (or omit `families` for all)")
        return v

    @model_validator(mode="after")
    def _sizes(self):
        if self.max_size < self.min_size:
            raise ValueError(f"max_size ({self.max_size}) < min_size ({self.min_size})")
        return self


class Arc1DTask(InductionTask):
    """1D-ARC: reasoning-gym's generators (or the original file); grids as "[0, 2, 2]"."""

    name = "arc_1d"
    Config = Arc1DConfig
    answer_kind = "list"

    def make(self, rng: random.Random) -> Instance:
        from reasoning_gym.arc.arc_1d_tasks import ARC_1D_TASKS

        c = self.config
        family = rng.choice(sorted(c.families or rules.RG_SPECS))
        func, kwargs = ARC_1D_TASKS[family]
        size = rng.randint(c.min_size, c.max_size)
        pairs: dict[str, str] = {}
        for _ in range(50 * (c.demos + c.queries)):  # like reasoning-gym: retry a None; also skip repeats
            got = func(rng, size, **kwargs)
            if got is not None:
                pairs.setdefault(str(got["input"]), str(got["output"]))
            if len(pairs) == c.demos + c.queries:
                break
        else:
            # A config problem (the family cannot make that many distinct grids of that size), not
            # a bad rule: say which keys to change.
            raise ReasonDistillError(
                f"task arc_1d: family {family!r} at size {size} gave fewer than demos + queries = "
                f"{c.demos + c.queries} distinct inputs in {50 * (c.demos + c.queries)} draws; lower "
                f"config.demos / config.queries, raise config.min_size / config.max_size, or choose "
                f"other config.families"
            )
        items = list(pairs.items())
        return Instance(
            items[: c.demos],
            items[c.demos :],
            {"rule": rules.RG_SPECS[family], "rg_task": family, "size": size},
        )

    def check_pair(self, input: str, output: str) -> str | None:
        try:
            a, b = parse_list(input), parse_list(output)
        except RuleError as e:
            return str(e)
        return None if len(a) == len(b) else f"input grid has {len(a)} cells, output {len(b)}"


TASKS.register(
    "arc_1d",
    Arc1DTask,
    description="1D-ARC induction tasks: reasoning-gym generators or the original file",
    paper="arXiv 2305.18354",
)
