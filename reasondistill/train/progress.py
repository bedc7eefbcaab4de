"""Rank-0 progress reporting: a tqdm bar (loss, real tokens/s) and TensorBoard scalars."""

from __future__ import annotations

import time
from pathlib import Path

from accelerate import Accelerator
from tqdm.auto import tqdm


class Progress:
    """Only the main process draws or writes; the other ranks get a no-op object."""

    def __init__(
        self, accelerator: Accelerator, out_dir: Path, start: int, total: int, bar: bool, desc: str = "train"
    ) -> None:
        self.on = accelerator.is_main_process
        self.tokens = 0  # real (non-padding) tokens trained by this invocation
        self.bar = self.writer = None
        if self.on:
            from torch.utils.tensorboard import SummaryWriter  # imports tensorboard: only where used

            self.writer = SummaryWriter(str(out_dir / "logs"), purge_step=start or None)
            self.bar = tqdm(total=total, initial=start, desc=desc, disable=not bar, dynamic_ncols=True)
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
            for k, v in scalars.items():
                self.writer.add_scalar(f"train/{k}", v, step)
            self.bar.set_postfix(loss=f"{scalars['loss']:.4f}", tok_s=f"{self.tokens_per_s:,.0f}")

    def close(self) -> None:
        if self.on:
            self.bar.close()
            self.writer.close()
