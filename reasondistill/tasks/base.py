"""The task seam: a task is a generator (or file loader) plus an exact verifier.

Procedural tasks build item `i` of a split from `random.Random(item_seed(seed, split, i))`,
so any item can be regenerated alone and every split is an independent stream
(STYLE.md 'One seam per extension kind'; reasoning-gym's `Random(seed + idx)` idea, with the
split mixed into the seed so that splits do not share items shifted by one index).
"""

from __future__ import annotations

import hashlib
import itertools
import random
from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import Any, ClassVar

from pydantic import ValidationError

from reasondistill.config import StrictModel, format_validation_error
from reasondistill.errors import ReasonDistillError
from reasondistill.records import Example
from reasondistill.registry import Registry


class TaskConfig(StrictModel):
    """Base of every task's Config: unknown keys are errors (a typo must not be ignored)."""


def item_seed(seed: int, split: str, index: int) -> int:
    """A 64-bit seed for item `index` of `split`, stable across processes and Python versions.

    blake2b rather than `hash()` (salted per process) or `seed + crc32(split) + index`
    (two splits whose crc32 values are close would share most of their items).
    """
    digest = hashlib.blake2b(f"{seed}/{split}/{index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


class Task(ABC):
    """A generator or loader of `Example`s plus an exact verifier.

    Subclasses set `name` (registry name) and `Config` (a TaskConfig whose fields are the
    task's knobs), implement `examples` and `verify`, and register with
    `TASKS.register(name, cls)`.
    """

    name: ClassVar[str]
    Config: ClassVar[type[TaskConfig]]
    # True: an endless seeded stream (`n=None` never ends). False: a finite file read in
    # order, where the seed is ignored.
    procedural: ClassVar[bool] = True
    # True: the data stage drops an example whose question an earlier split already holds (no
    # leakage between splits). False: the task's own split is authoritative (a benchmark file
    # with a fixed split), so every example is kept; its questions still count as seen.
    dedup_questions: ClassVar[bool] = True

    def __init__(self, config: TaskConfig) -> None:
        self.config = config

    @abstractmethod
    def examples(self, split: str, n: int | None, seed: int) -> Iterator[Example]:
        """Items 0..n-1 of `split` (n=None: all of a file, or endless for procedural tasks)."""

    def example(self, split: str, index: int, seed: int) -> Example:
        """Item `index` of `split` alone. Procedural tasks override this to skip the prefix."""
        item = next(itertools.islice(self.examples(split, None, seed), index, None), None)
        if item is None:
            raise ReasonDistillError(f"task {self.name}: split {split!r} has no item {index}")
        return item

    def item(
        self, split: str, index: int, question: str, answer: str, rationale: str | None, metadata: dict
    ) -> Example:
        """Item `index` of `split` as an Example: the one place of the id convention
        `<task>/<split>/<index>`, which every later stage joins on."""
        return Example(
            id=f"{self.name}/{split}/{index}",
            task=self.name,
            question=question,
            answer=answer,
            rationale=rationale,
            split=split,
            metadata=metadata,
        )

    @abstractmethod
    def verify(self, example: Example, answer: str | None) -> bool:
        """Exact verdict: True only for a fully correct answer; None or blank is False."""

    def check(self) -> None:
        """Validate external inputs (files) before any work starts; raise ReasonDistillError."""
        return None  # generators have no external inputs

    def difficulty(self) -> dict[str, Any]:
        """The knobs that define this task's distribution (provenance in every item)."""
        return self.config.model_dump(mode="json")


TASKS: Registry[type[Task]] = Registry("task", "tasks", config=lambda t: t.Config)


def build_task(name: str, config: dict | None, where: str = "config") -> Task:
    """Validate `config` against task `name`'s Config and build the task (no file I/O).

    `where` names the config in error messages, e.g. "splits.test_ood.config".
    """
    cls = TASKS.get(name)  # unknown name: ReasonDistillError listing the allowed names
    try:
        cfg = cls.Config.model_validate(config or {})
    except ValidationError as e:
        # One line ('config.digits: ...; config.x: ...'): it becomes one error of the data stage.
        raise ReasonDistillError(f"task {name}: {'; '.join(format_validation_error(e, cls.Config, where).splitlines())}") from None
    return cls(cfg)


class ProceduralTask(Task):
    """A task whose item `i` is `make(Random(item_seed(seed, split, i)))`; n=None is endless."""

    source: ClassVar[str] = "procedural"

    @abstractmethod
    def make(self, rng: random.Random) -> tuple[str, str, str | None]:
        """One item drawn from `rng`: (question, answer, gold rationale or None)."""

    def example(self, split: str, index: int, seed: int) -> Example:
        s = item_seed(seed, split, index)
        question, answer, rationale = self.make(random.Random(s))
        meta = {
            "source": f"{self.source}:{self.name}",
            "index": index,
            "seed": seed,
            "item_seed": s,
            "difficulty": self.difficulty(),
        }
        return self.item(split, index, question, answer, rationale, meta)

    def examples(self, split: str, n: int | None, seed: int) -> Iterator[Example]:
        indices = itertools.count() if n is None else range(n)
        for i in indices:
            yield self.example(split, i, seed)
