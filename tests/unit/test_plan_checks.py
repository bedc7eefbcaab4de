"""What planning refuses before any work (`--dry-run` included): one `error:` line, exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from reasondistill.cli import main

RECIPES = Path(__file__).resolve().parents[2] / "recipes"


def _dry(capsys, recipe: str | Path, *overrides: str) -> tuple[int, str]:
    code = main(["run", str(recipe), *overrides, "--dry-run"])
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    "recipe, overrides, message",
    [
        ("quickstart.yaml", ["stages.student.rows=data"],
         "error: stages.student.rows: stage 'data' is a data stage, which produces examples; this needs "
         "preferences or rows: a stage of kind format"),
        ("quickstart.yaml", ["stages.report.evals=[teacher]"],
         "error: stages.report.evals: stage 'teacher' is a train stage, which produces model; this needs metrics"),
        ("quickstart.yaml", ["stages.kept.traces=data"], "error: stages.kept.traces: stage 'data' is a data stage"),
        ("quickstart.yaml", ["stages.traces.data.split=poo"],
         "error: stages.traces.data.split: no split 'poo' in stage 'data'; splits: test_id, test_ood, teacher_train, pool"),
        ("quickstart.yaml", ["stages.teacher_eval.splits=[test_id, tset_ood]"],
         "error: stages.teacher_eval.splits.1: no split 'tset_ood' in stage 'data'"),
        ("quickstart.yaml", ["stages.teacher.train.lrr=1"], "error: stages.teacher.train.lrr: unknown key; did you mean `lr`?"),
        ("quickstart.yaml", ["stages.teacher.model={path: /no/such/model}"],
         "error: stages.teacher.model: model directory '/no/such/model' does not exist"),
        ("quickstart.yaml", ["stages.teacher.model={pretrained: smollm}"],
         "error: stages.teacher.model: unknown pretrained model 'smollm'; known: smollm2-135m-instruct"),
        ("quickstart.yaml", ["stages.teacher_eval.model={path: .}"],
         "error: stages.teacher_eval.model: '.' is not a model directory (no config.json in it)"),
        ("whitebox_kd.yaml", ["stages.tok2={kind: tokenizer, data: data}", "stages.student_kd.model.tokenizer=tok2"],
         "error: stages.student_kd.objective.teacher: the teacher's tokenizer comes from stage 'tokenizer', the "
         "student's from 'tok2': white-box KD needs one tokenizer"),
    ],
)  # fmt: skip
def test_refused_at_plan_time(capsys, recipe, overrides, message):
    code, err = _dry(capsys, RECIPES / recipe, *overrides)
    assert code == 2 and err.startswith(message) and err.count("\n") == 1, err


def test_duplicate_yaml_keys_are_an_error(capsys, tmp_path):
    path = tmp_path / "dup.yaml"
    path.write_text("name: x\nstages:\n  a: {kind: data}\n  a: {kind: data}\n")
    code, err = _dry(capsys, path)
    assert code == 2 and err == f"error: {path}: not valid YAML (line 4, column 3): duplicate key 'a' (first on line 3)\n"
