"""The stage API: a stage kind is a typed config plus a `run` that writes files into its own directory.

The pipeline (reasondistill/pipeline.py) validates every stage's config before any work
starts, resolves references between stages, hashes each stage's resolved config with its
inputs' hashes, and calls `run` only for stages without a completion marker. A stage reads
its inputs' *files* (through `ctx.path(ref)`) and writes its own: nothing else passes
between stages (DESIGN.md 'How data flows').
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel

from reasondistill.artifacts import Artifact
from reasondistill.config import ExampleSource, StageContext, StrictModel
from reasondistill.registry import Registry


class StageConfig(StrictModel):
    kind: str
    seed: int = 0  # inherited from the recipe's top-level `seed` unless set here or by a matrix


class Stage:
    """Base class of stage kinds. Subclasses set `Config` and `produces` and implement `run`.

    Module-level imports of a stage file stay light (pydantic configs only): planning imports
    every stage kind and must not import torch, transformers or matplotlib; `run` imports the
    units it needs."""

    Config: ClassVar[type[StageConfig]]
    # The artifacts this kind writes; references that accept one of them may name it.
    produces: ClassVar[frozenset[Artifact]] = frozenset()
    # Bump when a change to `run` makes old outputs stale: it is part of the stage hash.
    version: ClassVar[int] = 1
    # True: every process runs it under `accelerate launch` (training). False: rank 0 runs it
    # and the other ranks wait at a barrier, then read its files.
    distributed: ClassVar[bool] = False

    @classmethod
    def split_refs(cls, cfg: StageConfig) -> list[tuple[tuple, str, str]]:
        """(path in cfg, data stage, split name) of every split this stage reads, so the planner
        checks each split exists before any work. Default: every ExampleSource in the config."""
        return [
            (path + ("split",), str(src.stage), src.split) for path, src in _walk(cfg, ()) if isinstance(src, ExampleSource)
        ]

    @classmethod
    def check_plan(cls, cfg: StageConfig, configs) -> list[str]:
        """Errors this stage can see before any work, given `configs(name)`: the validated
        configs (one per matrix variant) of any stage of the recipe. Keys are relative to the
        stage ("objective.teacher"). Default: none."""
        return []

    @classmethod
    def fingerprint(cls, cfg: StageConfig) -> dict:
        """Extra inputs of the stage hash beyond its config, e.g. the contents of files it reads,
        so that editing a data file in place reruns what depends on it."""
        return {}

    def run(self, ctx: StageContext) -> dict | None:
        """Do the work, writing only under ctx.out_dir. Must resume from whatever a killed
        earlier attempt left in ctx.out_dir. Returns a small summary (stored in the marker)."""
        raise NotImplementedError


STAGES: Registry[type[Stage]] = Registry("stage kind", "stage kinds", config=lambda s: s.Config)


def _walk(obj, path: tuple):
    """(path, value) of every pydantic model inside a config, the config itself first."""
    if isinstance(obj, BaseModel):
        yield path, obj
        for name in type(obj).model_fields:
            yield from _walk(getattr(obj, name), path + (name,))
    elif isinstance(obj, list | tuple):
        for i, x in enumerate(obj):
            yield from _walk(x, path + (i,))
    elif isinstance(obj, dict):
        for k, x in obj.items():
            yield from _walk(x, path + (k,))
