"""Config pieces shared by several stage kinds."""

from __future__ import annotations

from pathlib import Path

from pydantic import model_validator

from reasondistill.stages.base import Ref, StageContext, StrictModel


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
