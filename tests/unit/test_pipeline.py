"""Planner and runner behaviour on toy stage kinds: matrix, references, hashing, skip, errors."""

from __future__ import annotations

from typing import Literal

import pytest

from reasondistill.artifacts import Artifact
from reasondistill.config import Ref, StrictModel
from reasondistill.errors import ReasonDistillError, RecipeError
from reasondistill.pipeline import plan
from reasondistill.recipe import Recipe, apply_override
from reasondistill.registry import Entry
from reasondistill.runner import run_plan
from reasondistill.stages import STAGES, Stage, StageConfig

CALLS: list[str] = []


class _Inner(StrictModel):
    factor: int = 1


class SrcCfg(StageConfig):
    kind: Literal["t_src"]
    value: int = 1
    inner: _Inner = _Inner()


class Src(Stage):
    Config = SrcCfg
    produces = frozenset({Artifact.METRICS})

    def run(self, ctx):
        CALLS.append(ctx.name)
        (ctx.out_dir / "v.txt").write_text(str(ctx.cfg.value * ctx.cfg.inner.factor + ctx.cfg.seed))


class MapCfg(StageConfig):
    kind: Literal["t_map"]
    src: Ref(Artifact.METRICS)
    add: int = 0
    fail: bool = False


class Map(Stage):
    Config = MapCfg
    produces = frozenset({Artifact.METRICS})

    def run(self, ctx):
        CALLS.append(ctx.name)
        if ctx.cfg.fail:
            raise ReasonDistillError("bad row 3")
        v = int((ctx.path(ctx.cfg.src) / "v.txt").read_text())
        (ctx.out_dir / "v.txt").write_text(str(v + ctx.cfg.add))


class CollectCfg(StageConfig):
    kind: Literal["t_collect"]
    items: list[Ref(Artifact.METRICS)]


class Collect(Stage):
    Config = CollectCfg
    produces = frozenset({Artifact.REPORT})

    def run(self, ctx):
        CALLS.append(ctx.name)
        vals = [(ctx.path(r) / "v.txt").read_text() for r in ctx.cfg.items]
        (ctx.out_dir / "all.txt").write_text(",".join(vals))
        return {"n": len(vals)}


@pytest.fixture(autouse=True)
def toy_stages(monkeypatch):
    for name, cls in (("t_src", Src), ("t_map", Map), ("t_collect", Collect)):
        monkeypatch.setitem(STAGES._entries, name, Entry(name, cls, "a toy stage kind", None))
    CALLS.clear()


def _recipe(tmp_path, stages, **kw) -> Recipe:
    return Recipe.model_validate({"name": "toy", "runs_dir": str(tmp_path / "runs"), "stages": stages, **kw})


def _grid(tmp_path, **kw):
    return _recipe(
        tmp_path,
        {
            "src": {"kind": "t_src", "matrix": {"seed": [0, 1, 2]}},
            "map": {"kind": "t_map", "src": "src", "matrix": {"arm": {"plus": {"add": 10}, "zero": {}}}},
            "all": {"kind": "t_collect", "items": ["map"]},
        },
        **kw,
    )


def test_matrix_expands_downstream_and_collects(tmp_path):
    insts = plan(_grid(tmp_path))
    names = [i.name for i in insts]
    assert names[:3] == ["src[seed=0]", "src[seed=1]", "src[seed=2]"]
    assert "map[seed=1,arm=plus]" in names and len([n for n in names if n.startswith("map")]) == 6
    collect = insts[-1]
    assert collect.name == "all" and len(collect.cfg.items) == 6
    mapped = next(i for i in insts if i.name == "map[seed=1,arm=plus]")
    assert mapped.cfg.src == "src[seed=1]" and mapped.cfg.add == 10 and mapped.deps == ["src[seed=1]"]


def test_list_field_collects_instances_of_every_named_stage(tmp_path):
    recipe = _grid(tmp_path)
    recipe.stages["all"]["items"] = ["src", "map"]
    collect = plan(recipe)[-1]
    assert collect.cfg.items[:3] == ["src[seed=0]", "src[seed=1]", "src[seed=2]"]
    assert len(collect.cfg.items) == 9 and len(collect.deps) == 9


def test_run_writes_outputs_marker_and_skips_on_rerun(tmp_path):
    recipe = _grid(tmp_path)
    run_plan(recipe, plan(recipe), echo=lambda s: None)
    insts = plan(recipe)
    out = (insts[-1].out_dir / "all.txt").read_text().split(",")
    assert sorted(map(int, out)) == [1, 2, 3, 11, 12, 13]  # value 1 + seed (+ 10)
    assert all(i.done and (i.out_dir / "config.yaml").exists() for i in insts)
    CALLS.clear()
    run_plan(recipe, insts, echo=lambda s: None)
    assert CALLS == []


def test_changing_a_knob_reruns_only_dependents(tmp_path):
    base = {
        "a": {"kind": "t_src", "value": 1},
        "b": {"kind": "t_src", "value": 2},
        "ma": {"kind": "t_map", "src": "a"},
        "mb": {"kind": "t_map", "src": "b"},
    }
    recipe = _recipe(tmp_path, base)
    run_plan(recipe, plan(recipe), echo=lambda s: None)
    raw = {"name": "toy", "runs_dir": str(tmp_path / "runs"), "stages": base}
    apply_override(raw, "stages.a.inner.factor=3")
    CALLS.clear()
    changed = Recipe.model_validate(raw)
    run_plan(changed, plan(changed), echo=lambda s: None)
    assert CALLS == ["a", "ma"]


def test_failed_stage_leaves_no_empty_dir_and_keeps_completed(tmp_path):
    recipe = _recipe(tmp_path, {"a": {"kind": "t_src"}, "m": {"kind": "t_map", "src": "a", "fail": True}})
    insts = plan(recipe)
    with pytest.raises(ReasonDistillError, match="bad row 3"):
        run_plan(recipe, insts, echo=lambda s: None)
    assert insts[0].done and not insts[1].out_dir.exists()


@pytest.mark.parametrize(
    "stages, message",
    [
        ({"a": {"kind": "t_src", "valu": 3}}, "stages.a.valu: unknown key; did you mean `value`? allowed: inner, kind, seed, value"),
        ({"a": {"kind": "t_src", "inner": {"factr": 3}}}, "stages.a.inner.factr: unknown key; did you mean `factor`? allowed: factor"),
        ({"a": {"kind": "t_src", "value": "many"}}, "stages.a.value: Input should be a valid integer"),
        ({"a": {"kind": "nope"}}, "stages.a.kind: unknown stage kind 'nope'; allowed:"),
        ({"a": {"value": 1}}, "stages.a.kind: missing; allowed:"),
        ({"m": {"kind": "t_map", "src": "ghost"}}, "stages.m.src: unknown stage 'ghost'"),
        ({"m": {"kind": "t_map"}}, "stages.m.src: missing (required)"),
        ({"a": {"kind": "t_map", "src": "b"}, "b": {"kind": "t_map", "src": "a"}}, "reference cycle"),
        ({"a": {"kind": "t_src", "matrix": {"value": []}}}, "stages.a.matrix.value: a non-empty list"),
    ],
)
def test_bad_recipes_fail_with_one_line_and_write_nothing(tmp_path, stages, message):
    with pytest.raises(RecipeError) as err:
        plan(_recipe(tmp_path, stages))
    assert message in str(err.value)
    assert len(str(err.value).splitlines()) == 1
    assert not (tmp_path / "runs").exists()


def test_recipe_top_level_errors():
    with pytest.raises(Exception, match="name"):
        Recipe.model_validate({"name": "bad name!", "stages": {"a": {}}})


def test_override_parses_yaml_scalars():
    raw = {"stages": {"t": {"train": {"lr": 1}}}}
    apply_override(raw, "stages.t.train.lr=3e-4")
    apply_override(raw, "stages.t.lora=null")
    apply_override(raw, "seed=7")
    assert raw == {"stages": {"t": {"train": {"lr": 3e-4}, "lora": None}}, "seed": 7}
    with pytest.raises(RecipeError, match="expected key.sub=value"):
        apply_override(raw, "novalue")


def test_editing_a_data_file_in_place_changes_the_data_stage_hash(tmp_path):
    data = tmp_path / "rows.jsonl"
    data.write_text('{"question": "1+1", "answer": "2"}\n{"question": "2+2", "answer": "4"}\n')
    stages = {"d": {"kind": "data", "task": "jsonl", "config": {"path": str(data)}, "splits": {"all": {}}}}
    first = plan(_recipe(tmp_path, stages))[0].hash
    assert plan(_recipe(tmp_path, stages))[0].hash == first
    data.write_text('{"question": "1+1", "answer": "2"}\n{"question": "2+2", "answer": "5"}\n')
    assert plan(_recipe(tmp_path, stages))[0].hash != first


def test_variant_recipe_extends_base_with_whole_value_overrides(tmp_path):
    from reasondistill.recipe import load_recipe

    (tmp_path / "base.yaml").write_text(
        "name: base\nstages:\n  a: {kind: t_src, value: 2, inner: {factor: 3}}\nsmoke: {stages.a.value: 1}\n"
    )
    (tmp_path / "v.yaml").write_text(
        "extends: base.yaml\nname: v\noverrides:\n  stages.a.inner: {}\nsmoke: {seed: 5}\n"
    )
    recipe, _ = load_recipe(tmp_path / "v.yaml", smoke=True)
    assert recipe.name == "v-smoke" and recipe.seed == 5
    assert recipe.stages["a"] == {"kind": "t_src", "value": 1, "inner": {}}
    (tmp_path / "bad.yaml").write_text("extends: nope.yaml\nname: b\n")
    with pytest.raises(RecipeError, match="extends: no such recipe"):
        load_recipe(tmp_path / "bad.yaml")
