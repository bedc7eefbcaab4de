"""train_model: train a causal LM on training rows under any objective, with accelerate.

One code path for every objective (objectives/: nll, kd, ...), for 1 process and for
`accelerate launch` (DDP; FSDP/DeepSpeed through accelerate's config). Our own loop rather than
HF Trainer, so that batching, loss normalisation and resume are explicit (see batching.py,
loop.py, checkpoint.py).
"""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from transformers import get_scheduler

from reasondistill.errors import ReasonDistillError
from reasondistill.models.load import ensure_pad_token
from reasondistill.models.tiny import count_parameters
from reasondistill.records import write_json_atomic
from reasondistill.train.batching import BatchPlan, encode_pairs, encode_rows
from reasondistill.train.checkpoint import find_checkpoint, load_checkpoint, remove_checkpoint
from reasondistill.train.config import TrainConfig
from reasondistill.train.loop import LoopState, train_steps
from reasondistill.train.objectives import Objective
from reasondistill.train.objectives.nll import NLL
from reasondistill.train.progress import Progress
from reasondistill.train.save import save_final

log = logging.getLogger("reasondistill.train")
STATE = "train_state.json"
_SCHEDULES = {"linear": "linear", "cosine": "cosine", "constant": "constant_with_warmup"}


def _param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """AdamW groups: decay matrices (weights, embeddings), never norms or biases (1-D)."""
    params = [p for p in model.parameters() if p.requires_grad]
    return [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]


def train_model(
    model,
    tokenizer,
    rows: list[dict],
    cfg: TrainConfig,
    out_dir: Path,
    objective: Objective | None = None,
    desc: str = "train",
) -> dict:
    """Train `model` (a transformers causal LM, or a PEFT LoRA model) on TRL-style rows.

    objective: a built Objective (train/objectives/base.py); None is `nll` (SFT). Its `rows`
    says how `rows` are encoded: {"prompt", "completion"} rows, or {"prompt", "chosen",
    "rejected"} pairs (batch sizes then count pairs). White-box KD passes kd.KDObjective.
    desc: progress-bar label.

    Writes out_dir/model (+ out_dir/adapter for LoRA), the `cfg.report_to` trackers' logs
    (TensorBoard: out_dir/logs) and
    out_dir/train_state.json, which it returns. Resumes from out_dir/checkpoint if present;
    returns the existing state without training if out_dir already holds a finished run.
    """
    out_dir = Path(out_dir)
    if (out_dir / STATE).exists() and (out_dir / "model").exists():
        return json.loads((out_dir / STATE).read_text())
    accelerator = Accelerator(mixed_precision=cfg.mixed_precision, step_scheduler_with_optimizer=False)
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    if launched != accelerator.num_processes:  # each process would train alone, into the same files
        raise ReasonDistillError(
            f"launched as {launched} processes but accelerate set up {accelerator.num_processes}; on a "
            "CPU-only machine set ACCELERATE_USE_CPU=1 (and create any PartialState with cpu=True)"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    seed = cfg.seed if cfg.seed is not None else 0
    set_seed(seed)
    ensure_pad_token(tokenizer, model)
    objective = objective if objective is not None else NLL()
    encode = encode_pairs if objective.rows == "preference" else encode_rows
    encoded = encode(tokenizer, rows, cfg.max_length)
    world = accelerator.num_processes
    global_batch = cfg.per_device_batch_size * world * cfg.grad_accum
    plan = BatchPlan([r.length for r in encoded], global_batch, seed, cfg.group_by_length, cfg.mega_batch)
    total = cfg.max_steps or math.ceil(cfg.epochs * plan.steps_per_epoch)
    if cfg.gradient_checkpointing:
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    n_params, n_trainable = count_parameters(model), count_parameters(model, trainable_only=True)

    optimizer = torch.optim.AdamW(_param_groups(model, cfg.weight_decay), lr=cfg.lr, betas=cfg.adam_betas)
    scheduler = get_scheduler(_SCHEDULES[cfg.schedule], optimizer, cfg.warmup_steps, total)
    # step_scheduler_with_optimizer=False: accelerate would otherwise step the schedule
    # once per process per step, making the LR curve depend on the world size.
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)

    expect = {"global_batch": global_batch, "seed": seed, "rows": len(encoded)}
    state, resumed_from = LoopState(), None
    ckpt = find_checkpoint(out_dir)
    if ckpt is not None:
        p = load_checkpoint(accelerator, ckpt, expect)  # also restores the RNG states of every rank
        state = LoopState(step=p["step"], tokens=p["tokens"], wall_s=p["wall_s"], loss=p["loss"])
        resumed_from = state.step
        if accelerator.is_main_process:
            log.info("resumed from step %d (%s)", state.step, ckpt)
    progress = Progress(accelerator, out_dir, state.step, total, cfg.progress_bar, desc, cfg.report_to,
                        cfg.model_dump(mode="json"))  # fmt: skip
    start_tokens = state.tokens
    try:
        train_steps(accelerator, model, optimizer, scheduler, encoded, plan, cfg, total, state,
                    tokenizer.pad_token_id, out_dir, progress, expect, objective)  # fmt: skip
    finally:
        progress.close()
    elapsed = progress.elapsed
    save_final(accelerator, model, tokenizer, out_dir)
    summary = {
        "final_loss": state.loss,
        "final_grad_norm": state.grad_norm,
        "steps": state.step,
        "tokens": state.tokens,
        "tokens_per_s": (state.tokens - start_tokens) / max(elapsed, 1e-9),
        "wall_s": state.wall_s + elapsed,
        "world_size": world,
        "global_batch": global_batch,
        "params": n_params,
        "trainable_params": n_trainable,
        "rows": len(encoded),
        "resumed_from": resumed_from,
    }
    if accelerator.is_main_process:
        write_json_atomic(out_dir / STATE, summary)  # written last: its presence means "finished"
    if not cfg.keep_checkpoint:
        remove_checkpoint(accelerator, out_dir)
    accelerator.wait_for_everyone()
    return summary
