"""train/progress.py and the CLI's logging setup: `report_to` trackers (tensorboard and wandb
offline), their plan-time check, and library noise hidden unless -v."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import pytest

from reasondistill.models.tiny import build_tiny_model
from reasondistill.models.tokenizer import train_tokenizer
from reasondistill.train.config import TRACKERS
from reasondistill.train.trainer import train_model
from tests.unit.helpers_tiny import single_thread, tiny_model, tiny_tokenizer
from tests.unit.test_train import SPEC, cfg, make_rows, tb_steps


@pytest.fixture(autouse=True)
def _one_thread():
    with single_thread():
        yield


@pytest.fixture(scope="module")
def tok():
    return train_tokenizer([r["prompt"] + r["completion"] for r in make_rows(200)], vocab_size=128)


def test_report_to_tensorboard_and_wandb_offline(tok, tmp_path, monkeypatch):
    pytest.importorskip("wandb", reason="wandb is a dev dependency (pyproject.toml); install .[dev]")
    for var, sub in (("WANDB_DIR", "w"), ("WANDB_CONFIG_DIR", "wc"), ("WANDB_CACHE_DIR", "wk"), ("WANDB_DATA_DIR", "wd")):
        monkeypatch.setenv(var, str(tmp_path / sub))  # nothing written outside tmp_path
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    out = tmp_path / "recipe" / "student-0123456789"
    train_model(build_tiny_model(SPEC, tok, seed=0), tok, make_rows(16),
                cfg(max_steps=3, log_every=1, report_to=["tensorboard", "wandb"]), out)  # fmt: skip
    assert tb_steps(out / "logs") == [1, 2, 3]
    # wandb's offline run: the recipe is the project, beside (not inside) the stage directory,
    # whose files the completion marker records and wandb's service would append to at exit.
    (run,) = (tmp_path / "recipe" / "wandb").glob("offline-run-*/run-*.wandb")
    data = run.read_bytes()
    assert b"train/loss" in data and b"tokens_per_s" in data and b"per_device_batch_size" in data
    assert not (out / "wandb").exists()
    none = tmp_path / "r" / "quiet-1"
    train_model(build_tiny_model(SPEC, tok, seed=0), tok, make_rows(16), cfg(max_steps=1, report_to=[]), none)
    assert not (none / "logs").exists()


def test_report_to_is_checked_when_planned():
    with pytest.raises(ValueError, match="unknown tracker 'tensorbored'; accelerate supports: tensorboard, wandb"):
        cfg(report_to=["tensorbored"])
    with pytest.raises(ValueError, match="listed twice"):
        cfg(report_to=["tensorboard", "tensorboard"])


    missing = next((n for n, m in TRACKERS.items() if importlib.util.find_spec(m) is None), None)
    if missing is not None:  # whichever tracker this machine lacks: named with its install line
        with pytest.raises(ValueError, match=f"tracker '{missing}' needs the .* package: pip install {missing}"):
            cfg(report_to=[missing])


@pytest.mark.parametrize("verbose", [0, 1], ids=["default", "-v"])
def test_library_noise_is_shown_only_with_verbose(tmp_path, verbose):
    """accelerate's per-checkpoint "Removed shared tensor" warning and transformers' weight-loading
    bar are hidden by the CLI's default logging setup and shown with -v."""
    t = tiny_tokenizer()
    tiny_model(t).save_pretrained(tmp_path / "m")
    t.save_pretrained(tmp_path / "m")
    script = (
        "import sys, torch\n"
        "from reasondistill.cli import setup_logging\n"
        f"setup_logging({verbose})\n"
        "from accelerate import PartialState\n"
        "from accelerate.utils.other import clean_state_dict_for_safetensors\n"
        "PartialState(cpu=True)\n"
        "w = torch.zeros(2, 2)\n"
        "clean_state_dict_for_safetensors({'a': w, 'b': w})  # what every checkpoint of tied embeddings does\n"
        "from reasondistill.models.load import load_model\n"
        "load_model(sys.argv[1])\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("TRANSFORMERS_VERBOSITY", "HF_HUB_DISABLE_PROGRESS_BARS")}
    proc = subprocess.run([sys.executable, "-c", script, str(tmp_path / "m")], env=env, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert ("Removed shared tensor" in proc.stderr) == bool(verbose), proc.stderr
    assert ("Loading weights" in proc.stderr) == bool(verbose), proc.stderr
