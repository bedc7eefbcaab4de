"""The stage API: a stage kind is a typed config plus a `run` that writes files into its own directory.

The pipeline (reasondistill/pipeline.py) validates every stage's config before any work
starts, resolves references between stages, hashes each stage's resolved config with its
inputs' hashes, and calls `run` only for stages without a completion marker. A stage reads
its inputs' *files* (through `ctx.path(ref)`) and writes its own: nothing else passes
between stages (DESIGN.md 'How data flows').
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from reasondistill.config import Ref, StageRef, StrictModel  # noqa: F401  (re-exported)
from reasondistill.registry import Registry


class StageConfig(StrictModel):
    kind: str
    seed: int = 0  # inherited from the recipe's top-level `seed` unless set here or by a matrix


@dataclass
class StageContext:
    name: str  # instance name, e.g. "student[placement=after]"
    cfg: Any  # the validated StageConfig subclass, refs rewritten to instance names
    out_dir: Path
    coords: dict[str, str]  # matrix coordinates of this instance ({} when not expanded)
    dirs: dict[str, Path]  # instance name -> output dir, for every stage of the recipe
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("reasondistill"))

    def path(self, ref: str) -> Path:
        """Output directory of a referenced (completed) stage instance."""
        return self.dirs[ref]


class Stage:
    """Base class of stage kinds. Subclasses set `Config` and implement `run`."""

    Config: ClassVar[type[StageConfig]]
    # Bump when a change to `run` makes old outputs stale: it is part of the stage hash.
    version: ClassVar[int] = 1
    # True: every process runs it under `accelerate launch` (training). False: rank 0 runs it
    # and the other ranks wait at a barrier, then read its files.
    distributed: ClassVar[bool] = False

    @classmethod
    def fingerprint(cls, cfg: StageConfig) -> dict:
        """Extra inputs of the stage hash beyond its config, e.g. the contents of files it reads,
        so that editing a data file in place reruns what depends on it."""
        return {}

    def run(self, ctx: StageContext) -> dict | None:
        """Do the work, writing only under ctx.out_dir. Must resume from whatever a killed
        earlier attempt left in ctx.out_dir. Returns a small summary (stored in the marker)."""
        raise NotImplementedError


STAGES: Registry[type[Stage]] = Registry("stage kind")
