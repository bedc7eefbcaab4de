"""`dpo`: Direct Preference Optimization (Rafailov et al., arXiv 2305.18290), sigmoid loss.

Per pair, with s(y) the summed completion-token log-prob of y under the policy and s_ref(y)
under the frozen reference:

    loss = -log sigmoid(beta * ((s(chosen) - s_ref(chosen)) - (s(rejected) - s_ref(rejected))))

summed over the pairs of a micro-batch and divided by the loop by the pairs of the global batch:
TRL's DPOTrainer loss_type="sigmoid" (trl/trainer/dpo_trainer.py, `_compute_loss`), which is a
mean over the pairs of one micro-batch; ours is exact under accumulation and data parallelism
(tests/unit/test_dpo_orpo.py checks loss and gradients against TRL 1.16 on the same batch).

```yaml
objective: {kind: dpo, beta: 0.1}                       # reference = this stage's initial model
objective: {kind: dpo, beta: 0.1, reference: {stage: sft}}   # or any other model, same tokenizer
```
The reference log-probs are computed ONCE, in `build`, before any training, and cached in the
stage directory (reference_logps.npz, keyed by a digest of the token ids and the reference), so
no second model is held in memory while training and a resumed run does not recompute them
(TRL's `precompute_ref_log_probs=True`; its default instead runs the reference in every step).
A reference whose vocabulary differs from the student's fails in `build` with one message.
"""

from __future__ import annotations

import hashlib
import json
from typing import Literal

from pydantic import Field

from reasondistill.config import ModelSource, StageContext, StrictModel
from reasondistill.errors import ReasonDistillError
from reasondistill.train.objectives.base import OBJECTIVES, Objective
from reasondistill.train.objectives.preference import count_pairs, sequence_logps, valid_pairs

CACHE_FILE = "reference_logps.npz"


class DPO:
    """Registered objective `dpo`; `build` returns a DPOObjective holding the cached reference log-probs."""

    class Config(StrictModel):
        kind: Literal["dpo"]
        beta: float = Field(0.1, gt=0, description="β: how strongly the policy is anchored to the reference")
        reference: ModelSource | None = Field(
            None, description="the reference policy; None: this stage's initial model (usually the SFT model)"
        )
        batch_size: int = Field(
            16, ge=1, description="pairs per forward pass when computing reference log-probs"
        )

    rows = "preference"

    @classmethod
    def build(cls, cfg: Config, ctx: StageContext, model, tokenizer, rows) -> DPOObjective:
        from reasondistill.train.batching import encode_pairs

        pairs = encode_pairs(tokenizer, rows.rows, ctx.cfg.train.max_length)
        who = "initial model" if cfg.reference is None else cfg.reference.resolve(ctx)
        digest = _digest(pairs, who)
        path = ctx.out_dir / CACHE_FILE
        cached = _load(path, digest)
        if cached is None:
            ref = model
            if cfg.reference is not None:
                ref = _load_reference(who, tokenizer, model, _student_source(ctx))
            cached = reference_logps(ref, pairs, tokenizer.pad_token_id or 0, cfg.batch_size)
            del ref  # the reference is not kept: training holds one model
            _save(path, digest, *cached)
            ctx.log.info("dpo: reference log-probs of %d pairs computed (%s)", len(pairs), who)
        return DPOObjective(cfg.beta, *cached, reference=str(who))


class DPOObjective(Objective):
    """Runtime DPO: sigmoid loss SUM over the counted pairs, reference log-probs looked up by item index."""

    rows = "preference"

    def __init__(self, beta: float, ref_chosen, ref_rejected, reference: str = "") -> None:
        self.beta, self.ref_chosen, self.ref_rejected, self.reference = (
            beta,
            ref_chosen,
            ref_rejected,
            reference,
        )

    def count(self, items) -> int:
        return count_pairs(items)

    def __call__(self, logits, batch, idx):
        import torch
        import torch.nn.functional as F

        seq, n = sequence_logps(logits, batch["labels"])
        ref_c = torch.as_tensor(self.ref_chosen[idx], device=seq.device, dtype=torch.float32)
        ref_r = torch.as_tensor(self.ref_rejected[idx], device=seq.device, dtype=torch.float32)
        delta = (seq[0::2] - ref_c) - (seq[1::2] - ref_r)
        loss = -F.logsigmoid(self.beta * delta)
        return torch.where(valid_pairs(n), loss, torch.zeros_like(loss)).sum()

    def summary(self) -> dict:
        return {"dpo_beta": self.beta, "reference": self.reference}


def reference_logps(model, pairs, pad_id: int, batch_size: int):
    """(chosen [P], rejected [P]) float64 arrays: summed completion-token log-probs under `model`.

    Batches are cut from pairs sorted by length (less padding); dropout is off (eval mode) and the
    model's training mode is restored afterwards. Runs on the GPU when there is one."""
    import numpy as np
    import torch

    from reasondistill.train.batching import collate

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    was_training, home = model.training, next(model.parameters()).device
    model.eval().to(device)
    chosen, rejected = np.zeros(len(pairs)), np.zeros(len(pairs))
    order = sorted(range(len(pairs)), key=lambda i: pairs[i].length)
    with torch.no_grad():
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            batch = collate([pairs[i] for i in idx], pad_id)
            logits = model(input_ids=batch["input_ids"].to(device), use_cache=False).logits
            seq, _ = sequence_logps(logits, batch["labels"].to(device))
            chosen[idx], rejected[idx] = seq[0::2].double().cpu().numpy(), seq[1::2].double().cpu().numpy()
    model.to(home).train(was_training)
    return chosen, rejected


def _student_source(ctx) -> str:
    """Where the train stage's student comes from, in words (for error messages)."""
    init = getattr(ctx.cfg, "model", None)
    if init is None:
        return "the student"
    if getattr(init, "tiny", None) is not None:
        return f"the student (a tiny model with tokenizer stage {str(init.tokenizer)!r})"
    for key in ("stage", "path", "pretrained"):
        if getattr(init, key, None) is not None:
            return f"the student (model.{key} {str(getattr(init, key))!r})"
    return "the student"


def _load_reference(source: str, tokenizer, student, student_source: str = "the student"):
    """The reference model, after checking it shares the student's vocabulary."""
    from reasondistill.kd import check_vocab_compat
    from reasondistill.models.load import load_model

    ref, ref_tok = load_model(source)
    rows = lambda m: m.get_output_embeddings().weight.shape[0]  # noqa: E731
    try:
        check_vocab_compat(ref_tok, tokenizer, rows(ref), rows(student))
    except ReasonDistillError as e:
        msg = str(e).replace("white-box KD needs", "DPO needs").replace("teacher", "reference")
        # The vocabulary sizes of both are in `msg` ("reference vocabulary: ...; student vocabulary: ...").
        raise ReasonDistillError(
            f"dpo: reference model {source!r} does not fit {student_source}: {msg}"
        ) from None
    return ref


def _digest(pairs, reference: str) -> str:
    h = hashlib.sha256(reference.encode())
    for p in pairs:
        for side in (p.chosen, p.rejected):
            h.update(json.dumps([side.n_prompt, side.ids]).encode())
    return h.hexdigest()


def _load(path, digest: str):
    import numpy as np

    if not path.is_file():
        return None
    with np.load(path) as f:
        if str(f["digest"]) != digest:
            return None  # another row set or reference: recompute
        return f["chosen"], f["rejected"]


def _save(path, digest: str, chosen, rejected) -> None:
    import os

    import numpy as np

    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")  # every rank may write: same content
    np.savez(tmp, chosen=chosen, rejected=rejected, digest=np.array(digest))
    os.replace(tmp, path)


OBJECTIVES.register(
    "dpo",
    DPO,
    description="DPO (sigmoid loss) against reference log-probs computed once",
    paper="arXiv 2305.18290",
)
