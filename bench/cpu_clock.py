"""Process CPU time of `train_model`'s loop, for the bench scripts (instrumentation, not library).

CPU time beside wall time tells a slow step from a descheduled one on a shared machine.
`install()` makes train_model report through CpuClock; `CpuClock.last` is the latest run's.
"""

from __future__ import annotations

import time

from reasondistill.train import trainer as sft_module


class CpuClock(sft_module.Progress):
    """train_model's Progress that also records the process CPU seconds (all threads) of the run."""

    last: CpuClock | None = None

    def __init__(self, *a, **k) -> None:
        super().__init__(*a, **k)
        self.cpu0, CpuClock.last = time.process_time(), self

    def close(self) -> None:
        self.cpu_s = time.process_time() - self.cpu0
        super().close()


def install() -> None:
    sft_module.Progress = CpuClock
