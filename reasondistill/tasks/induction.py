"""In-context induction tasks (ReDis, Sadeq et al., arXiv 2504.10647): demonstrations + queries.

A task instance is a set of demonstrations (input/output pairs) and queries; each *query* is one
Example whose `demonstrations` are the task's, whose question is the direct few-shot prompt
(redis/prompts.py) and whose answer is the query's output. Queries of one task share
`metadata.group`, which the hypothesis stages group by (a rule is proposed per task, not per query).

Two sources, selected by `path`:
- the original files (`path: data/acre/acre.jsonl`): JSONL, one task a line, {"idx", "train":
  [{"input", "output"}...], "test": [...]} (the authors load lines with Python's eval, so a line
  that is a Python literal rather than JSON is accepted too). Splits `train` and `test` reproduce
  the authors' split exactly (generate_data_ir.py: random.seed(10); random.shuffle(tasks); the
  last len - int(0.9 len) tasks are the test set). Each example keeps the task's `idx`. A list
  input (ACRE's objects) is shown as the authors' prompts show it: Python's str() of the list.
- procedurally (no `path`): each subclass's `make(rng)`, item `t` of a split from
  Random(item_seed(seed, split, t)); its metadata also carries the generator's rule (`rule`),
  which the program rule teacher (teachers/rules.py) describes; its rationale is that rule in words.

Verification: `match: normalised` (default) parses both sides (lists of integers, a word,
space-separated tokens: spacing is free, case is not) and requires the whole answer to be exactly
one such value;
`match: exact` is the authors' comparison: for list tasks the first `[...]` substring of the
answer must equal the gold string, otherwise the answer, stripped, must equal it. Departure: both compare
the answer our prompt template parsed (the "Answer:" line), not the whole reply.
"""

from __future__ import annotations

import ast
import itertools
import json
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from reasondistill.errors import ReasonDistillError
from reasondistill.records import Demonstration, Example, read_lines
from reasondistill.redis.prompts import fewshot_question
from reasondistill.tasks.base import Task, TaskConfig, item_seed

FILE_SPLITS = ("train", "test")
# What parsing a hostile literal can raise besides ValueError / SyntaxError: TypeError for an
# unhashable key ({[1]: 2}), RecursionError / MemoryError for deep nesting.
BAD_LITERAL = (ValueError, SyntaxError, TypeError, MemoryError, RecursionError)
_FIRST_LIST = re.compile(r"\[.*?\]")  # the authors' utils.extract_list_substring
_INT_LIST = re.compile(r"\[\s*(-?\d+(\s*,\s*-?\d+)*)?\s*\]")


class InductionConfig(TaskConfig):
    path: str | None = Field(
        None, description="an original ReDis JSONL file (one task a line); None: procedural"
    )
    match: Literal["normalised", "exact"] = Field(
        "normalised", description="normalised: parsed values; exact: the authors' string comparison"
    )
    queries: int = Field(4, ge=1, description="procedural: queries per task (file tasks keep all)")

    @model_validator(mode="after")
    def _file_or_knobs(self):
        if self.path is not None:
            knobs = sorted(self.model_fields_set - {"path", "match"})
            if knobs:
                raise ValueError(
                    f"{', '.join(knobs)}: procedural knobs do nothing with `path` (a file task); remove them"
                )
        return self


@dataclass
class Instance:
    """One task: demonstrations and queries as (input, output) strings, plus provenance."""

    demos: list[tuple[str, str]]
    queries: list[tuple[str, str]]
    meta: dict[str, Any] = field(default_factory=dict)  # per task (rule, idx, line)
    query_meta: list[dict[str, Any]] = field(default_factory=list)  # per query (ACRE's type)


class InductionTask(Task):
    """Base of arc_1d, list_functions, acre, mini_scan: file loader or generator, exact verifier."""

    answer_kind: ClassVar[Literal["list", "word", "tokens"]]

    def __init__(self, config: InductionConfig) -> None:
        super().__init__(config)
        self._file: list[Instance] | None = None

    @property
    def procedural(self) -> bool:  # type: ignore[override]  (per instance: a file task is finite)
        return self.config.path is None

    @property
    def dedup_questions(self) -> bool:  # type: ignore[override]
        # An original file keeps every query: the authors' split is by task and their benchmark
        # keeps all of a task's queries, even one that repeats a query of another task.
        return self.procedural

    def difficulty(self) -> dict[str, Any]:
        return {} if self.config.path else self.config.model_dump(mode="json", exclude={"path", "match"})

    # -- procedural -------------------------------------------------------------------------
    def make(self, rng: random.Random) -> Instance:
        """One procedural task with `self.config.queries` queries (and demos per the config)."""
        raise NotImplementedError

    def instance(self, split: str, t: int, seed: int) -> Instance:
        s = item_seed(seed, split, t)
        inst = self.make(random.Random(s))
        inst.meta = {**inst.meta, "source": f"procedural:{self.name}", "item_seed": s}
        return inst

    # -- files --------------------------------------------------------------------------------
    def check(self) -> None:
        if self.config.path is not None:
            self._load()

    def _load(self) -> list[Instance]:
        if self._file is None:
            self._file = [self._parse(lineno, line) for lineno, line in self._lines()]
            self._check_unique_idx(self._file)
            if not self._file:
                raise ReasonDistillError(f"task {self.name}: {self.config.path}: no tasks")
        return self._file

    def _check_unique_idx(self, instances: list[Instance]) -> None:
        """Refuse two tasks with one `idx`: their queries would merge into one task group."""
        first: dict[str, int] = {}
        for inst in instances:
            key, line = str(inst.meta["idx"]), inst.meta["line"]  # the group is f"idx{idx}"
            if key in first:
                raise ReasonDistillError(
                    f"task {self.name}: {self.config.path}, line {line}: duplicate idx {inst.meta['idx']!r} "
                    f"(also line {first[key]}; a line without idx gets its line number - 1)"
                )
            first[key] = line

    def _lines(self) -> Iterator[tuple[int, str]]:
        path = Path(self.config.path)
        if not path.is_file():
            raise ReasonDistillError(f"task {self.name}: config.path: no such file: {path}")
        for lineno, line in read_lines(path, who=f"task {self.name}: "):
            if line.strip():
                yield lineno, line

    def _parse(self, lineno: int, line: str) -> Instance:
        where = f"task {self.name}: {self.config.path}, line {lineno}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            try:  # the authors read lines with eval(): a Python literal is a valid line there
                row = ast.literal_eval(line.strip())
            except BAD_LITERAL:
                raise ReasonDistillError(f"{where}: invalid JSON ({e.msg} at column {e.colno})") from None
        except (RecursionError, MemoryError):
            raise ReasonDistillError(f"{where}: invalid JSON (nested too deeply)") from None
        try:
            return self._instance_of(row, lineno)
        except ValueError as e:
            raise ReasonDistillError(f"{where}: {e}") from None

    def _instance_of(self, row: Any, lineno: int) -> Instance:
        if not isinstance(row, dict):
            raise ValueError(f"expected a JSON object, got {type(row).__name__}")
        pairs = {}
        for key in ("train", "test"):
            items = row.get(key)
            if not isinstance(items, list) or not items:
                what = "demonstrations" if key == "train" else "queries"
                raise ValueError(f"{key!r}: no {what} (need a non-empty list of {{input, output}})")
            pairs[key] = [self._pair(key, i, x) for i, x in enumerate(items)]
        kinds = {type(x.get("input")).__name__ for key in ("train", "test") for x in row[key]}
        if len(kinds) > 1:
            raise ValueError(f"mismatched demonstration shapes: inputs are {' and '.join(sorted(kinds))}")
        idx = row.get("idx", lineno - 1)
        query_meta = [{"type": x["type"]} if "type" in x else {} for x in row["test"]]
        return Instance(pairs["train"], pairs["test"], {"idx": idx, "line": lineno}, query_meta)

    def _pair(self, key: str, i: int, x: Any) -> tuple[str, str]:
        if not isinstance(x, dict) or "input" not in x or "output" not in x:
            raise ValueError(f"{key}[{i}]: expected {{input, output}}, got {str(x)[:60]!r}")
        value, out = x["input"], x["output"]
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            value = str(value)  # ACRE's objects, shown as the authors' prompts show them
        if not isinstance(value, str) or not isinstance(out, str) or not out.strip():
            raise ValueError(f"{key}[{i}]: input must be text (or a list of names) and output non-empty text")
        if "\n" in out or out != out.strip():
            raise ValueError(f"{key}[{i}]: output must be one line without surrounding spaces, got {out!r}")
        problem = self.check_pair(value, out)
        if problem:
            raise ValueError(f"mismatched demonstration shapes: {key}[{i}]: {problem}")
        return value, out

    def check_pair(self, input: str, output: str) -> str | None:
        """Why an (input, output) pair does not fit this task, or None."""
        return None

    # -- examples -----------------------------------------------------------------------------
    def _instances(self, split: str, seed: int) -> Iterator[tuple[int, Instance]]:
        if self.procedural:
            for t in itertools.count():
                yield t, self.instance(split, t, seed)
            return
        if split not in FILE_SPLITS:
            raise ReasonDistillError(
                f"task {self.name}: a file task has splits {' and '.join(FILE_SPLITS)} (the authors' 90/10 "
                f"split), not {split!r}"
            )
        tasks = list(self._load())
        random.Random(10).shuffle(tasks)  # = random.seed(10); random.shuffle(data) in the authors' code
        cut = int(len(tasks) * 0.9)
        yield from enumerate(tasks[:cut] if split == "train" else tasks[cut:])

    def examples(self, split: str, n: int | None, seed: int) -> Iterator[Example]:
        index = 0
        for t, inst in self._instances(split, seed):
            group = f"{split}/{t}" if self.procedural else f"idx{inst.meta['idx']}"
            demos = [Demonstration(input=i, output=o) for i, o in inst.demos]
            for j, (query, answer) in enumerate(inst.queries):
                if n is not None and index >= n:
                    return
                meta = {
                    "source": inst.meta.get("source", self.config.path), "index": index, "group": group,
                    "task_index": t, "query_index": j, "query": query, "difficulty": self.difficulty(),
                    **{k: v for k, v in inst.meta.items() if k != "source"},
                    **(inst.query_meta[j] if j < len(inst.query_meta) else {}),
                }  # fmt: skip
                question = fewshot_question(self.name, inst.demos, query)
                ex = self.item(split, index, question, answer, self._rule_words(inst, group), meta)
                yield ex.model_copy(update={"demonstrations": demos})
                index += 1

    def _rule_words(self, inst: Instance, group: str) -> str | None:
        """A procedural task's known rule in words: its gold rationale (one fixed phrasing; what a
        tokenizer stage trained on the examples learns the rules' words from)."""
        if "rule" not in inst.meta:
            return None
        from reasondistill.redis.rules import book_for

        return book_for(self.name).describe(inst.meta["rule"], random.Random(f"{self.name}/{group}"))

    # -- verification -------------------------------------------------------------------------
    def verify(self, example: Example, answer: str | None) -> bool:
        return answer_matches(self.answer_kind, self.config.match, answer, example.answer)


def answer_matches(kind: str, match: str, answer: str | None, gold: str) -> bool:
    """Exact verdict on one answer (see the module docstring for the two modes)."""
    if answer is None or not answer.strip():
        return False
    if match == "exact":
        if kind == "list":
            found = _FIRST_LIST.search(answer)
            return found is not None and found.group(0) == gold
        return answer.strip() == gold  # the authors' replies come stripped
    if kind == "list":
        a, g = parse_int_list(answer), parse_int_list(gold)
        return a is not None and a == g
    if kind == "word":
        return answer.strip() == gold.strip()
    return answer.split() == gold.split()


def parse_int_list(text: str) -> list[int] | None:
    """The integers of a text that is exactly one list "[1, 2, 3]" (spaces free), else None."""
    text = text.strip()
    if not _INT_LIST.fullmatch(text):
        return None
    return [int(x) for x in re.findall(r"-?\d+", text)]
