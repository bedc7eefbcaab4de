"""Plan and run a recipe's stages: matrix expansion, references, hashing, skip and resume.

Planning is pure (no files written), so every recipe error surfaces before any work:
1. each stage's config is validated against its kind's schema, once per matrix variant;
2. references to other stages (fields typed `Ref(...)`) are found and checked: the named stage
   exists and produces an artifact the field accepts (artifacts.py);
3. stages are ordered by their references, and matrix coordinates flow downstream: a stage
   that references an expanded stage is expanded the same way, and a `list[Ref]` field
   (e.g. a report's `evals`) collects every compatible instance;
4. each instance is hashed over its kind, stage version, resolved config and its inputs'
   hashes, so changing one knob changes the hash of that stage and of what depends on it.

Repeat blocks (repeat.py) are unrolled first: stage X of iteration i is the stage `X@i`, and
references are rewritten to name iterations before step 2.

A matrix is a mapping axis -> values. A list of scalars sets the config key named by the
axis (`seed: [0, 1, 2]`, `train.lr: [1e-3, 3e-4]`); a mapping names variants, each a dict
of overrides (`arm: {shuffled: {transforms: [...]}, plain: {}}`).
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from reasondistill.config import StageRef, deep_merge, format_validation_error
from reasondistill.errors import RecipeError
from reasondistill.recipe import Recipe
from reasondistill.repeat import Unrolled, unroll
from reasondistill.stages import STAGES, StageConfig

MARKER = "_COMPLETE"


@dataclass
class StageInstance:
    name: str  # base name, plus "[axis=value,...]" when expanded
    base: str
    kind: str
    cfg: StageConfig
    coords: dict[str, str]
    deps: list[str]
    iteration: int | None = None  # its iteration, for a stage of a repeat block
    hash: str = ""
    out_dir: Path = field(default_factory=Path)

    @property
    def done(self) -> bool:
        return (self.out_dir / MARKER).exists()


@dataclass
class _Variant:
    cfg: StageConfig
    coords: dict[str, str]
    refs: list[tuple[tuple, str, bool, frozenset]]  # (path in cfg, referenced stage, is a list, accepts)


def plan(recipe: Recipe) -> list[StageInstance]:
    """Validate every stage and return the instances in execution order. Raises RecipeError."""
    unrolled = unroll(recipe.stages)
    variants: dict[str, list[_Variant]] = {}
    errors: list[str] = []
    for base, raw in unrolled.stages.items():
        try:
            variants[base] = _variants(unrolled.where[base], raw, recipe.seed)
            for v in variants[base]:
                _name_iterations(base, v, unrolled)
        except RecipeError as e:
            errors.append(str(e))
    if errors:
        raise RecipeError("\n".join(dict.fromkeys(errors)))
    kinds = {base: vs[0].cfg.kind for base, vs in variants.items()}
    for base, vs in variants.items():
        for v in vs:
            for path, target, _, accepts in v.refs:
                key = f"{unrolled.where[base]}.{_dotted(path)}"
                errors.extend(_check_ref(key, base, target, accepts, kinds))
    if not errors:
        errors += [e for base, vs in variants.items() for v in vs for e in _check_splits(unrolled.where[base], v, variants)]
        configs = lambda name: [t.cfg for t in variants.get(name, [])]  # noqa: E731
        for base, vs in variants.items():
            for v in vs:
                errors += [f"{unrolled.where[base]}.{e}" for e in STAGES.get(v.cfg.kind).check_plan(v.cfg, configs)]
    if errors:
        raise RecipeError("\n".join(dict.fromkeys(errors)))

    instances: dict[str, list[StageInstance]] = {}
    ordered: list[StageInstance] = []
    for base in _topo_order({b: {r[1] for v in vs for r in v.refs} for b, vs in variants.items()}):
        instances[base] = []
        for v in variants[base]:
            for inst in _resolve(base, v, instances):
                inst.iteration = unrolled.iteration.get(base, (None, None))[1]
                instances[base].append(inst)
                ordered.append(inst)
    by_name = {i.name: i for i in ordered}
    root = Path(recipe.runs_dir) / recipe.name
    for inst in ordered:
        payload = {
            "kind": inst.kind,
            "version": STAGES.get(inst.kind).version,
            "config": inst.cfg.model_dump(mode="json"),
            "inputs": {d: by_name[d].hash for d in inst.deps},
            "fingerprint": STAGES.get(inst.kind).fingerprint(inst.cfg),
        }
        inst.hash = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
        inst.out_dir = root / f"{_dir_name(inst.name)}-{inst.hash[:10]}"
    return ordered


def _name_iterations(base: str, v: _Variant, unrolled: Unrolled) -> None:
    """Rewrite v's references to block stages into iteration names (repeat.py), in place."""
    data, changed = v.cfg.model_dump(), False
    lists: dict[tuple, list[str]] = {}
    for path, target, is_list, _ in v.refs:
        try:
            names = unrolled.resolve(base, target, is_list)
        except RecipeError as e:
            raise RecipeError(f"{unrolled.where[base]}.{_dotted(path)}: {e}") from None
        changed |= names != [target]
        if is_list:
            lists.setdefault(path, []).extend(names)
        else:
            _set(data, path, names[0])
    for path, names in lists.items():
        _set(data, path, list(dict.fromkeys(names)))
    if changed:
        v.cfg = type(v.cfg).model_validate(data)
        v.refs = list(_find_refs(v.cfg, ()))


def _variants(where: str, raw: dict, recipe_seed: int) -> list[_Variant]:
    """One validated config per matrix cell of the stage at recipe key `where` ("stages.student")."""
    if not isinstance(raw, dict):
        raise RecipeError(f"{where}: a stage is a mapping with a `kind` (or a repeat block)")
    raw = dict(raw)
    kind = raw.get("kind")
    if kind is None:
        raise RecipeError(f"{where}.kind: missing; allowed: {', '.join(STAGES.names())}")
    if kind not in STAGES:
        raise RecipeError(f"{where}.kind: unknown stage kind {kind!r}; allowed: {', '.join(STAGES.names())}")
    matrix = raw.pop("matrix", None) or {}
    if not isinstance(matrix, dict):
        raise RecipeError(f"{where}.matrix: a mapping axis -> list of values or named variants")
    raw.setdefault("seed", recipe_seed)
    axes = []
    for axis, values in matrix.items():
        if isinstance(values, list) and values:
            axes.append([(str(v), {axis: v}) for v in values])
        elif isinstance(values, dict) and values and all(isinstance(o, dict | None) for o in values.values()):
            axes.append([(str(name), over or {}) for name, over in values.items()])
        else:
            raise RecipeError(f"{where}.matrix.{axis}: a non-empty list of values or mapping of variants")
    config_cls = STAGES.get(kind).Config
    out = []
    for combo in itertools.product(*axes) if axes else [()]:
        coords = {axis: label for axis, (label, _) in zip(matrix, combo, strict=True)}
        merged = raw
        for _, over in combo:
            merged = deep_merge(merged, over)
        try:
            cfg = config_cls.model_validate(merged)
        except ValidationError as e:
            at = where + (f"[{_coord_str(coords)}]" if coords else "")
            raise RecipeError(format_validation_error(e, config_cls, at)) from None
        out.append(_Variant(cfg, coords, list(_find_refs(cfg, ()))))
    return out


def _check_ref(key: str, base: str, target: str, accepts: frozenset, kinds: dict[str, str]) -> list[str]:
    """Errors of one reference: unknown stage, or a stage of a kind that produces nothing it accepts."""
    if target not in kinds or target == base:
        return [f"{key}: unknown stage {target!r}; stages: {', '.join(n for n in kinds if n != base)}"]
    produces = STAGES.get(kinds[target]).produces
    if accepts and not accepts & produces:
        wanted = " or ".join(sorted(a.value for a in accepts))
        fitting = [n for n, cls in STAGES.items() if accepts & cls.produces]
        return [
            f"{key}: stage {target!r} is a {kinds[target]} stage, which produces "
            f"{', '.join(sorted(a.value for a in produces)) or 'nothing'}; this needs {wanted}: "
            f"a stage of kind {', '.join(fitting)}"
        ]
    return []


def _check_splits(where: str, v: _Variant, variants: dict[str, list[_Variant]]) -> list[str]:
    """Every split a stage reads exists in the data stage it names (any matrix variant of it)."""
    errors = []
    for path, target, split in STAGES.get(v.cfg.kind).split_refs(v.cfg):
        declared = [getattr(t.cfg, "splits", None) for t in variants.get(target, [])]
        if not declared or any(not isinstance(d, dict) for d in declared):
            continue  # not a stage that declares its splits in its config
        names = list(dict.fromkeys(name for d in declared for name in d))
        if split not in names:
            errors.append(f"{where}.{_dotted(path)}: no split {split!r} in stage {target!r}; splits: {', '.join(names)}")
    return errors


def _find_refs(obj: Any, path: tuple):
    """Yield (path, target, is_list, accepts) for every StageRef inside a validated config."""
    if isinstance(obj, StageRef):
        yield path, str(obj), False, type(obj).accepts
    elif isinstance(obj, BaseModel):
        for name in type(obj).model_fields:
            yield from _find_refs(getattr(obj, name), path + (name,))
    elif isinstance(obj, list):
        if obj and all(isinstance(x, StageRef) for x in obj):
            for x in dict.fromkeys(obj):
                yield path, str(x), True, type(x).accepts
        else:
            for i, x in enumerate(obj):
                yield from _find_refs(x, path + (i,))
    elif isinstance(obj, dict):
        for k, x in obj.items():
            yield from _find_refs(x, path + (k,))


def _resolve(base: str, v: _Variant, instances: dict[str, list[StageInstance]]) -> list[StageInstance]:
    """Instances of one variant: one per consistent combination of its scalar references."""
    scalar = [(p, t) for p, t, is_list, _ in v.refs if not is_list]
    choices = [[i for i in instances[t] if _compatible(i.coords, v.coords)] for _, t in scalar]
    out = []
    for combo in itertools.product(*choices):
        coords = _merge_coords([i.coords for i in combo] + [v.coords])
        if coords is None:
            continue  # two inputs from different matrix cells: not a combination to run
        data = v.cfg.model_dump()
        deps = []
        for (path, _), inst in zip(scalar, combo, strict=True):
            _set(data, path, inst.name)
            deps.append(inst.name)
        collected: dict[tuple, list[str]] = {}
        for path, target, _, _ in (r for r in v.refs if r[2]):
            # A list field collects every compatible instance of each stage it names, in order.
            names = [i.name for i in instances[target] if _compatible(i.coords, coords)]
            collected.setdefault(path, []).extend(names)
            deps.extend(names)
        for path, names in collected.items():
            _set(data, path, names)
        cfg = type(v.cfg).model_validate(data)
        name = base + (f"[{_coord_str(coords)}]" if coords else "")
        out.append(StageInstance(name, base, cfg.kind, cfg, coords, list(dict.fromkeys(deps))))
    if not out:
        raise RecipeError(f"stages.{base}: its references' matrix coordinates conflict; no instance to run")
    return out


def _set(data: Any, path: tuple, value: Any) -> None:
    for p in path[:-1]:
        data = data[p]
    data[path[-1]] = value


def _merge_coords(all_coords: list[dict[str, str]]) -> dict[str, str] | None:
    """Union of coordinates, or None when two disagree on an axis."""
    out: dict[str, str] = {}
    for coords in all_coords:
        if not _compatible(coords, out):
            return None
        out.update(coords)
    return out


def _compatible(a: dict, b: dict) -> bool:
    return all(b.get(k, v) == v for k, v in a.items())


def _coord_str(coords: dict) -> str:
    return ",".join(f"{k}={v}" for k, v in coords.items())


def _dotted(path: tuple) -> str:
    return ".".join(str(p) for p in path)


def _dir_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "_.=-@" else "." for c in name).strip(".")


def _topo_order(deps: dict[str, set[str]]) -> list[str]:
    order, state = [], {}

    def visit(n: str, chain: list[str]) -> None:
        if state.get(n) == "done":
            return
        if state.get(n) == "visiting":
            raise RecipeError(f"stages: reference cycle {' -> '.join(chain + [n])}")
        state[n] = "visiting"
        for d in sorted(deps[n]):
            visit(d, chain + [n])
        state[n] = "done"
        order.append(n)

    for n in deps:  # recipe order breaks ties, so plans read like the YAML
        visit(n, [])
    return order
