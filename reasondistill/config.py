"""Config primitives every part of the package uses: strict models, typed references between
stages, the context a running stage gets, and the "exactly one of" sources.

Bottom layer: it imports no stage and no unit, so teachers, objectives and tasks can use these
types without importing the stage layer (DESIGN.md 'Seams'; ../shared/tools/layers.json).
"""

from __future__ import annotations

import copy
import difflib
import logging
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, ClassVar, get_args, get_origin

from pydantic import BaseModel, ConfigDict, GetCoreSchemaHandler, ValidationError, model_validator
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


_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


def check_model_path(path: str) -> str:
    """A model `path` checked at plan time: an existing directory must hold a config.json (a
    Hugging Face model); a path that does not exist must look like a hub id (`org/name`)."""
    p = Path(path).expanduser()
    if p.exists():
        if not (p / "config.json").is_file():
            raise ValueError(f"{path!r} is not a model directory (no config.json in it)")
        return path
    if path.startswith((".", "/", "~")) or not _HUB_ID.match(path):
        raise ValueError(f"model directory {path!r} does not exist")
    return path  # a hub id: resolved by transformers when the stage runs


def check_pretrained(name: str) -> str:
    """A catalog name checked at plan time (unknown names list the known ones)."""
    from reasondistill.errors import ReasonDistillError
    from reasondistill.models.catalog import get_entry  # data only: no torch

    try:
        get_entry(name)
    except ReasonDistillError as e:
        raise ValueError(str(e)) from None
    return name


class ModelSource(StrictModel):
    """A model: another stage's output (`stage`), a local path / hub id (`path`), or a catalog
    entry pulled from a package registry (`pretrained`, see `reasondistill models list`)."""

    stage: Ref(Artifact.MODEL) | None = None
    path: str | None = None
    pretrained: str | None = None

    @model_validator(mode="after")
    def _one(self):
        exactly_one(self, "stage", "path", "pretrained")
        if self.path is not None:
            check_model_path(self.path)
        if self.pretrained is not None:
            check_pretrained(self.pretrained)
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


def deep_merge(base: dict, extra: dict) -> dict:
    """`base` with `extra` merged in; keys of `extra` may be dotted paths ('train.lr')."""
    out = copy.deepcopy(base)
    for key, value in extra.items():
        parts = key.split(".")
        node = out
        for part in parts[:-1]:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        if isinstance(value, dict) and isinstance(node.get(parts[-1]), dict):
            node[parts[-1]] = deep_merge(node[parts[-1]], value)
        else:
            node[parts[-1]] = copy.deepcopy(value)
    return out


def format_validation_error(err: ValidationError, model: type, prefix: str = "") -> str:
    """One line per problem: the dotted key, what is wrong, and for unknown keys what is allowed."""
    lines = []
    for e in err.errors():
        loc, models = _walk(model, e["loc"])
        key = ".".join(([prefix] if prefix else []) + loc) or prefix or "recipe"
        if e["type"] == "extra_forbidden":
            _, parents = _walk(model, e["loc"][:-1])
            allowed = sorted({k for m in parents for k in m.model_fields})
            close = difflib.get_close_matches(str(e["loc"][-1]), allowed, n=1)
            hint = f"did you mean `{close[0]}`? " if close else ""
            msg = "unknown key" + (f"; {hint}allowed: {', '.join(allowed)}" if allowed else "")
        elif e["type"] == "missing":
            msg = "missing (required)"
        else:
            msg = e["msg"].removeprefix("Value error, ")
        lines.append(f"{key}: {msg}")
    return "\n".join(dict.fromkeys(lines))


def _models_in(tp: Any) -> list[type]:
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return [tp]
    return [m for arg in getattr(tp, "__args__", ()) or () for m in _models_in(arg)]


def _kind_tags(model: type) -> tuple:
    """The values a model's `kind: Literal[...]` field accepts (the union tags it answers to)."""
    field = model.model_fields.get("kind")
    return get_args(field.annotation) if field is not None else ()


def _walk(model: type, loc: tuple) -> tuple[list[str], list[type]]:
    """Clean a pydantic error location (drop union-member tags) and find the models at its end."""
    current, clean, expect_key = [model], [], False
    for part in loc:
        if isinstance(part, int) or expect_key:
            clean.append(str(part))
            expect_key = False
            continue
        fields = [m.model_fields[part] for m in current if part in m.model_fields]
        if not fields:
            # A discriminated-union tag ('hf') or a validator wrapper name: not a key the user
            # wrote. A tag narrows the union to the member whose `kind` it names.
            if len(current) > 1 or "[" in part or part.startswith("function-"):
                current = [m for m in current if part in _kind_tags(m)] or current
                continue
            clean.append(part)
            continue
        clean.append(part)
        ann = fields[0].annotation
        expect_key = get_origin(ann) is dict
        current = _models_in(ann) or current
    return clean, current
