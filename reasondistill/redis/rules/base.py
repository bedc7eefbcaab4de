"""Rules as data: a spec (a JSON dict with a `family`) that a rule book can run, describe in
words, and perturb into plausible wrong rules. What the program rule teacher writes from a
procedural task's known rule (teachers/rules.py): no LLM can write rules on these CPUs.

A wrong rule is one of (ReDis's teacher writes many rules of mixed quality, arXiv 2504.10647):
- a sibling: another member of the rule's family group (sort descending for ascending);
- a perturbed parameter (shift by 3 instead of 2, a colour swapped);
- a rule that fits some demonstrations only: `memorised`, a lookup table of some demonstrations
  with a wrong rule for every other input (the generic family below, shared by all tasks).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from reasondistill.errors import ReasonDistillError

Spec = dict[str, Any]


class RuleError(ValueError):
    """The rule cannot be applied to this input (wrong shape, index out of range, ...)."""


class RuleBook:
    """The rules of one task. Subclasses set `task` and implement `run`, `words` and `variants`."""

    task: str = ""

    def run(self, spec: Spec, value: str) -> str:
        """The output of the (non-memorised) rule `spec` on input `value`; RuleError if undefined."""
        raise NotImplementedError

    def words(self, spec: Spec, rng: random.Random) -> str:
        """One natural-language phrasing of `spec` (chosen by `rng`), on one line."""
        raise NotImplementedError

    def variants(self, spec: Spec, rng: random.Random, demos: Sequence[tuple[str, str]] = ()) -> list[Spec]:
        """Plausible wrong rules near `spec` (siblings, perturbed parameters), given the task's
        demonstrations; may be empty."""
        raise NotImplementedError

    # -- shared --------------------------------------------------------------------------------
    def apply(self, spec: Spec, value: str) -> str:
        if spec.get("family") == "memorised":
            for given, out in spec["table"]:
                if given == value:
                    return out
            return self.apply(spec["otherwise"], value)
        return self.run(spec, value)

    def describe(self, spec: Spec, rng: random.Random) -> str:
        if spec.get("family") == "memorised":
            cases = "; ".join(f"if the input is {i}, the output is {o}" for i, o in spec["table"])
            lead = rng.choice(["", "By cases: ", "Look the input up: "])
            return f"{lead}{cases}; for any other input: {self.describe(spec['otherwise'], rng)}"
        return self.words(spec, rng)

    def memorised(self, demos: Sequence[tuple[str, str]], wrong: Spec, rng: random.Random) -> Spec | None:
        """A rule fitting some (not all) demonstrations: a table of them, `wrong` elsewhere."""
        if len(demos) < 2:
            return None
        k = rng.randint(1, min(3, max(1, len(demos) // 2)))  # a short table: rules stay one readable line
        return {
            "family": "memorised",
            "table": [list(d) for d in rng.sample(list(demos), k)],
            "otherwise": wrong,
        }

    def fits(self, spec: Spec, value: str, output: str) -> bool:
        try:
            return self.apply(spec, value) == output
        except RuleError:
            return False


BOOKS: dict[str, RuleBook] = {}


def register_book(book: RuleBook) -> RuleBook:
    if book.task in BOOKS:
        raise ValueError(f"duplicate rule book {book.task!r}")
    BOOKS[book.task] = book
    return book


def book_for(task: str) -> RuleBook:
    from reasondistill.redis import rules  # noqa: F401  (fills BOOKS)

    if task not in BOOKS:
        raise ReasonDistillError(
            f"no rule book for task {task!r} (the rule_program teacher knows the rules of "
            f"{', '.join(sorted(BOOKS))} only)"
        )
    return BOOKS[task]


def parse_list(value: str) -> list[int]:
    """A "[1, 2, 3]" input as ints; RuleError for anything else."""
    import json

    try:
        out = json.loads(value)
    except (ValueError, TypeError, MemoryError, RecursionError):  # JSONDecodeError is a ValueError
        raise RuleError(f"not a list of integers: {value[:40]!r}") from None
    if not isinstance(out, list) or not all(isinstance(x, int) and not isinstance(x, bool) for x in out):
        raise RuleError(f"not a list of integers: {value[:40]!r}")
    return out


def show_list(xs: Sequence[int]) -> str:
    return str(list(xs))
