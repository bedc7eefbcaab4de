"""Crash-safe checkpoints and final artifacts.

Resumable state goes through `accelerator.save_state`/`load_state`: it writes model,
optimizer, scheduler and per-rank RNG states, and already knows how FSDP and DeepSpeed
shard them, so the same code resumes any `accelerate launch` configuration. Our own
progress (step, tokens, wall time) is a JSON file beside it.

Atomicity: everything is written into `<name>.tmp`, then rank 0 swaps it in by renames
(current -> `<name>.old`, tmp -> current, delete old). A kill at any point leaves either
the previous complete checkpoint (as `<name>` or `<name>.old`) or the new one; a
half-written `.tmp` is never loaded.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from accelerate import Accelerator

from reasondistill.errors import ReasonDistillError

CHECKPOINT = "checkpoint"
PROGRESS = "progress.json"


def _tmp(path: Path) -> Path:
    return path.with_name(path.name + ".tmp")


def _old(path: Path) -> Path:
    return path.with_name(path.name + ".old")


def clear_tmp(accelerator: Accelerator, final: Path) -> Path:
    """Remove a stale `<final>.tmp` (left by a killed writer) and return its path; all ranks call."""
    if accelerator.is_main_process:
        shutil.rmtree(_tmp(final), ignore_errors=True)
    accelerator.wait_for_everyone()
    return _tmp(final)


def commit(accelerator: Accelerator, final: Path) -> None:
    """Atomically replace `final` by `<final>.tmp`; all ranks call (rank 0 renames)."""
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        old = _old(final)
        if final.exists():
            shutil.rmtree(old, ignore_errors=True)
            os.replace(final, old)
        os.replace(_tmp(final), final)
        shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()


def find_checkpoint(out_dir: Path) -> Path | None:
    """The checkpoint to resume from: `checkpoint`, or `checkpoint.old` if a kill hit the swap."""
    for path in (out_dir / CHECKPOINT, _old(out_dir / CHECKPOINT)):
        if (path / PROGRESS).exists():
            return path
    return None


def save_checkpoint(accelerator: Accelerator, out_dir: Path, progress: dict) -> None:
    final = out_dir / CHECKPOINT
    tmp = clear_tmp(accelerator, final)
    accelerator.save_state(str(tmp))
    if accelerator.is_main_process:
        (tmp / PROGRESS).write_text(json.dumps(progress, indent=2) + "\n")
    commit(accelerator, final)


def load_checkpoint(accelerator: Accelerator, path: Path, expect: dict) -> dict:
    """Restore model/optimizer/scheduler/RNG from `path`; return its progress dict.

    `expect` holds settings that define the batch sequence (global batch, seed, row count):
    resuming under different ones would silently train on other batches, so it is an error.
    """
    progress = json.loads((path / PROGRESS).read_text())
    wrong = {k: (progress.get(k), v) for k, v in expect.items() if progress.get(k) != v}
    if wrong:
        diffs = ", ".join(f"{k}: checkpoint {a} vs now {b}" for k, (a, b) in wrong.items())
        raise ReasonDistillError(
            f"cannot resume from {path}: the run's settings changed ({diffs}); delete it to restart"
        )
    accelerator.load_state(str(path))
    return progress


def remove_checkpoint(accelerator: Accelerator, out_dir: Path) -> None:
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        for p in (out_dir / CHECKPOINT, _old(out_dir / CHECKPOINT), _tmp(out_dir / CHECKPOINT)):
            shutil.rmtree(p, ignore_errors=True)
