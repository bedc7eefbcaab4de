"""Load any Hugging Face causal LM and its tokenizer, by local path or hub id."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel

from reasondistill.errors import ReasonDistillError


def ensure_pad_token(tokenizer, model: PreTrainedModel | None = None) -> None:
    """Give a tokenizer without a pad token (Llama, Mistral, GPT-2) its EOS as pad.

    Safe for training here because labels are built from each row's length, never from
    `id == pad_id`: padding is masked by position, and the EOS that ends a completion keeps
    its label. Batched generation needs *some* pad id, and left padding with EOS is the
    common convention.
    """
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise ReasonDistillError("tokenizer has neither a pad nor an eos token; cannot pad batches")
        tokenizer.pad_token = tokenizer.eos_token
    if model is not None and getattr(model, "generation_config", None) is not None:
        if model.generation_config.pad_token_id is None:
            model.generation_config.pad_token_id = tokenizer.pad_token_id


def load_model(
    path_or_id: str, *, dtype: torch.dtype | str | None = None, device: str | torch.device | None = None
) -> tuple[PreTrainedModel, object]:
    """(model, tokenizer) from a local directory or a hub id; the tokenizer always has a pad token.

    `dtype`: None keeps the checkpoint's dtype ("auto"). A missing or invalid model raises
    ReasonDistillError naming the path, not a traceback.
    """
    looks_local = path_or_id.startswith(("/", ".", "~")) or Path(path_or_id).exists()
    local = Path(path_or_id).expanduser()
    if looks_local and not local.is_dir():
        raise ReasonDistillError(f"model path {path_or_id!r} does not exist or is not a directory")
    if looks_local and not (local / "config.json").exists():
        raise ReasonDistillError(
            f"model path {path_or_id!r} has no config.json: not a saved transformers model"
        )
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(local) if looks_local else path_or_id)
        model = AutoModelForCausalLM.from_pretrained(
            str(local) if looks_local else path_or_id, dtype=dtype if dtype is not None else "auto"
        )
    except (OSError, ValueError, KeyError) as e:  # hub miss, bad config, unknown architecture
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ReasonDistillError(f"cannot load model {path_or_id!r}: {first}") from e
    ensure_pad_token(tokenizer, model)
    if device is not None:
        model.to(device)
    return model, tokenizer
