"""White-box KD (arXiv 2511.05184) through the CLI: the smoke recipe, a mismatched teacher/student
pair, and `reasondistill eval` on the self-written BBH fixtures."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.integration.conftest import CLI, ROOT, cli_env, stage_dirs

RECIPE = "recipes/whitebox_kd.yaml"
BBH = ROOT / "tests" / "fixtures" / "bbh"


def run(*args: str) -> subprocess.CompletedProcess:
    # One thread: tiny models are overhead-bound, and the machine is shared (5x faster here).
    env = {**cli_env(), "OMP_NUM_THREADS": "1"}
    return subprocess.run([*CLI, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def errors(proc: subprocess.CompletedProcess) -> list[str]:
    return [line for line in proc.stderr.splitlines() if line.startswith("error:")]


@pytest.fixture(scope="module")
def smoke(tmp_path_factory) -> tuple[Path, str]:
    runs = tmp_path_factory.mktemp("wkd") / "runs"
    proc = run("run", RECIPE, "--smoke", "--runs-dir", str(runs))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return runs, proc.stdout


def test_smoke_recipe_four_arms_at_equal_budgets(smoke):
    runs, stdout = smoke
    dirs = stage_dirs(runs, "whitebox_kd-smoke")
    assert all((d / "_COMPLETE").exists() for d in dirs.values())
    arms = {f"eval_{m}[cot={c},method={m},seed=0]" for m in ("sft", "kd") for c in ("with", "without")}
    assert {n for n in dirs if n.startswith("eval_")} == arms
    results = json.loads((dirs["report"] / "results.json").read_text())
    assert len(results["contrasts"]) == 4 and "teacher_eval" in json.dumps(results)
    assert (dirs["report"] / "results.md").read_text().strip() in stdout
    for cot in ("with", "without"):
        sft = yaml.safe_load((dirs[f"student_sft[cot={cot},method=sft,seed=0]"] / "config.yaml").read_text())
        kd = yaml.safe_load((dirs[f"student_kd[cot={cot},method=kd,seed=0]"] / "config.yaml").read_text())
        for key in ("kind", "model", "train", "max_rows", "rows", "seed"):
            assert sft[key] == kd[key], key  # same student, steps, batch, rows: only the objective differs
        assert sft["objective"] == {"kind": "nll"} and kd["objective"]["kind"] == "kd"
        marker = json.loads((dirs[f"student_kd[cot={cot},method=kd,seed=0]"] / "_COMPLETE").read_text())
        assert (
            marker["objective"] == "kd" and marker["teacher"] == "cache" and marker["kd_loss"] == "forward_kl"
        )
        meta = json.loads((dirs[f"kd_cache[cot={cot}]"] / "kd_cache.json").read_text())
        assert meta["rows"] == kd["max_rows"] and meta["codec"] == "packed" and meta["bytes_per_token"] > 0


def test_mismatched_vocabularies_exit_2_and_leave_no_output(smoke):
    runs, _ = smoke
    root = runs / "whitebox_kd-smoke"
    before = {p.name for p in root.iterdir()}
    # A second tokenizer stage with fewer merges gives the KD students another vocabulary.
    proc = run("run", RECIPE, "--smoke", "--runs-dir", str(runs),
               "stages.tok_b={kind: tokenizer, data: data, vocab_size: 104}", "stages.student_kd.model.tokenizer=tok_b")  # fmt: skip
    assert proc.returncode == 2, proc.stderr[-2000:]
    (line,) = errors(proc)
    # Known from the plan (two tokenizer stages), so refused before any work; pairs the plan cannot
    # see through (two model paths) are refused by kd.check_vocab_compat when the stage starts.
    assert line == (
        "error: stages.student_kd.objective.teacher: the teacher's tokenizer comes from stage 'tokenizer', "
        "the student's from 'tok_b': white-box KD needs one tokenizer"
    )
    assert {p.name for p in root.iterdir()} == before  # nothing written


def test_eval_cli_prints_per_task_and_average_accuracy(smoke, tmp_path):
    runs, _ = smoke
    model = stage_dirs(runs, "whitebox_kd-smoke")["teacher"] / "model"
    out = tmp_path / "bbh.json"
    proc = run("eval", str(model), "--bbh-dir", str(BBH / "tasks"), "--max-new-tokens", "8", "--limit", "2",
               "--out", str(out))  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    table = proc.stdout.strip().splitlines()
    assert table[0] == "| task | n | shots | accuracy % | 95% CI |"
    rows = [row for row in table[2:] if row.startswith("|")]
    assert [row.split(" | ")[0].lstrip("| ") for row in rows] == [
        "coin_flips", "shelf_order", "sum_items", "average (macro, 3 tasks)"]  # fmt: skip
    assert table[-1] == "Intervals: per task Wilson 95%; the macro average's is stratified Wilson 95% (tasks weighted equally)."
    saved = json.loads(out.read_text())
    assert saved["prompts_dir"] == str(BBH / "cot-prompts") and len(saved["predictions"]) == 6
    assert all(m["shots"] == 3 and m["n"] == 2 for m in saved["tasks"].values())


def test_eval_cli_bad_input_is_one_line_exit_2(smoke, tmp_path):
    runs, _ = smoke
    model = str(stage_dirs(runs, "whitebox_kd-smoke")["teacher"] / "model")
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "broken.json").write_text('{"examples": [{"input": "q"}]}')
    (tmp_path / "no_model").mkdir()
    (tmp_path / "no_model" / "config.json").write_text("{}")
    cases = [
        ([model, "--bbh-dir", str(tmp_path / "missing")], "no such file or directory"),
        ([model, "--bbh-dir", str(tmp_path / "tasks")], "broken.json: example 0: 'target'"),
        ([str(tmp_path / "no_model"), "--bbh-dir", str(BBH / "tasks")], "cannot load model"),
    ]
    for args, message in cases:
        proc = run("eval", *args)
        assert proc.returncode == 2 and len(errors(proc)) == 1 and message in errors(proc)[0], proc.stderr[
            -1500:
        ]
