"""ReDis (arXiv 2504.10647) through the CLI: the smoke recipe end to end, DPO beside ORPO on the same
pairs, the original-files variant planned on fixture files, and bad input (exit 2, one line)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.integration.conftest import CLI, ROOT, cli_env, stage_dirs

FIXTURES = ROOT / "tests" / "fixtures" / "redis"
TASKS = ("arc_1d", "list_functions", "acre", "mini_scan")
DPO_STAGES = [
    "stages.student_dpo={kind: train, rows: pairs, model: {stage: student_sft}, objective: {kind: dpo, beta: 0.1},"
    " train: {max_steps: 2, per_device_batch_size: 2, lr: 1.0e-3, warmup_steps: 1, save_every: 0, max_length: 768}}",
    "stages.dpo_search={kind: hypothesis_eval, data: data, splits: [test], proposer: {kind: hf, model: {stage: student_dpo},"
    " n: 2, temperature: 0.9, max_new_tokens: 12}, applier: {kind: hf, model: {stage: student_dpo}, max_new_tokens: 12}}",
]


def run(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**cli_env(), "OMP_NUM_THREADS": "1"}
    return subprocess.run([*CLI, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def errors(proc: subprocess.CompletedProcess) -> list[str]:
    return [line for line in proc.stderr.splitlines() if line.startswith("error:")]


@pytest.fixture(scope="module")
def smoke(tmp_path_factory) -> Path:
    runs = tmp_path_factory.mktemp("redis") / "runs"
    proc = run("run", "recipes/redis.yaml", "--smoke", "--runs-dir", str(runs))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return runs


def test_smoke_recipe_runs_every_stage_on_four_tasks(smoke):
    dirs = stage_dirs(smoke, "redis-smoke")
    assert all((d / "_COMPLETE").exists() for d in dirs.values())
    for task in TASKS:
        pairs = [
            json.loads(line) for line in (dirs[f"pairs[task={task}]"] / "rows.jsonl").read_text().splitlines()
        ]
        assert pairs and all(p["chosen"] != p["rejected"] for p in pairs)
        assert all(
            p["metadata"]["score_chosen"] > p["metadata"]["score_rejected"] + 1 for p in pairs
        )  # margin 1
        kinds = {
            json.loads(line)["kind"]
            for line in (dirs[f"sft_rows[task={task}]"] / "rows.jsonl").read_text().splitlines()
        }
        assert kinds == {"generate_rule", "apply_rule"}
        scored = json.loads((dirs[f"scores[task={task}]"] / "traces.jsonl").read_text().splitlines()[0])
        assert scored["metadata"]["predictions"] and "correct" in scored["metadata"]
        marker = json.loads((dirs[f"student_orpo[task={task}]"] / "_COMPLETE").read_text())
        assert marker["objective"] == "orpo" and marker["orpo_lambda"] == 0.1
        metrics = json.loads((dirs[f"teacher_search[task={task}]"] / "metrics.json").read_text())["test"]
        assert (
            metrics["calls_per_task"] > 0
            and 0 <= metrics["ci_low"] <= metrics["accuracy"] <= metrics["ci_high"]
        )
    report = (dirs["report"] / "results.md").read_text()
    assert "orpo_search[task=mini_scan]" in report and "io_direct[task=acre]" in report


def test_dpo_beside_orpo_reuses_every_finished_stage(smoke):
    proc = run("run", "recipes/redis.yaml", "--smoke", "--runs-dir", str(smoke), *DPO_STAGES)
    assert proc.returncode == 0, proc.stderr[-3000:]
    dirs = stage_dirs(smoke, "redis-smoke")
    ran = set(re.findall(r"\] (\S+) \(\w+\): running", proc.stdout))
    assert ran == {f"{s}[task={t}]" for s in ("student_dpo", "dpo_search") for t in TASKS}
    for task in TASKS:
        d = dirs[f"student_dpo[task={task}]"]
        marker = json.loads((d / "_COMPLETE").read_text())
        assert marker["objective"] == "dpo" and marker["reference"] == "initial model"
        assert (d / "reference_logps.npz").is_file()  # computed once, before training, kept for a resume
    assert run("run", "recipes/redis_dpo.yaml", "--smoke", "--dry-run").returncode == 0


def test_dpo_reference_with_another_vocabulary_exits_2(smoke, tmp_path):
    from tests.unit.helpers_tiny import tiny_model, tiny_tokenizer

    ref = tmp_path / "ref"
    tok = tiny_tokenizer()
    tiny_model(tok).save_pretrained(str(ref))
    tok.save_pretrained(str(ref))
    stages = [DPO_STAGES[0].replace("beta: 0.1}", f"beta: 0.1, reference: {{path: {ref}}}}}")]
    proc = run(
        "run", "recipes/redis.yaml", "--smoke", "--runs-dir", str(smoke), "--until", "student_dpo", *stages
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    (line,) = errors(proc)
    assert (
        "dpo: reference model" in line
        and "DPO needs the reference and the student to share one tokenizer" in line
    )
    failed = stage_dirs(smoke, "redis-smoke")["student_dpo[task=arc_1d]"]
    assert not failed.exists()  # refused before anything was written


def original(paths: dict[str, Path]) -> list[str]:
    return [f"stages.data.matrix.task.{t}.config.path={paths[t]}" for t in TASKS]


def test_original_files_variant_plans_on_fixture_files():
    proc = run(
        "run",
        "recipes/redis_original.yaml",
        "--dry-run",
        *original({t: FIXTURES / f"{t}.jsonl" for t in TASKS}),
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "rules[task=acre] (hypotheses)" in proc.stdout and "redis_search[task=mini_scan]" in proc.stdout
    # The program teacher needs a generator's known rule: refused at plan time for a file.
    files = original({t: FIXTURES / f"{t}.jsonl" for t in TASKS})
    proc = run(
        "run", "recipes/redis_original.yaml", "--dry-run", *files, "stages.rules.teacher={kind: rule_program}"
    )
    assert proc.returncode == 2 and errors(proc) == [
        "error: stages.rules.teacher: the rule_program teacher writes rules from a procedural task's known rule, "
        "but stage 'data' reads a file (config.path): use a model teacher (hf, openai)"
    ]


def test_malformed_task_file_exits_2_before_anything_is_written(tmp_path):
    paths = {t: FIXTURES / f"{t}.jsonl" for t in TASKS}
    bad = tmp_path / "acre.jsonl"
    bad.write_text(
        (FIXTURES / "acre.jsonl").read_text()
        + '{"idx": 99, "train": [{"input": ["a"], "output": "on"}], "test": []}\n'
    )
    paths["acre"] = bad
    runs = tmp_path / "runs"
    proc = run("run", "recipes/redis_original.yaml", "--runs-dir", str(runs), *original(paths))
    assert proc.returncode == 2, proc.stderr[-2000:]
    (line,) = errors(proc)
    assert f"{bad}, line 11: 'test': no queries" in line
    assert not runs.exists()  # nothing written
