"""Tests that kill specific plausible bugs (hand-made mutants of the code that the suite once
let survive): atomic writes keep the old file, every config field reaches the stage hash, a
directory without a completion marker is never taken as done, Welch's standard error uses
each group's own n."""

from __future__ import annotations

import json
import math

import pytest

from reasondistill.pipeline import plan
from reasondistill.recipe import load_recipe
from reasondistill.records import write_json_atomic, write_jsonl_atomic
from reasondistill.report.contrasts import compute_contrasts
from reasondistill.runner import run_plan
from tests.unit.test_pipeline import CALLS, _grid, toy_stages  # noqa: F401  (toy stage kinds)
from tests.unit.test_plan_checks import RECIPES


def test_interrupted_atomic_writes_keep_the_old_file(tmp_path):
    path = tmp_path / "rows.jsonl"
    write_jsonl_atomic(path, [{"a": 1}, {"a": 2}])

    def rows():
        yield {"a": 3}
        raise KeyboardInterrupt  # killed mid-write

    with pytest.raises(KeyboardInterrupt):
        write_jsonl_atomic(path, rows())
    assert path.read_text() == '{"a": 1}\n{"a": 2}\n' and sorted(p.name for p in tmp_path.iterdir()) == ["rows.jsonl"]
    meta = tmp_path / "m.json"
    write_json_atomic(meta, {"v": 1})
    with pytest.raises(TypeError):
        write_json_atomic(meta, {"v": object()})  # fails while writing
    assert json.loads(meta.read_text()) == {"v": 1} and not (tmp_path / "m.json.tmp").exists()


def _leaves(obj, path=()):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _leaves(v, path + (k,))
    elif isinstance(obj, bool | int | float | str):
        yield path, obj


def _changed(value):
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value + 1
    return value + "x"


def test_every_config_field_and_the_recipe_seed_reach_the_stage_hash():
    recipe, raw = load_recipe(RECIPES / "quickstart.yaml")
    base = {i.name: i.hash for i in plan(recipe)}
    teacher = next(i for i in plan(recipe) if i.name == "teacher")
    leaves = [  # every leaf but the kind and the references (renaming those names another stage)
        (p, v) for p, v in _leaves(teacher.cfg.model_dump(mode="json")) if p != ("kind",) and v not in recipe.stages
    ]
    assert len(leaves) > 20
    for path, value in leaves:
        cfg = teacher.cfg.model_dump(mode="json")
        node = cfg
        for k in path[:-1]:
            node = node[k]
        node[path[-1]] = _changed(value)
        try:
            new = type(teacher.cfg).model_validate(cfg)
        except ValueError:
            continue  # a value the schema refuses cannot be run, so cannot collide
        r2, _ = load_recipe(RECIPES / "quickstart.yaml", [f"stages.teacher={json.dumps(new.model_dump(mode='json'))}"])
        assert {i.name: i.hash for i in plan(r2)}["teacher"] != base["teacher"], path
    seeded, _ = load_recipe(RECIPES / "quickstart.yaml", ["seed=1"])
    assert all(h != base[n] for n, h in ((i.name, i.hash) for i in plan(seeded)))


def test_a_stage_directory_without_its_marker_is_run_again(tmp_path):
    recipe = _grid(tmp_path)
    run_plan(recipe, plan(recipe), echo=lambda s: None)
    src = plan(recipe)[0]
    (src.out_dir / "_COMPLETE").unlink()  # outputs present, completion never recorded
    CALLS.clear()
    run_plan(recipe, plan(recipe), echo=lambda s: None)
    assert CALLS == [src.name]


def test_welch_standard_error_uses_each_groups_own_n():
    a = {"coords": {"arm": "a"}, "splits": {"t": {"mean": 0.5, "std": 0.1, "values": {"0": 0.4, "1": 0.5, "2": 0.6}}}}
    b = {"coords": {"arm": "b"}, "splits": {"t": {"mean": 0.3, "std": 0.3, "values": {"0": 0.09, "1": 0.51}}}}
    (c,) = compute_contrasts([a, b], [{"label": "a-b", "a": {"arm": "a"}, "b": {"arm": "b"}}])
    st = c["splits"]["t"]
    assert st["diff"] == pytest.approx(0.2)
    assert st["se"] == pytest.approx(math.sqrt(0.1**2 / 3 + 0.3**2 / 2))
    assert st["paired"] == pytest.approx({"0": 0.31, "1": -0.01})
