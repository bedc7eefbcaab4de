"""A data stage's directory: `task.json` (how to rebuild the task) and `<split>.jsonl` files.

Later stages rebuild the task from `task.json` to verify answers, and read examples here,
so the layout of a data directory is defined in this one place.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from reasondistill.errors import ReasonDistillError
from reasondistill.records import Example, read_records, read_text, write_json_atomic
from reasondistill.tasks.base import Task, build_task

TASK_FILE = "task.json"


def write_task_file(
    data_dir: Path, name: str, config: dict[str, Any], split_configs: dict[str, dict[str, Any]]
) -> None:
    """Record the task name, its base config and each split's merged config."""
    spec = {"name": name, "config": config, "splits": {s: {"config": c} for s, c in split_configs.items()}}
    write_json_atomic(Path(data_dir) / TASK_FILE, spec)


def load_task(data_dir: Path, split: str | None = None) -> Task:
    """Rebuild the task a data stage wrote into `data_dir` (with `split`'s config when given)."""
    path = Path(data_dir) / TASK_FILE
    if not path.is_file():
        raise ReasonDistillError(f"no {TASK_FILE} in {data_dir}: not the output of a data stage")
    try:
        spec = json.loads(read_text(path))
        name = spec["name"]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise ReasonDistillError(f"{path}: not a task file a data stage wrote ({type(e).__name__}: {e})") from None
    config = spec.get("config") or {}
    if split is not None:
        splits = spec.get("splits", {})
        if split not in splits:
            raise ReasonDistillError(f"{path}: no split {split!r}; available: {', '.join(splits)}")
        config = splits[split]["config"]
    return build_task(name, config)


def available_splits(data_dir: Path) -> list[str]:
    """Split names present in `data_dir`, sorted."""
    return sorted(p.stem for p in Path(data_dir).glob("*.jsonl"))


def load_examples(data_dir: Path, split: str, limit: int | None = None) -> list[Example]:
    """The first `limit` examples (None: all) of `split` in `data_dir`."""
    path = Path(data_dir) / f"{split}.jsonl"
    if not path.is_file():
        raise ReasonDistillError(
            f"no split {split!r} in {data_dir}; available: {', '.join(available_splits(data_dir)) or 'none'}"
        )
    return read_records(path, Example, limit=limit)
