"""Tiny causal LMs built from a config (no download): the students of every CPU-scale recipe."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import model_validator

from reasondistill.config import StrictModel

if TYPE_CHECKING:  # torch/transformers are imported where used: recipe validation stays fast
    import torch
    from transformers import PreTrainedModel


class TinyModelSpec(StrictModel):
    """Shape of a tiny Llama- or Qwen2-architecture model; vocabulary comes from the tokenizer."""

    arch: Literal["llama", "qwen2"] = "llama"
    hidden_size: int = 64
    num_layers: int = 2
    num_heads: int = 4
    num_kv_heads: int | None = None  # None: = num_heads (no grouped-query attention)
    intermediate_size: int | None = None  # None: 4 * hidden_size
    max_position_embeddings: int = 512
    tie_word_embeddings: bool = True  # at tiny sizes the embedding is a large share of the parameters

    @model_validator(mode="after")
    def _shapes(self):
        if self.hidden_size % self.num_heads:
            raise ValueError(f"hidden_size {self.hidden_size} is not divisible by num_heads {self.num_heads}")
        if self.num_heads % self.kv_heads:
            raise ValueError(f"num_heads {self.num_heads} is not divisible by num_kv_heads {self.kv_heads}")
        return self

    @property
    def kv_heads(self) -> int:
        return self.num_kv_heads or self.num_heads


def build_tiny_model(spec: TinyModelSpec, tokenizer, seed: int = 0) -> PreTrainedModel:
    """A randomly initialised causal LM (fp32) whose vocabulary and special ids match `tokenizer`.

    The init is seeded with `seed`, so the same spec and seed give the same weights.
    """
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig, Qwen2Config

    config = {"llama": LlamaConfig, "qwen2": Qwen2Config}[spec.arch](
        vocab_size=len(tokenizer),  # len() counts added special tokens; .vocab_size does not
        hidden_size=spec.hidden_size,
        intermediate_size=spec.intermediate_size or 4 * spec.hidden_size,
        num_hidden_layers=spec.num_layers,
        num_attention_heads=spec.num_heads,
        num_key_value_heads=spec.kv_heads,
        max_position_embeddings=spec.max_position_embeddings,
        tie_word_embeddings=spec.tie_word_embeddings,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    with torch.random.fork_rng(devices=[]):  # seed the init without disturbing the caller's RNG
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model


def count_parameters(model: torch.nn.Module, trainable_only: bool = False) -> int:
    """Number of distinct parameters (tied embeddings counted once)."""
    seen: set[int] = set()
    n = 0
    for p in model.parameters():  # .parameters() already de-duplicates shared tensors
        if id(p) in seen or (trainable_only and not p.requires_grad):
            continue
        seen.add(id(p))
        n += p.numel()
    return n
