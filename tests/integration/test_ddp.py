"""A real 2-process data-parallel run (gloo, CPU) matches a 1-process run with the same global batch."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from reasondistill.models.tokenizer import train_tokenizer

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "ddp_train.py"
sys.path.insert(0, str(HERE))
from ddp_train import rows  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(cmd: list[str]) -> None:
    # ACCELERATE_USE_CPU: accelerate's multi-process CPU mode (gloo). `accelerate launch --cpu`
    # alone starts one process unless MPI is installed, so --multi_gpu (torchrun) starts them.
    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false"}  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=170)
    assert proc.returncode == 0, proc.stderr[-4000:]


def launch(tok_dir: Path, out: Path, per_device: int, accum: int) -> None:
    run([sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
         "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
         "--main_process_port", str(free_port()), str(SCRIPT), str(tok_dir), str(out), str(per_device), str(accum)])  # fmt: skip


def weights(out: Path) -> dict[str, torch.Tensor]:
    return load_file(out / "model" / "model.safetensors")


@pytest.mark.timeout(170)
def test_two_process_ddp_matches_single_process(tmp_path):
    tok = train_tokenizer([r["prompt"] + r["completion"] for r in rows()], vocab_size=128)
    tok.save_pretrained(tmp_path / "tok")
    run([sys.executable, str(SCRIPT), str(tmp_path / "tok"), str(tmp_path / "single"), "8", "1"])
    launch(tmp_path / "tok", tmp_path / "ddp", 4, 1)  # 2 ranks x 4
    launch(tmp_path / "tok", tmp_path / "ddp_accum", 2, 2)  # 2 ranks x 2 micro-steps x 2
    single = weights(tmp_path / "single")
    single_state = json.loads((tmp_path / "single" / "train_state.json").read_text())
    assert single_state["world_size"] == 1
    for run_dir in ("ddp", "ddp_accum"):
        state = json.loads((tmp_path / run_dir / "train_state.json").read_text())
        assert state["world_size"] == 2 and state["global_batch"] == 8 and state["steps"] == 4
        ckpt = tmp_path / run_dir / "checkpoint"  # accelerate.save_state wrote every rank's RNG state
        assert (ckpt / "random_states_0.pkl").exists() and (ckpt / "random_states_1.pkl").exists()
        ddp = weights(tmp_path / run_dir)
        assert ddp.keys() == single.keys()
        for k in single:
            # Adam turns float-summation noise into ~1e-6 weight differences after 4 steps
            torch.testing.assert_close(ddp[k], single[k], atol=2e-5, rtol=1e-4, msg=f"{run_dir}: {k}")
        # Adam is blind to a uniform gradient scale, the gradient norm is not: this catches a
        # loss that forgets to undo DDP's averaging over ranks.
        assert state["final_grad_norm"] == pytest.approx(single_state["final_grad_norm"], rel=1e-4)
        assert state["final_loss"] == pytest.approx(single_state["final_loss"], rel=1e-5)
        assert state["tokens"] == single_state["tokens"]
