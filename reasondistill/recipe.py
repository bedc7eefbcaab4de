"""Recipes: one YAML file per experiment, validated before any work starts.

```yaml
name: quickstart          # runs go to <runs_dir>/<name>/
seed: 0                   # default seed of every stage that does not set its own
runs_dir: runs
stages:                   # name -> stage config; `kind` picks the stage kind (see `reasondistill list`)
  data: {kind: data, task: arithmetic, ...}
  student:
    kind: train
    matrix: {seed: [0, 1, 2]}   # one stage instance per value (see pipeline.py)
```
Command-line overrides `key.sub=value` are applied to the YAML before validation; values
are parsed as YAML scalars (`train.lr=3e-4` is a float, `lora=null` is None).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError, field_validator

from reasondistill.config import StrictModel, format_validation_error
from reasondistill.errors import RecipeError
from reasondistill.records import read_text

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class _Loader(yaml.SafeLoader):
    """YAML 1.1 reads `3e-4` (no dot) as a string; learning rates are written that way. A key
    written twice in one mapping is an error (PyYAML lets the last one silently win)."""

    def construct_mapping(self, node, deep=False):
        seen: dict = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first on line {seen[key] + 1})", key_node.start_mark
                )
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def parse_yaml(text: str):
    return yaml.load(text, Loader=_Loader)  # noqa: S506 (a SafeLoader subclass)


class Recipe(StrictModel):
    """Top level of a recipe file. Stage sections are validated by pipeline.plan, per kind."""

    name: str = Field(description="experiment name; runs go to <runs_dir>/<name>/")
    description: str | None = None
    seed: int = Field(0, description="default seed for stages that do not set one")
    runs_dir: str = Field("runs", description="where run directories are created")
    stages: dict[str, dict[str, Any]] = Field(description="stage name -> stage config")
    smoke: dict[str, Any] = Field(
        default_factory=dict,
        description="dotted-key overrides applied by `--smoke`: the recipe's CPU smoke size (run by the tests)",
    )

    @field_validator("name")
    @classmethod
    def _name_ok(cls, v: str) -> str:
        if not _NAME.match(v):
            raise ValueError("use letters, digits, '_', '-', '.'")
        return v

    @field_validator("stages")
    @classmethod
    def _stage_names_ok(cls, v: dict) -> dict:
        if not v:
            raise ValueError("a recipe needs at least one stage")
        for name in v:
            if not _NAME.match(name):
                raise ValueError(f"stage name {name!r}: use letters, digits, '_', '-', '.'")
        return v


def load_recipe(path: str | Path, overrides: list[str] | None = None, smoke: bool = False) -> tuple[Recipe, dict]:
    """Read, override and validate the top level of a recipe; returns (recipe, raw dict after overrides).

    With `smoke`, the recipe's own `smoke` overrides apply first (command-line ones after),
    and runs go to `<name>-smoke` so smoke runs never mix with full-size ones.
    """
    path = Path(path)
    if path.is_dir():
        raise RecipeError(f"{path} is a directory, not a recipe file")
    if not path.is_file():
        raise RecipeError(f"recipe file not found: {path}")
    raw = _read_yaml(path)
    if not isinstance(raw, dict):
        raise RecipeError(f"{path}: a recipe is a YAML mapping with `name` and `stages`")
    if "extends" in raw:
        raw = _extend(path, raw)
    if smoke:
        smoke_overrides = raw.get("smoke") or {}
        if not isinstance(smoke_overrides, dict) or not smoke_overrides:
            raise RecipeError(f"{path}: --smoke needs a `smoke:` mapping of dotted-key overrides in the recipe")
        for key, value in smoke_overrides.items():
            set_dotted(raw, str(key), value)
        raw["name"] = f"{raw.get('name')}-smoke"
    for ov in overrides or []:
        apply_override(raw, ov)
    try:
        recipe = Recipe.model_validate(raw)
    except ValidationError as e:
        raise RecipeError(format_validation_error(e, Recipe)) from None
    return recipe, raw


def _read_yaml(path: Path) -> Any:
    """A recipe file's YAML; bad bytes or bad YAML name the file and the line."""
    try:
        return parse_yaml(read_text(path))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise RecipeError(f"{path}: not valid YAML{where}: {getattr(e, 'problem', e)}") from None


def _extend(path: Path, raw: dict) -> dict:
    """A variant recipe: `extends: base.yaml` plus `overrides:` (dotted key -> whole new value).

    The variant's other top-level keys replace the base's, and its `smoke` entries are added to
    the base's, so a variant states only what differs and cannot drift from its base.
    """
    raw = dict(raw)
    base_path = (path.parent / str(raw.pop("extends"))).resolve()
    if not base_path.is_file():
        raise RecipeError(f"{path}: extends: no such recipe {base_path}")
    base = _read_yaml(base_path)
    if not isinstance(base, dict) or "extends" in base:
        raise RecipeError(f"{path}: extends: {base_path} must be a plain recipe (one level of extends)")
    overrides = raw.pop("overrides", None) or {}
    if not isinstance(overrides, dict):
        raise RecipeError(f"{path}: overrides: a mapping of dotted keys to values")
    for key, value in overrides.items():
        set_dotted(base, str(key), value)
    smoke = {**(base.get("smoke") or {}), **(raw.pop("smoke", None) or {})}
    return {**base, **raw, "smoke": smoke}


def apply_override(raw: dict, override: str) -> None:
    """Set `a.b.c=value` in the nested dict `raw` (creating mappings on the way)."""
    key, sep, value = override.partition("=")
    if not sep or not key:
        raise RecipeError(f"override {override!r}: expected key.sub=value")
    try:
        parsed = parse_yaml(value) if value != "" else ""
    except yaml.YAMLError:
        parsed = value
    set_dotted(raw, key, parsed)


def set_dotted(raw: dict, key: str, value: Any) -> None:
    """raw[a][b][c] = value for key 'a.b.c', creating mappings on the way."""
    parts = key.split(".")
    node = raw
    for i, part in enumerate(parts[:-1]):
        nxt = node.get(part)
        if nxt is None:
            nxt = node[part] = {}
        if not isinstance(nxt, dict):
            raise RecipeError(f"override {key}: {'.'.join(parts[: i + 1])} is not a mapping")
        node = nxt
    node[parts[-1]] = value
