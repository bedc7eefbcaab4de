"""`acre`: ACRE, abstract causal reasoning (Zhang et al., arXiv 2103.14232), as a ReDis task.

Procedural tasks come from reasoning-gym's acre dataset: its blicket machines are generated in
batches from one seed, so task t is sample t % CHUNK of the batch of CHUNK samples seeded by
(stage seed, split, t // CHUNK); each sample has 6 demonstrations and 4 queries (`queries` keeps
the first ones). Inputs are lists of object names shown as Python's str() of the list, as the
authors' prompts show them. The rule a task's demonstrations support is redis/rules/acre.py's
`infer`. With `path`, the original file (100 tasks, 6 + 4; its queries carry a `type`).
"""

from __future__ import annotations

import functools

from pydantic import Field

from reasondistill.redis.rules import acre as rules
from reasondistill.redis.rules.base import RuleError
from reasondistill.tasks.base import TASKS, item_seed
from reasondistill.tasks.induction import InductionConfig, InductionTask, Instance

CHUNK = 100  # samples per reasoning-gym batch (~0.4 s to build)
LIGHTS = ("on", "off", "undetermined")


@functools.lru_cache(maxsize=8)
def _batch(seed: int) -> list[dict]:
    from reasoning_gym import create_dataset

    return create_dataset("acre", seed=seed, size=CHUNK).questions  # 4 consecutive queries per sample


def _names(objs: list[list[str]]) -> str:
    return str([" ".join(o) for o in objs])


class AcreConfig(InductionConfig):
    queries: int = Field(4, ge=1, le=4, description="queries per task (the original: 4)")


class AcreTask(InductionTask):
    """ACRE: reasoning-gym's blicket machines (or the original file); on / off / undetermined."""

    name = "acre"
    Config = AcreConfig
    answer_kind = "word"

    def instance(self, split: str, t: int, seed: int) -> Instance:
        c, k = divmod(t, CHUNK)
        batch_seed = item_seed(seed, split, c) % 2**31
        four = _batch(batch_seed)[4 * k : 4 * k + 4]
        demos = [(_names(e["input"]), e["output"]) for e in four[0]["examples"]]
        queries = [(_names(q["question"]["input"]), q["question"]["output"]) for q in four][
            : self.config.queries
        ]
        meta = {
            "rule": rules.infer(demos),
            "source": "procedural:acre",
            "rg_seed": batch_seed,
            "rg_sample": k,
        }
        return Instance(demos, queries, meta)

    def check_pair(self, input: str, output: str) -> str | None:
        try:
            rules.objects(input)
        except RuleError as e:
            return str(e)
        return None if output in LIGHTS else f"output must be one of {', '.join(LIGHTS)}, got {output!r}"


TASKS.register(
    "acre",
    AcreTask,
    description="ACRE blicket induction tasks: reasoning-gym generator or the original file",
    paper="arXiv 2103.14232",
)
