"""The optimizer-step loop: global-batch-normalised loss, accumulation, clipping, checkpoints.

Loss normalisation: each micro-batch contributes objective(...) / N * W, where objective(...)
is the SUM of the loss over the micro-batch's items, N = objective.count(items of the whole
global batch: all micro-steps, all ranks) and W is the world size, which cancels DDP's
averaging of gradients over ranks. The gradient is then exactly d[sum / N] over the global
batch, whatever the split into ranks x micro-steps (a per-micro-batch mean would weight a
short micro-batch's tokens more). N needs no all-reduce: every rank knows the whole global
batch from the deterministic plan, and `count` is a pure function of the encoded items.

The objective is pluggable (train/objectives/): nll sums the completion-token NLL and counts
completion tokens; white-box KD (kd/objective.py) sums a divergence to the teacher over the
same tokens; a preference objective sums a per-pair loss and counts pairs. Any objective that
returns a SUM over exactly the units its `count` counts inherits the normalisation above, hence
grad-accumulation invariance (tests/unit/test_objectives.py checks it for every objective).
The objective also gets the micro-batch's item indices, so per-row data such as cached teacher
logits can be looked up.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch
from accelerate import Accelerator

from reasondistill.train.batching import BatchPlan, Item, collate, micro_batches
from reasondistill.train.checkpoint import save_checkpoint
from reasondistill.train.config import TrainConfig
from reasondistill.train.objectives import Objective
from reasondistill.train.progress import Progress


@dataclass
class LoopState:
    step: int = 0  # optimizer steps done
    tokens: int = 0  # real tokens trained, over all ranks and earlier (resumed) runs
    wall_s: float = 0.0  # training time of earlier runs of this out_dir
    loss: float | None = None  # objective sum / count (nll: per-token NLL) over the last `log_every` steps
    grad_norm: float | None = None  # gradient norm (before clipping) of the last step


def train_steps(
    accelerator: Accelerator,
    model,
    optimizer,
    scheduler,
    rows: Sequence[Item],
    plan: BatchPlan,
    cfg: TrainConfig,
    total: int,
    state: LoopState,
    pad_id: int,
    out_dir: Path,
    progress: Progress,
    expect: dict,
    objective: Objective,
) -> LoopState:
    """Run optimizer steps state.step+1 .. total, updating `state` in place."""
    model.train()
    window_loss, window_n = torch.zeros((), device=accelerator.device), 0  # loss since the last log
    while state.step < total:
        batch_rows = plan.rows(state.step)
        n = objective.count([rows[i] for i in batch_rows])
        # An objective with per-row inputs (cached teacher logits) may load the next step's
        # first micro-batch in the background while this step computes.
        ahead = objective.prefetch is not None and state.step + 1 < total
        after = plan.rows(state.step + 1) if ahead else None
        window_loss += _accumulate_gradients(
            accelerator, model, rows, batch_rows, n, pad_id, cfg, objective, after
        )
        window_n += n
        grad_norm = None
        if cfg.max_grad_norm is not None:
            grad_norm = accelerator.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        state.step += 1
        tokens = int(sum(rows[i].tokens for i in batch_rows))  # real tokens, all ranks
        state.tokens += tokens
        scalars = None
        save = cfg.save_every and state.step % cfg.save_every == 0 and state.step < total
        # Log at checkpoints too, so that a resumed run's loss windows match an uninterrupted
        # run's. The decision is the same on every rank (the reduce is a collective).
        if state.step % cfg.log_every == 0 or state.step == total or save:
            state.loss = accelerator.reduce(window_loss, "sum").item() / max(window_n, 1)
            window_loss.zero_()
            window_n = 0
            scalars = {"loss": state.loss, "lr": scheduler.get_last_lr()[0]}
            if grad_norm is not None:
                state.grad_norm = scalars["grad_norm"] = float(grad_norm)
        progress.step(state.step, tokens, scalars)
        if save:
            save_checkpoint(accelerator, out_dir, _progress_dict(state, progress, expect))
    return state


def _accumulate_gradients(
    accelerator, model, rows, batch_rows, n: int, pad_id: int, cfg, objective: Objective, after=None
) -> torch.Tensor:
    """Forward/backward this rank's micro-batches of one global batch; returns their summed loss."""
    world, rank = accelerator.num_processes, accelerator.process_index
    scale = world / max(n, 1)  # see the module docstring; an all-prompt batch gives 0, not NaN
    # Batches are right-padded and attention is causal, so no real token attends to a pad:
    # outputs at real positions are the same without the mask (tested), and without it SDPA
    # takes its is_causal path (~3% faster on CPU). Pad positions carry no label.
    use_mask = cfg.pass_attention_mask
    total = torch.zeros((), device=accelerator.device)
    micro = micro_batches(batch_rows, world, rank, cfg.grad_accum)
    prefetch = objective.prefetch  # optional: prefetch(item indices) -> None
    upcoming = micro[1:]
    if after is not None:
        upcoming.append(micro_batches(after, world, rank, cfg.grad_accum)[0])
    for k, idx in enumerate(micro):
        if prefetch is not None and k < len(upcoming):
            prefetch(upcoming[k])
        batch = collate([rows[i] for i in idx], pad_id, cfg.pad_to_multiple_of)
        batch = {key: t.to(accelerator.device, non_blocking=True) for key, t in batch.items()}
        # DDP all-reduces gradients only on the last micro-step (no_sync before it).
        with nullcontext() if k == len(micro) - 1 else accelerator.no_sync(model):
            out = model(
                input_ids=batch["input_ids"],
                attention_mask=batch["attention_mask"] if use_mask else None,
                use_cache=False,
            )
            loss = objective(out.logits, batch, idx)
            accelerator.backward(loss * scale)
        total += loss.detach()
    return total


def _progress_dict(state: LoopState, progress: Progress, expect: dict) -> dict:
    return {
        "step": state.step,
        "tokens": state.tokens,
        "wall_s": state.wall_s + progress.elapsed,
        "loss": state.loss,
        **expect,
    }
