"""The quickstart end to end at smoke size through the CLI: outputs, rerun skip, kill and resume."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.integration.conftest import CLI, ROOT, cli_env, run_cli, stage_dirs

QS = "recipes/quickstart.yaml"


def test_smoke_run_writes_report_predictions_and_prints_table(quickstart_smoke):
    dirs = stage_dirs(quickstart_smoke, "quickstart-smoke")
    assert all((d / "_COMPLETE").exists() for d in dirs.values())
    report = next(d for n, d in dirs.items() if n == "report")
    results = json.loads((report / "results.json").read_text())
    text = json.dumps(results)
    for name in ("teacher_eval", "student_eval[placement=none]", "student_eval[placement=before]",
                 "student_eval[placement=after]"):
        assert name in text
    assert (report / "results.png").stat().st_size > 1000
    table = (report / "results.md").read_text()
    assert table.strip() in (quickstart_smoke / "stdout.txt").read_text()
    preds = [json.loads(x) for x in (dirs["teacher_eval"] / "predictions.jsonl").read_text().splitlines()]
    assert len(preds) == 48 and {p["split"] for p in preds} == {"test_id", "test_ood"}
    teacher_model = dirs["teacher"] / "model"
    from transformers import AutoModelForCausalLM, AutoTokenizer

    AutoModelForCausalLM.from_pretrained(teacher_model)  # plain transformers loads our models
    AutoTokenizer.from_pretrained(teacher_model)


def test_rerun_skips_every_stage(quickstart_smoke):
    proc = run_cli("run", QS, "--smoke", "--runs-dir", str(quickstart_smoke))
    lines = [x for x in proc.stdout.splitlines() if x.startswith("[")]
    assert lines and all("done, skipped" in x for x in lines), proc.stdout


def test_changing_one_knob_reruns_only_its_dependents(quickstart_smoke):
    proc = run_cli("run", QS, "--smoke", "--runs-dir", str(quickstart_smoke), "stages.student_eval.max_new_tokens=33")
    ran = {m.group(1) for m in re.finditer(r"^\[\d+/\d+\] (\S+) \(\w+\): finished", proc.stdout, re.M)}
    assert ran == {f"student_eval[placement={p}]" for p in ("none", "before", "after")} | {"report"}


def _kill_when(runs: Path, extra: list[str], ready, timeout: float = 300) -> None:
    """Start the smoke quickstart, SIGKILL it as soon as `ready(runs)` is true."""
    proc = subprocess.Popen([*CLI, "run", QS, "--smoke", "--runs-dir", str(runs), *extra], cwd=ROOT,
                            env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.time()
    try:
        while not ready(runs):
            assert proc.poll() is None, "run finished before the kill point"
            assert time.time() - t0 < timeout
            time.sleep(0.02)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()


def _instance_dir(runs: Path, name: str) -> Path | None:
    plan = runs / "quickstart-smoke" / "plan.json"
    if not plan.exists():
        return None
    d = Path(json.loads(plan.read_text())["stages"][name])
    return d if d.is_absolute() else ROOT / d


def _markers(runs: Path) -> dict[str, float]:
    return {str(p): p.stat().st_mtime_ns for p in (runs / "quickstart-smoke").glob("*/_COMPLETE")}


def test_kill_during_training_resumes_from_checkpoint(tmp_path):
    runs = tmp_path / "runs"
    slow = ["stages.teacher.train.max_steps=400", "stages.teacher.train.save_every=20"]

    def checkpointed(r):
        d = _instance_dir(r, "teacher")
        return d is not None and (d / "checkpoint").exists()

    _kill_when(runs, slow, checkpointed)
    before = _markers(runs)
    assert before and not (_instance_dir(runs, "teacher") / "_COMPLETE").exists()
    proc = run_cli("run", QS, "--smoke", "--runs-dir", str(runs), *slow)
    assert "resumed from step" in proc.stdout + proc.stderr
    after = _markers(runs)
    assert all(after[k] == v for k, v in before.items())  # completed stages were not redone
    state = json.loads((_instance_dir(runs, "teacher") / "train_state.json").read_text())
    assert state["steps"] == 400 and state["resumed_from"] is not None


@pytest.mark.parametrize("stage", ["traces", "student_eval[placement=before]"])
def test_kill_during_any_stage_then_rerun_finishes(tmp_path, stage):
    runs = tmp_path / "runs"

    def started(r):
        d = _instance_dir(r, stage)
        return d is not None and d.exists() and any(p.name not in {"config.yaml", "stage.json"} for p in d.iterdir())

    _kill_when(runs, [], started)
    before = _markers(runs)
    run_cli("run", QS, "--smoke", "--runs-dir", str(runs))
    after = _markers(runs)
    assert all(after[k] == v for k, v in before.items())
    assert len(after) == len(stage_dirs(runs, "quickstart-smoke"))
    if stage == "traces":
        rows = [json.loads(x) for x in (_instance_dir(runs, "traces") / "traces.jsonl").read_text().splitlines()]
        keys = [(r["example_id"], r["sample"]) for r in rows]
        assert len(keys) == len(set(keys)) == 32  # every pool question once: nothing lost, no duplicates
