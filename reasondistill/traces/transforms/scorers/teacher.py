"""Key-token scorers that read the teacher: `saliency` (gradient x input, the default) and `leave_one_out`.

Wadhwa, Amir & Wallace (arXiv 2406.14511, Sec. 5) keep only a rationale's "key" tokens and
find they give about the gain of the whole rationale. The paper's exact key-token scorer is
not stated in what we could read, so the scorer is a recipe knob; both scorers here measure
how much each rationale piece supports the teacher's log-likelihood of the gold label:

    log p_teacher(answer tokens | prompt, "Reasoning: " + rationale + "\\nAnswer: ")

i.e. the teacher reads the rationale *before* the label, the order it was trained to write
(placement "before"); a rationale after the label could not influence it. Prompt and
completion are rendered and tokenized by the teacher's own prompt template (`template`, the
one it was trained with; for `think`, "<think>\\n" + rationale + "\\n</think>\\n\\n" + answer).
Teacher tokens are mapped to the transform's pieces by character overlap, so the pieces may
come from another tokenizer (the student's) or be words; a piece's score is the sum over the
teacher tokens it overlaps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import Field

from reasondistill.config import ModelSource
from reasondistill.models.tokenize import encode_with_spans
from reasondistill.traces.templates import (
    Template,
    TemplateConfig,
    build_template,
    check_trained_template,
    template_field,
)
from reasondistill.traces.transforms.base import (
    SCORERS,
    ImportanceScorer,
    Pieces,
    RationaleItem,
    TransformEnv,
    safe_rationale,
)


@dataclass
class _Encoded:
    ids: list[int]  # prompt + completion ids, as training tokenizes them (models/tokenize.py)
    answer_pos: list[int]  # positions of the gold answer's tokens
    rat_pos: list[int]  # positions of the rationale's tokens ...
    rat_spans: list[tuple[int, int]]  # ... and their character spans in the rationale


def _encode_all(tok, template: Template, items: list[RationaleItem], rationales: list[str]) -> list[_Encoded]:
    layouts = [template.layout(it.answer, r) for it, r in zip(items, rationales, strict=True)]
    encs = encode_with_spans(tok, [template.prompt(it.question) for it in items], [t for t, _, _ in layouts])
    out = []
    for r, (_, r0, a0), (p, ids, offs) in zip(rationales, layouts, encs, strict=True):
        r1 = r0 + len(r)
        ans = [len(p) + j for j, (s, e) in enumerate(offs) if e > a0 and e > s]
        rat = [(len(p) + j, (max(s, r0) - r0, min(e, r1) - r0)) for j, (s, e) in enumerate(offs) if s < r1 and e > r0]
        out.append(_Encoded(p + list(ids), ans, [q for q, _ in rat], [sp for _, sp in rat]))
    return out


def _batches(encs: list[_Encoded], batch_size: int) -> list[list[int]]:
    """Indices grouped by similar length (less padding), each group at most batch_size."""
    order = sorted(range(len(encs)), key=lambda i: len(encs[i].ids))
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def _scored(batches: list[list[int]], total: int, desc: str):
    """The batches, with a progress bar over the sequences they hold (items/s, ETA)."""
    from reasondistill.progress import item_bar

    with item_bar(total, f"scoring ({desc})", "sequence") as bar:
        for idx in batches:
            yield idx
            bar.update(len(idx))


def _answer_logprob(model, batch: list[_Encoded], with_grad: bool):
    """(log p(answer) per row [B], input embeddings [B, T, H] or None, padded width).

    Right padding: nothing is generated, and the causal mask keeps padding out of every
    real position; logits are taken only at answer positions (no [B, T, V] log-softmax).
    """
    import torch

    width = max(len(e.ids) for e in batch)
    dev = model.device
    ids = torch.zeros((len(batch), width), dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for i, e in enumerate(batch):
        ids[i, : len(e.ids)] = torch.tensor(e.ids)
        mask[i, : len(e.ids)] = 1
    ids, mask = ids.to(dev), mask.to(dev)
    rows = torch.tensor([i for i, e in enumerate(batch) for _ in e.answer_pos], dtype=torch.long, device=dev)
    cols = torch.tensor([c for e in batch for c in e.answer_pos], dtype=torch.long, device=dev)
    emb = None
    if with_grad:
        emb = model.get_input_embeddings()(ids).detach().requires_grad_(True)
        logits = model(inputs_embeds=emb, attention_mask=mask).logits
    else:
        logits = model(input_ids=ids, attention_mask=mask).logits
    lp = logits[rows, cols - 1].float().log_softmax(-1).gather(-1, ids[rows, cols][:, None])[:, 0]
    per_row = torch.zeros(len(batch), dtype=lp.dtype, device=dev).index_add(0, rows, lp)
    return per_row, emb


def _to_pieces(p: Pieces, spans: list[tuple[int, int]], token_scores: list[float]) -> list[float]:
    """Sum teacher-token scores into the pieces they overlap (character spans)."""
    out = [0.0] * len(p)
    for (ts, te), sc in zip(spans, token_scores, strict=True):
        for i, (ps, pe) in enumerate(p.spans):
            if ts < pe and te > ps:
                out[i] += sc
    return out


class _TeacherScorer(ImportanceScorer):
    model: ModelSource = Field(description="the teacher: {stage: <training stage>} or {path: <dir or hub id>}")
    template: TemplateConfig = template_field("the prompt template the teacher was trained with")
    batch_size: int = Field(64, ge=1, description="sequences per forward pass")

    def encode(self, env: TransformEnv, items: list[RationaleItem], rationales: list[str]):
        """(teacher model, its encodings of the items with `rationales`), under its template."""
        model, tok = env.teacher(self.model)
        template = build_template(self.template)
        check_trained_template(self.model.resolve(env.ctx), self.template, f"key-token scorer {self.kind!r}")
        template.check_tokenizer(tok)
        return model, _encode_all(tok, template, items, rationales)


class SaliencyScorer(_TeacherScorer):
    """Gradient x input saliency (default scorer; arXiv 2406.14511's exact scorer is not stated
    in what we could read). For each rationale token t with input embedding e_t:

        score_t = | sum_h  (d log p(answer) / d e_t)_h * (e_t)_h |

    one forward and one backward pass per batch (rows are independent, so the gradient of the
    batch sum is each row's own gradient). Deterministic: the teacher runs in eval mode.
    """

    kind: Literal["saliency"] = "saliency"

    def score(
        self, items: list[RationaleItem], pieces: list[Pieces], env: TransformEnv, seed: int | None
    ) -> list[list[float]]:
        import torch

        model, encs = self.encode(env, items, [it.rationale for it in items])
        out: list[list[float]] = [[] for _ in items]
        params = [p.requires_grad for p in model.parameters()]
        model.requires_grad_(False)  # gradients w.r.t. the inputs only
        try:
            for idx in _scored(_batches(encs, self.batch_size), len(encs), "saliency"):
                batch = [encs[i] for i in idx]
                per_row, emb = _answer_logprob(model, batch, with_grad=True)
                if per_row.requires_grad:
                    (grad,) = torch.autograd.grad(per_row.sum(), emb)
                    sal = (grad * emb).sum(-1).abs().detach().cpu()  # [B, T]
                else:  # no answer token in the batch (empty answers): nothing to attribute
                    sal = torch.zeros(emb.shape[:2])
                for b, i in enumerate(idx):
                    tok_scores = sal[b, encs[i].rat_pos].tolist()
                    out[i] = _to_pieces(pieces[i], encs[i].rat_spans, tok_scores)
        finally:
            for p, flag in zip(model.parameters(), params, strict=True):
                p.requires_grad_(flag)
        return out


class LeaveOneOutScorer(_TeacherScorer):
    """Leave-one-out: score of piece i = log p(answer | rationale) - log p(answer | rationale
    without piece i's characters). Forward passes only, all (rationale, piece) variants of the
    stage batched together: sum over examples of (pieces + 1) sequences. arXiv 2406.14511's
    exact scorer is not stated in what we could read; this is the occlusion alternative.
    """

    kind: Literal["leave_one_out"] = "leave_one_out"

    def score(
        self, items: list[RationaleItem], pieces: list[Pieces], env: TransformEnv, seed: int | None
    ) -> list[list[float]]:
        import torch

        owners, variant_items, texts = [], [], []
        for n, (it, p) in enumerate(zip(items, pieces, strict=True)):
            drops = [safe_rationale(it.rationale[:s] + it.rationale[e:]) for s, e in p.spans]
            for j, text in enumerate([it.rationale, *drops]):
                owners.append((n, j))
                variant_items.append(it)
                texts.append(text)
        model, encs = self.encode(env, variant_items, texts)
        lps = [0.0] * len(encs)
        with torch.inference_mode():
            for idx in _scored(_batches(encs, self.batch_size), len(encs), "leave-one-out"):
                per_row, _ = _answer_logprob(model, [encs[i] for i in idx], with_grad=False)
                for i, v in zip(idx, per_row.tolist(), strict=True):
                    lps[i] = v
        full = {n: lps[k] for k, (n, j) in enumerate(owners) if j == 0}
        out: list[list[float]] = [[0.0] * len(p) for p in pieces]
        for k, (n, j) in enumerate(owners):
            if j > 0:
                out[n][j - 1] = full[n] - lps[k]
        return out


SCORERS.register("saliency", SaliencyScorer)
SCORERS.register("leave_one_out", LeaveOneOutScorer)
