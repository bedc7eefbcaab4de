"""Helpers for end-to-end tests that drive the real `reasondistill` console script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "reasondistill.cli"]


def cli_env() -> dict:
    env = dict(os.environ)
    env.update(HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", OMP_NUM_THREADS=env.get("OMP_NUM_THREADS", "2"))
    return env


def run_cli(*args: str, check: bool = True, timeout: int = 600) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [*CLI, *args], cwd=ROOT, env=cli_env(), capture_output=True, text=True, timeout=timeout
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr[-4000:]}")
    return proc


def stage_dirs(runs: Path, recipe: str) -> dict[str, Path]:
    """Instance name -> directory, from the plan.json the runner writes."""
    plan = json.loads((runs / recipe / "plan.json").read_text())["stages"]
    return {name: Path(d) if Path(d).is_absolute() else ROOT / d for name, d in plan.items()}


@pytest.fixture(scope="session")
def quickstart_smoke(tmp_path_factory) -> Path:
    """One smoke run of the quickstart shared by the tests that only read its outputs."""
    runs = tmp_path_factory.mktemp("qs") / "runs"
    proc = run_cli("run", "recipes/quickstart.yaml", "--smoke", "--runs-dir", str(runs))
    (runs / "stdout.txt").write_text(proc.stdout)
    return runs
