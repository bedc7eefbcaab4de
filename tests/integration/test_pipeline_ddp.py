"""A whole recipe under `accelerate launch` with 2 CPU processes: rank 0 runs the data,
tokenizer, format and evaluate stages while rank 1 waits; both run the train stage."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from tests.integration.conftest import ROOT, cli_env, stage_dirs
from tests.integration.test_ddp import free_port

RECIPE = {
    "name": "ddp",
    "stages": {
        "data": {"kind": "data", "task": "arithmetic", "splits": {"test": {"n": 8}, "train": {"n": 64}}},
        "tok": {"kind": "tokenizer", "data": "data"},
        "rows": {"kind": "format", "source": {"stage": "data", "split": "train"}, "placement": "before"},
        "model": {
            "kind": "train",
            "rows": "rows",
            "model": {"tiny": {"arch": "qwen2", "hidden_size": 32, "num_layers": 2, "num_heads": 2}, "tokenizer": "tok"},
            "train": {"max_steps": 6, "per_device_batch_size": 4, "save_every": 3},
        },
        "eval": {"kind": "evaluate", "model": {"stage": "model"}, "data": "data", "splits": ["test"],
                 "max_new_tokens": 8},
    },
}


@pytest.mark.timeout(300)
def test_recipe_under_accelerate_launch_two_processes(tmp_path):
    recipe = tmp_path / "ddp.yaml"
    recipe.write_text(yaml.safe_dump(RECIPE))
    runs = tmp_path / "runs"
    env = {**cli_env(), "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           "--main_process_port", str(free_port()), "-m", "reasondistill.cli", "run", str(recipe),
           "--runs-dir", str(runs)]  # fmt: skip
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=280)
    assert proc.returncode == 0, proc.stderr[-4000:]
    dirs = stage_dirs(runs, "ddp")
    assert all((d / "_COMPLETE").exists() for d in dirs.values())
    state = json.loads((dirs["model"] / "train_state.json").read_text())
    assert state["world_size"] == 2 and state["global_batch"] == 8
    # Rank 0 alone printed the stage lines, once each.
    assert proc.stdout.count("data (data): finished") == 1
