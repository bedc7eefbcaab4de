"""KD as a training-loop objective: the teacher's distribution at every completion token,
online (the teacher runs in the same step) or cached (top-k log-probs read from a LogitCache).

White-box KD of Do, Doddipatla & Knill (INLG 2025, arXiv 2511.05184): token-level divergence
to the teacher's next-token distribution on the training rows, tau = 1, KD loss only (the
KDLossConfig defaults). Departures: the paper runs the teacher online at full vocabulary; the
cached path replaces it by the teacher's top-k plus one tail bucket (kd/teacher.py, docs/kd.md),
a lower bound of the full divergence that is exact when the tail is empty.

KDObjective is the runtime of the `kd` training objective (train/objectives/kd.py builds it after
its start-up checks): a train/objectives Objective on prompt/completion rows. It returns the SUM
of the loss over the micro-batch's completion tokens and inherits `count` (the completion tokens
of the global batch, the loop's normaliser), so KD keeps NLL's gradient-accumulation invariance.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import torch

from reasondistill.errors import ReasonDistillError
from reasondistill.kd.cache import LogitCache
from reasondistill.kd.config import KDLossConfig
from reasondistill.kd.losses import kd_objective, next_token_mask
from reasondistill.train.objectives.base import Objective


class KDObjective(Objective):
    """Sum over completion tokens of alpha * CE + (1 - alpha) * KD (a train/objectives Objective).

    vocab_size: the shared real vocabulary from kd.check_vocab_compat; student (and online
    teacher) logits are sliced to it, so padded embedding rows take no part. Give exactly one
    of `teacher` (an HF causal LM, run under no_grad on the student's device) or `cache` (a
    LogitCache of the SAME training rows, indexed by row number) unless loss.alpha == 1.
    """

    def __init__(
        self,
        loss: KDLossConfig,
        vocab_size: int,
        *,
        teacher: torch.nn.Module | None = None,
        cache: LogitCache | None = None,
        pass_attention_mask: bool = True,
    ) -> None:
        if loss.alpha < 1.0 and (teacher is None) == (cache is None):
            raise ValueError("KDObjective needs exactly one of `teacher` (online) or `cache`")
        if cache is not None and cache.vocab_size != vocab_size:
            raise ReasonDistillError(
                f"logit cache {cache.dir} holds a {cache.vocab_size}-token vocabulary, the student {vocab_size}"
            )
        self.loss, self.vocab_size = loss, vocab_size
        self.teacher, self.cache = teacher, cache
        self.pass_attention_mask = pass_attention_mask
        self._pool: ThreadPoolExecutor | None = None
        self._pending: dict[tuple[int, ...], Future] = {}  # rows -> their gather, started ahead
        if teacher is not None:
            teacher.eval()  # no dropout: the teacher's distribution is a fixed target
            teacher.requires_grad_(False)

    def prefetch(self, rows: Sequence[int] | np.ndarray) -> None:
        """Start reading and decoding these rows' cache entries in a background thread (the loop
        calls it with the next micro-batch), so cached KD hides its I/O and decoding behind the
        student's compute, as a data-loader worker would. numpy and torch release the GIL here."""
        if self.cache is None or self.loss.alpha >= 1.0:
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kd-cache")
        key = tuple(int(r) for r in rows)
        if key not in self._pending:
            if len(self._pending) >= 4:  # never consumed (e.g. the run ended): drop the stale ones
                self._pending.clear()
            self._pending[key] = self._pool.submit(self.cache.gather, key)

    def teacher_for(self, batch: dict[str, torch.Tensor], rows: Sequence[int] | np.ndarray):
        """What kd_objective takes as the teacher for this micro-batch: full logits [B, L, V]
        (online), or a SparseTeacher in packed layout ([N, k] at the N completion tokens; cached)."""
        if self.loss.alpha >= 1.0:
            return None
        device = batch["input_ids"].device
        if self.cache is not None:
            # LogitCache.batch checks each row's cached position count against the mask, so a
            # cache of other token ids fails loudly instead of misaligning.
            mask = next_token_mask(batch["labels"])
            key = tuple(int(r) for r in rows)
            pending = self._pending.pop(key, None)
            gathered = pending.result() if pending is not None else None
            return self.cache.batch(key, mask=mask, gathered=gathered, packed=True).to(device)
        if next(self.teacher.parameters()).device != device:
            self.teacher.to(device)
        with torch.no_grad():
            out = self.teacher(
                input_ids=batch["input_ids"],
                attention_mask=batch["attention_mask"] if self.pass_attention_mask else None,
                use_cache=False,
            )
        return out.logits[..., : self.vocab_size]

    def __call__(
        self, logits: torch.Tensor, batch: dict[str, torch.Tensor], rows: Sequence[int] | np.ndarray
    ) -> torch.Tensor:
        """Summed loss over the completion tokens; logits [B, L, V_student], V_student >= vocab_size."""
        teacher = self.teacher_for(batch, rows)
        total, _ = kd_objective(logits[..., : self.vocab_size], batch["labels"], teacher, self.loss)
        return total

    def summary(self) -> dict:
        teacher = "cache" if self.cache is not None else "online" if self.teacher is not None else "none"
        return {"teacher": teacher, "kd_loss": self.loss.kind, "vocab_size": self.vocab_size}
