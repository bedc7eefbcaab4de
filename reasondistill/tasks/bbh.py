"""`bbh`: BIG-Bench-Hard task files (Suzgun et al., arXiv 2210.09261), the evaluation of arXiv 2511.05184.

A task file is JSON `{"examples": [{"input": str, "target": str}, ...]}` named `<task>.json`
(the layout of github.com/suzgunmirac/BIG-Bench-Hard, bbh/*.json); `path` names one file or a
directory of them (real BBH files are pointed to by path; tests ship self-written ones). Every
file is parsed before any example is returned, so a malformed file fails the data stage (or
`reasondistill eval`) with the file and the problem.

Verification is exact, as in lm-eval's bbh_cot_fewshot (exact_match on the extracted answer,
case and punctuation kept): the stripped answer must equal the target, except that numbers
compare as numbers ("1,000" == "1000"). Answer extraction from a chain of thought ("So the
answer is (B).") lives in evaluate/bbh.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from pydantic import Field

from reasondistill.errors import ReasonDistillError
from reasondistill.records import Example, read_text
from reasondistill.tasks.base import TASKS, Task, TaskConfig
from reasondistill.tasks.jsonl import normalize_answer


def task_files(path: str | Path) -> list[Path]:
    """The task JSON files `path` names: itself, or the *.json files of a directory (sorted)."""
    p = Path(path)
    if p.is_file():
        return [p]
    if not p.is_dir():
        raise ReasonDistillError(f"BBH: no such file or directory: {p}")
    files = sorted(f for f in p.glob("*.json") if f.is_file())
    if not files:
        raise ReasonDistillError(f"BBH: no <task>.json files in {p}")
    return files


def read_task_file(path: Path) -> list[dict[str, str]]:
    """The examples of one BBH task file; raises ReasonDistillError naming the file and the problem."""
    try:
        data = json.loads(read_text(path, who="BBH task file "))
    except json.JSONDecodeError as e:
        raise ReasonDistillError(f"BBH task file {path}: not valid JSON ({e})") from None
    examples = data.get("examples") if isinstance(data, dict) else None
    if not isinstance(examples, list) or not examples:
        raise ReasonDistillError(
            f'BBH task file {path}: expected {{"examples": [{{"input", "target"}}, ...]}}'
        )
    for i, ex in enumerate(examples):
        if not isinstance(ex, dict):
            raise ReasonDistillError(f"BBH task file {path}: example {i} is not an object")
        for key in ("input", "target"):
            if not isinstance(ex.get(key), str) or not ex[key].strip():
                raise ReasonDistillError(
                    f"BBH task file {path}: example {i}: {key!r} must be a non-empty string"
                )
    return [{"input": ex["input"], "target": ex["target"].strip()} for ex in examples]


def load_bbh(path: str | Path, tasks: list[str] | None = None) -> dict[str, list[dict[str, str]]]:
    """{task name (file stem): examples} for every task file under `path` (or the named `tasks`)."""
    files = {f.stem: f for f in task_files(path)}
    if tasks is not None:
        missing = [t for t in tasks if t not in files]
        if missing:
            raise ReasonDistillError(
                f"BBH: no task file for {', '.join(missing)} in {path}; have: {', '.join(files)}"
            )
        files = {t: files[t] for t in tasks}
    return {name: read_task_file(f) for name, f in files.items()}


class BBHConfig(TaskConfig):
    path: str = Field(min_length=1, description="a BBH task JSON file, or a directory of <task>.json files")
    tasks: list[str] | None = Field(None, description="task names (file stems) to load; None: every file")


class BBHTask(Task):
    """A finite loader, tasks in name order; `n` takes the first n examples over all tasks."""

    name = "bbh"
    Config = BBHConfig
    procedural = False

    def __init__(self, config: BBHConfig) -> None:
        super().__init__(config)
        self._tasks: dict[str, list[dict[str, str]]] | None = None

    def difficulty(self) -> dict:
        return {}

    def check(self) -> None:
        self.tasks()

    def tasks(self) -> dict[str, list[dict[str, str]]]:
        if self._tasks is None:
            self._tasks = load_bbh(self.config.path, self.config.tasks)
        return self._tasks

    def examples(self, split: str, n: int | None, seed: int) -> Iterator[Example]:
        count = 0
        for task, rows in self.tasks().items():
            for i, row in enumerate(rows):
                if n is not None and count == n:
                    return
                count += 1
                yield Example(
                    id=f"bbh/{task}/{i}",
                    task=self.name,
                    question=row["input"],
                    answer=row["target"],
                    split=split,
                    metadata={"source": self.config.path, "bbh_task": task, "index": i, "difficulty": {}},
                )

    def verify(self, example: Example, answer: str | None) -> bool:
        return verify_answer(answer, example.answer)


def verify_answer(answer: str | None, target: str) -> bool:
    """Exact match of the stripped strings; numbers compare as numbers ("1,000" == "1000.0")."""
    if answer is None or not answer.strip():
        return False
    return normalize_answer(answer) == normalize_answer(target)


TASKS.register("bbh", BBHTask, paper="arXiv 2210.09261", description="BIG-Bench Hard from its task files, with 3-shot CoT prompts (lm-eval / Suzgun et al. scoring)")
