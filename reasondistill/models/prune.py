"""Depth pruning: a student made from a model by keeping a subset of its decoder layers.

A white-box KD student must share its teacher's tokenizer; the simplest such student is the
teacher (or its pretrained base) with layers removed. Minitron (Muralidharan et al., "Compact
Language Models via Pruning and Knowledge Distillation", arXiv 2407.14679) and Sheared-LLaMA
(Xia et al., arXiv 2310.06694) both prune a pretrained model and then train the smaller model
to recover (Minitron by distilling from the unpruned one), which is the recipe this module
gives a starting point for.

Departures: both papers *choose* what to remove. Minitron ranks layers by importance (the LM
loss or the cosine distance of a block's input and output on calibration data) and also prunes
width (heads, MLP neurons, embedding channels); Sheared-LLaMA learns pruning masks towards a
target architecture. Here the layer subset is fixed by the user (`every: 2`, or a list): no
importance estimation, no width pruning. It is a reproducible baseline, not the papers' search.

What is kept: embeddings, final norm and LM head untouched; the kept layers keep their weights,
are renumbered 0..k-1 (so the saved state dict is an ordinary k-layer checkpoint), and the
config's per-layer fields follow them. The result saves and loads with plain
`AutoModelForCausalLM.from_pretrained`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field, model_validator

from reasondistill.config import StrictModel
from reasondistill.errors import ReasonDistillError

if TYPE_CHECKING:  # torch/transformers stay out of recipe validation
    from transformers import PreTrainedModel

# Config fields that hold one entry per decoder layer (Qwen2/3, Gemma 2/3: sliding vs full
# attention; SmolLM3: which layers skip RoPE). Kept entries follow the kept layers.
PER_LAYER_FIELDS = ("layer_types", "no_rope_layers")


class KeepLayers(StrictModel):
    """Which decoder layers to keep: every `every`-th from `offset`, or the explicit `layers`."""

    every: int | None = Field(None, ge=1, description="keep layers offset, offset + every, ...")
    offset: int = Field(0, ge=0, description="the first layer kept with `every`")
    layers: list[int] | None = Field(None, min_length=1, description="explicit 0-based indices")

    @model_validator(mode="before")
    @classmethod
    def _from_list(cls, v):
        return {"layers": v} if isinstance(v, list) else v  # `keep_layers: [0, 2, 4]` is shorthand

    @model_validator(mode="after")
    def _one(self):
        if (self.every is None) == (self.layers is None):
            raise ValueError("give exactly one of `every` (with optional `offset`) or `layers`")
        if self.layers is not None:
            if any(i < 0 for i in self.layers) or len(set(self.layers)) != len(self.layers):
                raise ValueError(f"layers must be distinct non-negative indices, got {self.layers}")
            if self.offset:
                raise ValueError("`offset` goes with `every`, not with `layers`")
        return self

    def indices(self, n: int, field: str = "keep_layers") -> list[int]:
        """The selected indices of an `n`-layer model, ascending; ReasonDistillError naming the
        recipe `field` that holds this spec when they do not fit."""
        keep = sorted(self.layers) if self.layers is not None else list(range(self.offset, n, self.every))
        if not keep or keep[-1] >= n:
            raise ReasonDistillError(f"{field} {self.describe()} does not fit a model with {n} layers")
        return keep

    def describe(self) -> str:
        return str(self.layers) if self.layers is not None else f"every {self.every} from {self.offset}"


def decoder_layers(model: PreTrainedModel):
    """(the module holding the layer list, its attribute name) for Llama-style (`layers`) and
    GPT-2-style (`h`) models; ReasonDistillError for an architecture without either."""
    import torch

    base = model.base_model
    for attr in ("layers", "h"):
        found = getattr(base, attr, None)
        if isinstance(found, torch.nn.ModuleList):
            return base, attr
    raise ReasonDistillError(
        f"cannot prune {type(model).__name__}: no decoder layer list (`layers` or `h`) on its base model"
    )


def prune_layers(model: PreTrainedModel, keep: KeepLayers | list[int]) -> PreTrainedModel:
    """Keep only the decoder layers `keep` selects, in place; returns the model.

    Layers are renumbered 0..k-1, including each attention's `layer_idx` (the KV cache slot it
    writes during generation: left at its old value, a pruned model would index past the cache),
    and `config.num_hidden_layers` and the per-layer config fields follow."""
    import torch

    spec = keep if isinstance(keep, KeepLayers) else KeepLayers(layers=list(keep))
    holder, attr = decoder_layers(model)
    old = getattr(holder, attr)
    n = len(old)
    if getattr(model.config, "num_hidden_layers", n) != n:
        raise ReasonDistillError(
            f"cannot prune: the config says {model.config.num_hidden_layers} layers, the model has {n}"
        )
    idx = spec.indices(n)
    setattr(holder, attr, torch.nn.ModuleList([old[i] for i in idx]))
    for new_i, layer in enumerate(getattr(holder, attr)):
        for module in layer.modules():
            if isinstance(getattr(module, "layer_idx", None), int):
                module.layer_idx = new_i
    model.config.num_hidden_layers = len(idx)
    for name in PER_LAYER_FIELDS:
        values = getattr(model.config, name, None)
        if isinstance(values, list | tuple) and len(values) == n:
            setattr(model.config, name, [values[i] for i in idx])
    return model
