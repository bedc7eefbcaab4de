"""Repeat blocks (reasondistill/repeat.py): unrolling, iteration references, reuse, errors."""

from __future__ import annotations

import json

import pytest

from reasondistill.errors import RecipeError
from reasondistill.pipeline import plan
from reasondistill.runner import run_plan
from tests.unit.test_pipeline import CALLS, _recipe, toy_stages  # noqa: F401  (toy stage kinds)


def _loop(tmp_path, repeat=3, **extra):
    stages = {
        "base": {"kind": "t_src", "value": 5},
        "loop": {
            "repeat": repeat,
            "inputs": {"step": "base"},
            "stages": {
                "step": {"kind": "t_map", "src": "step@prev", "add": 1},  # previous iteration's step
                "look": {"kind": "t_map", "src": "step"},  # this iteration's step
            },
        },
        "curve": {"kind": "t_collect", "items": ["look"]},  # every iteration
        "last": {"kind": "t_map", "src": "step"},  # the last iteration
        **extra,
    }
    return _recipe(tmp_path, stages)


def test_iterations_unroll_into_named_stages_reading_the_previous_one(tmp_path):
    insts = {i.name: i for i in plan(_loop(tmp_path))}
    assert insts["step@0"].deps == ["base"] and insts["step@0"].iteration == 0
    assert insts["step@1"].cfg.src == "step@0" and insts["step@2"].cfg.src == "step@1"
    assert insts["look@2"].cfg.src == "step@2"
    assert insts["curve"].cfg.items == ["look@0", "look@1", "look@2"]
    assert insts["last"].cfg.src == "step@2" and insts["last"].iteration is None


def test_raising_repeat_reuses_earlier_iterations(tmp_path):
    three = {i.name: i.hash for i in plan(_loop(tmp_path, repeat=3))}
    five = {i.name: i.hash for i in plan(_loop(tmp_path, repeat=5))}
    for i in range(3):
        assert five[f"step@{i}"] == three[f"step@{i}"] and five[f"look@{i}"] == three[f"look@{i}"]
    assert five["curve"] != three["curve"] and "step@4" in five


def test_iterations_run_and_record_their_number(tmp_path):
    recipe = _loop(tmp_path, repeat=2)
    run_plan(recipe, plan(recipe), echo=lambda s: None)
    insts = {i.name: i for i in plan(recipe)}
    assert (insts["step@1"].out_dir / "v.txt").read_text() == "7"  # 5 + 1 + 1
    assert json.loads((insts["look@1"].out_dir / "stage.json").read_text())["iteration"] == 1
    assert "iteration" not in json.loads((insts["last"].out_dir / "stage.json").read_text())
    CALLS.clear()
    run_plan(_loop(tmp_path, repeat=3), plan(_loop(tmp_path, repeat=3)), echo=lambda s: None)
    assert sorted(CALLS) == ["curve", "last", "look@2", "step@2"]  # only the new iteration and its readers


def test_explicit_iteration_from_outside(tmp_path):
    insts = {i.name: i for i in plan(_loop(tmp_path, first={"kind": "t_map", "src": "step@0"}))}
    assert insts["first"].cfg.src == "step@0"


@pytest.mark.parametrize(
    "change, message",
    [
        ({"bad": {"kind": "t_map", "src": "step@prev"}}, "stages.bad.src: 'step@prev': `@prev` is only meaningful inside"),
        ({"bad": {"kind": "t_map", "src": "step@7"}}, "block 'loop' has iterations 0..2"),
        ({"bad": {"kind": "t_map", "src": "loop"}}, "'loop' is a repeat block; name one of its stages"),
        ({"bad": {"kind": "t_map", "src": "base@1"}}, "`@` names an iteration of a stage inside a repeat block"),
    ],
)
def test_bad_iteration_references(tmp_path, change, message):
    with pytest.raises(RecipeError, match=message.replace("(", r"\(")):
        plan(_loop(tmp_path, **change))


def test_bad_blocks(tmp_path):
    recipe = _loop(tmp_path)
    recipe.stages["loop"]["inputs"] = {}
    with pytest.raises(RecipeError, match=r"iteration 0 has no previous 'step'; set stages.loop.inputs.step"):
        plan(recipe)
    for key, value, message in [
        ("repeat", 0, "stages.loop.repeat: a whole number of iterations >= 1"),
        ("inputs", {"nope": "base"}, "stages.loop.inputs.nope: not a stage of the block"),
        ("inputs", {"step": "look"}, "stages.loop.inputs.step: 'look' is not a stage outside the block"),
        ("kind", "t_src", "stages.loop.kind: unknown key; a repeat block has repeat, inputs, stages"),
    ]:
        recipe = _loop(tmp_path)
        recipe.stages["loop"][key] = value
        with pytest.raises(RecipeError, match=message):
            plan(recipe)
    recipe = _loop(tmp_path)
    recipe.stages["look"] = {"kind": "t_src"}
    with pytest.raises(RecipeError, match="stages.loop.stages.look: the name is used twice"):
        plan(recipe)
    recipe = _loop(tmp_path)
    recipe.stages["loop"]["stages"]["look"]["add"] = "x"
    with pytest.raises(RecipeError, match=r"^stages.loop.stages.look.add: ") as e:
        plan(recipe)
    assert str(e.value).count("\n") == 0  # reported once, not once per iteration
