"""Config primitives every part of the package uses: strict models and references between stages.

This module imports nothing from `reasondistill.stages`, so teachers, trainers and tasks can
use these types without importing every stage kind (which would be a circular import).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, GetCoreSchemaHandler, model_validator
from pydantic_core import core_schema

if TYPE_CHECKING:
    from reasondistill.stages.base import StageContext


class StageRef(str):
    """The name of another stage of the recipe; the pipeline rewrites it to a stage instance name."""

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler):
        # Validate as a non-empty string, keep the StageRef type (the planner finds references
        # by isinstance), and serialize back to a plain string.
        return core_schema.no_info_after_validator_function(
            cls, core_schema.str_schema(min_length=1), serialization=core_schema.to_string_ser_schema()
        )


Ref = StageRef  # the annotation stage configs use for a reference to another stage


class StrictModel(BaseModel):
    """Base for every config section: unknown keys are errors (a typo must not be ignored)."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())



class ModelSource(StrictModel):
    """A trained model: another stage's output (`stage`) or a local path / hub id (`path`)."""

    stage: Ref | None = None
    path: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self):
        if (self.stage is None) == (self.path is None):
            raise ValueError("give exactly one of `stage` (a training stage) or `path` (local dir or hub id)")
        return self

    def resolve(self, ctx: StageContext) -> str:
        """Directory (or hub id) that `transformers.from_pretrained` can load."""
        if self.stage is not None:
            return str(ctx.path(self.stage) / "model")
        return self.path


class ExampleSource(StrictModel):
    """One split of a `data` stage's examples."""

    stage: Ref
    split: str
    limit: int | None = None  # first `limit` examples of the split (None: all)

    def resolve(self, ctx: StageContext) -> Path:
        return ctx.path(self.stage)
