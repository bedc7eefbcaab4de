"""Rank-0 progress reporting: a tqdm bar (loss, real tokens/s, ETA) and the `report_to` trackers.

Trackers are accelerate's own (accelerate.tracking: tensorboard, wandb, mlflow, comet_ml, aim,
clearml, dvclive, swanlab, trackio), built here rather than through `Accelerator(log_with=...)`:
each needs arguments of its own (TensorBoard's purge step on resume, a stable wandb run id), and
`Accelerator.end_training` would also tear down the process group that later stages of the same
recipe still use.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import TYPE_CHECKING

from tqdm.auto import tqdm

from reasondistill.errors import ReasonDistillError

if TYPE_CHECKING:
    from accelerate import Accelerator


class Progress:
    """Only the main process draws or logs; the other ranks get a no-op object."""

    def __init__(
        self,
        accelerator: Accelerator,
        out_dir: Path,
        start: int,
        total: int,
        bar: bool,
        desc: str = "train",
        report_to: tuple[str, ...] | list[str] = ("tensorboard",),
        config: dict | None = None,
    ) -> None:
        self.on = accelerator.is_main_process
        self.tokens = 0  # real (non-padding) tokens trained by this invocation
        self.bar, self.trackers = None, []
        if self.on:
            self.trackers = open_trackers(report_to, Path(out_dir), start, config or {})
            self.bar = tqdm(total=total, initial=start, desc=desc, unit="step", disable=not bar, dynamic_ncols=True)
        self.start_time = time.perf_counter()  # after the setup above (importing tensorboard takes ~1 s)

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.start_time

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / max(self.elapsed, 1e-9)

    def step(self, step: int, tokens: int, scalars: dict[str, float] | None) -> None:
        """Record optimizer step `step` (1-based) of `tokens` real tokens; `scalars` on log steps."""
        self.tokens += tokens
        if not self.on:
            return
        self.bar.update(1)
        if scalars:
            scalars = {**scalars, "tokens_per_s": self.tokens_per_s}
            values = {f"train/{k}": float(v) for k, v in scalars.items() if v is not None}
            for t in self.trackers:
                t.log(values, step=step)
            self.bar.set_postfix(loss=f"{scalars['loss']:.4f}", tok_s=f"{self.tokens_per_s:,.0f}")

    def close(self) -> None:
        if self.on:
            self.bar.close()
            for t in self.trackers:
                t.finish()


def open_trackers(names, out_dir: Path, start: int, config: dict) -> list:
    """Started accelerate trackers for `names`, logging into (or named after) `out_dir`.

    TensorBoard writes out_dir/logs. A run resumed from step `start` purges only the events
    logged after its checkpoint (purge_step = start + 1): with purge_step = start, the point
    logged at the checkpoint step itself was dropped, and the resumed run never logs it again.
    wandb and the others get the recipe name as project and the stage directory's name as run,
    with a run id derived from the directory, so a resumed run continues its own run. wandb writes
    beside the stage directories (runs/<recipe>/wandb), not into one: its service appends to its
    logs when the process exits, after the stage's completion marker recorded every file's size.
    """
    from accelerate.tracking import LOGGER_TYPE_TO_CLASS

    project, run = out_dir.parent.name or "reasondistill", out_dir.name
    run_id = hashlib.sha256(str(out_dir.resolve()).encode()).hexdigest()[:16]
    kwargs = {
        "tensorboard": {"purge_step": start + 1} if start else {},
        "wandb": {"dir": str(out_dir.parent), "name": run, "id": run_id, "resume": "allow"},
        "mlflow": {"run_name": run},
    }
    trackers = []
    for name in names:
        cls = LOGGER_TYPE_TO_CLASS[name]
        first = "logs" if name == "tensorboard" else project  # TensorBoard: out_dir/logs, as before
        try:
            if cls.requires_logging_directory:
                tracker = cls(first, str(out_dir), **kwargs.get(name, {}))
            else:
                tracker = cls(first, **kwargs.get(name, {}))
            tracker.start()
            if config and name != "tensorboard":  # TensorBoard's hparams add a dated dir per run
                tracker.store_init_configuration(config)
        except Exception as e:  # a tracker that cannot start (no login, no server) is the user's to fix
            for t in trackers:
                t.finish()
            hint = "; for offline logging set WANDB_MODE=offline" if name == "wandb" else ""
            raise ReasonDistillError(
                f"train.report_to: tracker {name!r} could not start: {type(e).__name__}: "
                f"{' '.join(str(e).split())[:300]}{hint}"
            ) from None
        trackers.append(tracker)
    return trackers
