"""Progress bars for long loops over items: generation, evaluation, scoring, reading large files.

Each shows items done, items/s and the ETA, as the training bar shows steps and tokens/s. Bars
go to stderr on the main process only; `TQDM_DISABLE=1` turns every bar off. On a terminal a bar redraws in place; into a log file it writes a line at most every 10 s, so a long
run's log keeps its progress without a line per item.

Bottom layer: tqdm only (no torch), so any stage may use it.
"""

from __future__ import annotations

import os
import sys

from tqdm.auto import tqdm


def item_bar(total: int, desc: str, unit: str = "item", initial: int = 0, min_total: int = 0) -> tqdm:
    """A bar over `total` items (`initial` already done: a resumed run). Disabled, but still
    usable, below `min_total` items (reading a small file needs no bar) and on ranks other than 0."""
    quiet = (
        total < min_total
        or os.environ.get("RANK", "0") != "0"
        or os.environ.get("TQDM_DISABLE", "").lower() in ("1", "true", "yes")
    )
    return tqdm(
        total=total,
        initial=initial,
        desc=desc,
        unit=unit,
        disable=quiet,  # not tqdm's None ("off unless a terminal"): a log file keeps the progress too
        dynamic_ncols=True,
        mininterval=0.1 if sys.stderr.isatty() else 10.0,
        smoothing=0.1,  # a rate over recent batches: generation speed varies with length
    )
