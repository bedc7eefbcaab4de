"""Bad input through the real CLI: one `error:` line naming the key, exit code 2, nothing written."""

from __future__ import annotations

import pytest

from reasondistill.cli import main

QS = "recipes/quickstart.yaml"


@pytest.mark.parametrize(
    "override, expected",
    [
        ("stages.teacher.train.lrr=1", "stages.teacher.train.lrr: unknown key; did you mean `lr`? allowed:"),
        ("stages.teacher.train.max_steps=many", "stages.teacher.train.max_steps: Input should be a valid integer"),
        ("stages.data.task=arithmatic", "stages.data.task:"),
        ("stages.traces.teacher.kind=gpt", "stages.traces.teacher"),
        ("stages.teacher.model.tiny.arch=gpt9", "stages.teacher.model.tiny.arch:"),
        ("stages.kept.kind=filtr", "stages.kept.kind: unknown stage kind 'filtr'; allowed:"),
        ("stages.teacher.rows=nope", "stages.teacher.rows: unknown stage 'nope'"),
        ("stages.data.splits.test_id.n=-3", "stages.data.splits.test_id.n:"),
    ],
)
def test_bad_recipe_is_one_line_exit_2_and_no_run_dir(tmp_path, capsys, override, expected):
    runs = tmp_path / "runs"
    code = main(["run", QS, override, "--runs-dir", str(runs)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("error: "), err
    assert expected in err[0]
    assert not runs.exists()


def test_allowed_names_are_listed(tmp_path, capsys):
    main(["run", QS, "stages.data.task=arithmatic", "--runs-dir", str(tmp_path)])
    assert "arithmetic" in capsys.readouterr().err


def test_malformed_yaml_and_missing_file(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nstages: [unclosed\n")
    assert main(["run", str(bad)]) == 2
    assert "not valid YAML (line" in capsys.readouterr().err
    assert main(["run", str(tmp_path / "missing.yaml")]) == 2
    assert "recipe file not found" in capsys.readouterr().err


def test_dry_run_prints_resolved_config_and_plan_and_writes_nothing(tmp_path, capsys):
    runs = tmp_path / "runs"
    assert main(["run", QS, "--dry-run", "--runs-dir", str(runs), "stages.teacher.train.lr=0.001"]) == 0
    out = capsys.readouterr().out
    assert "# resolved config" in out and "# stage plan" in out
    assert "student[placement=after] (train)" in out and "[todo]" in out
    assert "lr: 0.001" in out
    assert not runs.exists()


def test_console_script_exit_code(tmp_path):
    from tests.integration.conftest import run_cli

    proc = run_cli("run", QS, "stages.teacher.train.lrr=1", "--runs-dir", str(tmp_path), check=False)
    assert proc.returncode == 2 and "unknown key" in proc.stderr and "Traceback" not in proc.stderr


def test_until_plans_only_the_stage_and_its_inputs(tmp_path, capsys):
    assert main(["run", QS, "--dry-run", "--until", "teacher_eval", "--runs-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out.split("# stage plan")[1]
    assert "teacher_eval (evaluate)" in out and "teacher (train)" in out and "tokenizer" in out
    assert "student" not in out and "traces" not in out
    assert main(["run", QS, "--until", "nope", "--runs-dir", str(tmp_path)]) == 2
    assert "--until: unknown stage 'nope'" in capsys.readouterr().err
