"""`generate` stage: a teacher samples scored traces for one split of a data stage.

The teacher's `template` (traces/templates; default plain) says how it is prompted and how
its text is parsed into rationale and answer: the template the teacher was trained with.

Output: out_dir/traces.jsonl (TraceStore). Resumable: a rerun after a kill keeps what is
on disk and generates only the missing (example, sample) pairs; the final file equals an
uninterrupted run's (see teachers/hf.py for how sampling seeds make that hold).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Literal

from reasondistill.artifacts import Artifact, traces_file
from reasondistill.config import ExampleSource
from reasondistill.records import Example
from reasondistill.stages.base import STAGES, Stage, StageConfig, StageContext
from reasondistill.teachers import TEACHERS

# `teacher: {kind: ...}` validates against every registered teacher's config schema.
TeacherConfigs = TEACHERS.config_union()


class GenerateConfig(StageConfig):
    kind: Literal["generate"]
    teacher: TeacherConfigs
    data: ExampleSource


def load_data(data_dir: Path, split: str, limit: int | None) -> tuple[list[Example], Callable]:
    """(examples, verify) of a data stage's split. Tests replace this to avoid real tasks."""
    from reasondistill.tasks import load_examples, load_task  # lazy: no tasks <-> stages import cycle

    return load_examples(data_dir, split, limit), load_task(data_dir).verify


class GenerateStage(Stage):
    Config = GenerateConfig
    produces = frozenset({Artifact.TRACES})

    def run(self, ctx: StageContext) -> dict:
        cfg: GenerateConfig = ctx.cfg
        examples, verify = load_data(ctx.path(cfg.data.stage), cfg.data.split, cfg.data.limit)
        teacher = TEACHERS.get(cfg.teacher.kind)(cfg.teacher, ctx)
        from reasondistill.traces.store import TraceStore

        with TraceStore(traces_file(ctx.out_dir)) as store:
            before = len(store.done())
            store.track(len(examples) * cfg.teacher.n, f"{ctx.name}: generate")
            teacher.generate(examples, store, verify)
            traces = store.read()
        ctx.log.info("%s: %d traces (%d new)", ctx.name, len(traces), len(traces) - before)
        scores = [t.score for t in traces if t.score is not None]
        return {
            "examples": len(examples),
            "traces": len(traces),
            "new": len(traces) - before,
            "teacher_accuracy": sum(scores) / len(scores) if scores else None,
            "errors": sum(t.error is not None for t in traces),
            "prompt_tokens": sum(t.usage.get("prompt_tokens", 0) for t in traces),
            "completion_tokens": sum(t.usage.get("completion_tokens", 0) for t in traces),
        }


STAGES.register("generate", GenerateStage, description="a teacher samples scored traces for one split of a data stage")
