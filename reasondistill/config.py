"""Config primitives every part of the package uses: strict models, typed references between
stages, the context a running stage gets, and the "exactly one of" sources.

Bottom layer: it imports no stage and no unit, so teachers, objectives and tasks can use these
types without importing the stage layer (DESIGN.md 'Seams'; ../shared/tools/layers.json).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, GetCoreSchemaHandler, model_validator
from pydantic_core import core_schema

from reasondistill.artifacts import Artifact, model_dir


class StrictModel(BaseModel):
    """Base for every config section: unknown keys are errors (a typo must not be ignored)."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class StageRef(str):
    """The name of another stage of the recipe; the planner rewrites it to a stage instance name
    and checks that the named stage produces one of the artifacts in `accepts`."""

    accepts: ClassVar[frozenset[Artifact]] = frozenset()

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler):
        # Validate as a non-empty string, keep the subclass (the planner finds references by
        # isinstance and reads `accepts` from the type), and serialize back to a plain string.
        return core_schema.no_info_after_validator_function(
            cls, core_schema.str_schema(min_length=1), serialization=core_schema.to_string_ser_schema()
        )


@cache
def Ref(*accepts: Artifact) -> type[StageRef]:  # noqa: N802  (used like a type: `rows: Ref(Artifact.ROWS)`)
    """The annotation of a field that names another stage producing one of `accepts`."""
    if not accepts:
        raise TypeError("Ref() needs at least one Artifact")
    label = "|".join(sorted(a.value for a in accepts))
    return type(f"Ref[{label}]", (StageRef,), {"accepts": frozenset(accepts)})


@dataclass
class StageContext:
    """What a running stage gets: its name, validated config, output dir and its inputs' dirs."""

    name: str  # instance name, e.g. "student[placement=after]"
    cfg: Any  # the validated StageConfig subclass, refs rewritten to instance names
    out_dir: Path
    coords: dict[str, str]  # matrix coordinates of this instance ({} when not expanded)
    dirs: dict[str, Path]  # instance name -> output dir, for every stage of the recipe
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("reasondistill"))

    def path(self, ref: str) -> Path:
        """Output directory of a referenced (completed) stage instance."""
        return self.dirs[ref]


def exactly_one(model: BaseModel, *names: str, hint: str = "") -> str:
    """The one field of `names` that is set (not None); ValueError naming them otherwise.

    The single implementation behind every "give exactly one of" source (models, tokenizers,
    KD teachers, format inputs)."""
    given = [n for n in names if getattr(model, n) is not None]
    if len(given) != 1:
        listed = ", ".join(f"`{n}`" for n in names)
        got = f"; got {', '.join(given)}" if given else ""
        raise ValueError(f"give exactly one of {listed}{hint and ' (' + hint + ')'}{got}")
    return given[0]


class ModelSource(StrictModel):
    """A model: another stage's output (`stage`), a local path / hub id (`path`), or a catalog
    entry pulled from a package registry (`pretrained`, see `reasondistill models list`)."""

    stage: Ref(Artifact.MODEL) | None = None
    path: str | None = None
    pretrained: str | None = None

    @model_validator(mode="after")
    def _one(self):
        exactly_one(self, "stage", "path", "pretrained")
        return self

    def resolve(self, ctx: StageContext) -> str:
        """Directory (or hub id) that `transformers.from_pretrained` can load."""
        if self.stage is not None:
            return str(model_dir(ctx.path(self.stage)))
        if self.pretrained is not None:
            from reasondistill.models.pull import resolve_pretrained  # lazy: may import torch to pull

            return resolve_pretrained(self.pretrained)
        return self.path


class ExampleSource(StrictModel):
    """One split of a `data` stage's examples."""

    stage: Ref(Artifact.EXAMPLES)
    split: str
    limit: int | None = None  # first `limit` examples of the split (None: all)

    def resolve(self, ctx: StageContext) -> Path:
        return ctx.path(self.stage)
