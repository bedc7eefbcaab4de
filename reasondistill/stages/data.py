"""The `data` stage: draw a task's splits, disjoint by question, into `<split>.jsonl` + `task.json`.

```yaml
kind: data
task: arithmetic
config: {digits: 2, terms: 3}          # the task's knobs
splits:                                # in order; a later split never repeats an earlier question
  test_id: {n: 200}
  test_ood: {n: 200, config: {terms: 4}}   # overrides merged (deeply) into `config`
  train: {n: 3000}
```
Procedural tasks: each split is its own seeded stream; a split skips questions already taken
(by an earlier split or by itself) and keeps drawing until it has `n`. File tasks (jsonl):
a split takes the first `n` rows (all remaining when `n` is omitted) not used by earlier
splits, so list the test splits first to keep them fixed when `train` grows.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from reasondistill.artifacts import Artifact, examples_file
from reasondistill.config import StrictModel, deep_merge
from reasondistill.errors import ReasonDistillError
from reasondistill.records import Example, write_jsonl_atomic
from reasondistill.stages.base import STAGES, Stage, StageConfig, StageContext
from reasondistill.tasks import TASKS, Task, build_task, write_task_file

# No dots: readers such as the tokenizer stage take `<split>.jsonl` to have exactly one.
_SPLIT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")


class SplitSpec(StrictModel):
    n: int | None = Field(
        None, ge=1, description="items in the split (file tasks: None takes all remaining rows)"
    )
    config: dict[str, Any] = Field(default_factory=dict, description="task config overrides for this split")


class DataConfig(StageConfig):
    kind: Literal["data"]
    task: str = Field(description="registered task name, e.g. arithmetic, reasoning_gym, jsonl")
    config: dict[str, Any] = Field(default_factory=dict, description="the task's config (its knobs)")
    splits: dict[str, SplitSpec] = Field(min_length=1, description="ordered split name -> {n, config}")

    @field_validator("task")
    @classmethod
    def _known_task(cls, v: str) -> str:
        if v not in TASKS:
            raise ValueError(f"unknown task {v!r}; allowed: {', '.join(TASKS.names())}")
        return v

    @field_validator("splits")
    @classmethod
    def _split_names(cls, v: dict[str, SplitSpec]) -> dict[str, SplitSpec]:
        for name in v:
            if not _SPLIT_NAME.fullmatch(name):
                raise ValueError(
                    f"split name {name!r}: use letters, digits, '_' and '-' (it names the file <split>.jsonl)"
                )
        return v

    @model_validator(mode="after")
    def _task_configs(self):
        """Build the task once per distinct split config: bad knobs and bad files fail here."""
        if self.task not in TASKS:
            return self  # already reported by _known_task
        # `config` must be a whole task config on its own; each split's merged config is then
        # checked too, and errors name the key where the user wrote it (splits.<s>.config.x).
        configs = [("config", self.config)]
        configs += [
            (f"splits.{s}.config", self.split_config(s)) for s, spec in self.splits.items() if spec.config
        ]
        checked: list[dict[str, Any]] = []
        for where, config in configs:
            try:
                task = build_task(self.task, config, where=where)
                if config not in checked:
                    task.check()  # reads files (jsonl): a bad row fails here, before any work
                    checked.append(config)
            except ReasonDistillError as e:
                raise ValueError(str(e)) from None
        for split, spec in self.splits.items():
            # Built per split: whether a task is an endless stream can depend on its config (the
            # ReDis tasks read a file when given `path`, and generate otherwise).
            if spec.n is None and build_task(self.task, self.split_config(split)).procedural:
                raise ValueError(f"splits.{split}.n: required for procedural task {self.task!r}")
        return self

    def split_config(self, split: str) -> dict[str, Any]:
        """The task config of `split`: its overrides merged into the stage's `config`."""
        return deep_merge(self.config, self.splits[split].config)


def _max_draws(n: int) -> int:
    # A question space smaller than n (1-digit, 2-term sums have 100) would loop forever;
    # 20n + 1000 draws collect all but a sliver of any space that can supply n items.
    return 20 * n + 1000


class DataStage(Stage):
    """Writes `<split>.jsonl` (Example records) for every split, then `task.json`."""

    Config = DataConfig
    produces = frozenset({Artifact.EXAMPLES})

    @classmethod
    def fingerprint(cls, cfg: DataConfig) -> dict:
        """Contents of every local file or folder the task config names (jsonl, BBH dirs)."""
        configs = [cfg.config] + [split.config for split in cfg.splits.values()]
        return {p: file_digest(Path(p)) for p in sorted(_local_paths(configs))}

    def run(self, ctx: StageContext) -> dict:
        cfg: DataConfig = ctx.cfg
        seen: set[str] = set()
        drawn: dict[str, list[Example]] = {}
        # Everything is drawn before anything is written: a bad row or an exhausted question
        # space fails without leaving a half-made data directory behind.
        for split, spec in cfg.splits.items():
            task = build_task(cfg.task, cfg.split_config(split))
            drawn[split] = _draw(task, split, spec.n, cfg.seed, seen)
            ctx.log.info("data: %s: %d examples", split, len(drawn[split]))
        for split, rows in drawn.items():
            write_jsonl_atomic(examples_file(ctx.out_dir, split), rows)
        # task.json last: later stages treat it as "this data directory is complete".
        write_task_file(ctx.out_dir, cfg.task, cfg.config, {s: cfg.split_config(s) for s in cfg.splits})
        return {split: len(rows) for split, rows in drawn.items()}


def _draw(task: Task, split: str, n: int | None, seed: int, seen: set[str]) -> list[Example]:
    """The first `n` examples of `split` whose questions are not in `seen` (updated in place)."""
    rows: list[Example] = []
    # File tasks end by themselves; only endless streams need a cap on draws.
    limit = _max_draws(n) if n is not None and task.procedural else None
    draws = 0
    for ex in task.examples(split, None, seed):
        if n is not None and len(rows) == n:
            break
        if limit is not None and draws == limit:
            break
        draws += 1
        if not task.dedup_questions or ex.question not in seen:  # tasks/base.py: dedup_questions
            seen.add(ex.question)
            rows.append(ex)
    if n is not None and len(rows) < n:
        raise ReasonDistillError(
            f"data split {split!r}: only {len(rows)} of n={n} unique questions after {draws} draws "
            f"(questions of earlier splits are excluded); lower n or widen the task's knobs"
        )
    return rows


STAGES.register("data", DataStage, description="draw a task's splits, disjoint by question, into example files")


def _local_paths(obj: Any) -> set[str]:
    if isinstance(obj, str):
        return {obj} if obj and Path(obj).exists() else set()
    if isinstance(obj, dict):
        obj = list(obj.values())
    if isinstance(obj, list):
        return set().union(*(_local_paths(x) for x in obj)) if obj else set()
    return set()


def file_digest(path: Path) -> str:
    """sha256 over a file, or over a folder's files (relative names and contents)."""
    h = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
        h.update(str(f.relative_to(path) if path.is_dir() else f.name).encode())
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()
