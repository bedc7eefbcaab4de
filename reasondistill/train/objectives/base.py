"""The training-objective seam: OBJECTIVES (name -> objective) and the contract the loop calls.

A train stage (stages/train.py) selects its loss with `objective: {kind: <name>, ...}`. A
registered objective is a class with

- `Config`: a StrictModel with `kind: Literal[<name>]` (+ its options), validated at plan time;
- `rows`: "completion" (TRL prompt/completion rows) or "preference" (prompt/chosen/rejected):
  what every rows source of the stage must hold; the stage checks it before any work;
- `build(cfg, ctx, model, tokenizer, rows) -> Objective` (classmethod): prepares and checks the
  extra inputs (a KD teacher or logit cache; later DPO's reference log-probs, computed once and
  cached) BEFORE anything is written. `ctx` is the train stage's StageContext (ctx.cfg.train
  holds max_length and the seed), `rows` its TrainRows (train/mix.py).

`build` returns the runtime `Objective` below. NLL is its own runtime (build returns `cls()`);
kd's is kd.KDObjective, which holds torch state (a teacher model, a cache reader thread). The
split exists because planning imports every registered class to build the recipe schema and
must not import torch: a registered module imports torch only inside methods.

"Returns a loss sum and a count" is realised as follows (train/loop.py): `__call__` returns the
SUM of the loss over one micro-batch's items, and `count(items)` is the normaliser of a whole
global batch: completion tokens (nll, kd) or pairs (preference objectives), a pure function of
the encoded items, so every rank knows it from the deterministic plan without an all-reduce.
The loop backpropagates sum * world / count(global batch): the gradient of sum / count over the
global batch whatever its split into ranks x micro-steps (gradient-accumulation invariance).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from reasondistill.registry import Registry

if TYPE_CHECKING:
    import numpy as np
    import torch

    from reasondistill.train.batching import Item

RowKind = Literal["completion", "preference"]
ROW_FIELDS: dict[str, str] = {"completion": "prompt/completion", "preference": "prompt/chosen/rejected"}


class Objective:
    """The runtime objective the training loop calls (one per train stage run)."""

    rows: ClassVar[RowKind] = "completion"
    # Optional prefetch(row indices) -> None: the loop calls it with the NEXT micro-batch's item
    # indices so per-row inputs (cached teacher logits) load while the current one computes.
    prefetch: Callable[[Any], None] | None = None

    def count(self, items: Sequence[Item]) -> int:
        """The normaliser of a global batch: completion tokens that get a loss, or pairs."""
        if self.rows == "preference":
            return len(items)
        from reasondistill.train.loss import n_targets  # lazy: this module stays torch-free

        return sum(n_targets(len(r.ids), r.n_prompt) for r in items)

    def __call__(self, logits: torch.Tensor, batch: dict[str, torch.Tensor], idx: np.ndarray) -> torch.Tensor:
        """0-dim fp32 SUM of the loss over the micro-batch's items.

        logits [B, L, V] of the student on batch (train/batching.collate: input_ids,
        attention_mask, labels [B, L]; a pair is rows 2i (chosen) and 2i + 1 (rejected));
        idx [items]: the items' indices into the training rows (per-row inputs are looked up by
        them). An all-masked batch must give exactly 0 (not NaN) with a finite gradient.
        """
        raise NotImplementedError

    def summary(self) -> dict:
        """Extra fields for the stage's summary (stored in its completion marker)."""
        return {}


OBJECTIVES: Registry[type] = Registry("objective", "training objectives", config=lambda o: o.Config)
