"""Tasks: generators / loaders plus exact verifiers. Importing this package fills TASKS
(explicit registry: one import per task module, each ending in a `TASKS.register` line)."""

from reasondistill.tasks import (  # noqa: F401  (imported for their registration side effect)
    acre,
    arc_1d,
    arithmetic,
    bbh,
    cot_collection,
    jsonl,
    list_functions,
    mini_scan,
    multiplication,
    reasoning_gym,
)
from reasondistill.tasks.base import TASKS, ProceduralTask, Task, TaskConfig, build_task, item_seed
from reasondistill.tasks.io import load_examples, load_task, write_task_file

__all__ = [
    "TASKS",
    "ProceduralTask",
    "Task",
    "TaskConfig",
    "build_task",
    "item_seed",
    "load_examples",
    "load_task",
    "write_task_file",
]
