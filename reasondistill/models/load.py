"""Load any Hugging Face causal LM and its tokenizer, by local path or hub id."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors import SafetensorError
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

    `dtype`: None keeps the checkpoint's dtype ("auto"). Every way a model directory can be bad
    (missing, no config.json, a truncated or corrupt safetensors file, a missing or unparseable
    tokenizer, weights that do not fit the config or lack tensors it needs) raises
    ReasonDistillError naming the directory:
    this is the one place that turns loading failures into one user-facing line.
    """
    looks_local = path_or_id.startswith(("/", ".", "~")) or Path(path_or_id).exists()
    local = Path(path_or_id).expanduser()
    if looks_local and not local.is_dir():
        raise ReasonDistillError(f"model path {path_or_id!r} does not exist or is not a directory")
    if looks_local and not (local / "config.json").exists():
        raise ReasonDistillError(
            f"model path {path_or_id!r} has no config.json: not a saved transformers model"
        )
    if dtype is not None and isinstance(dtype, str) and dtype != "auto" and not isinstance(
        getattr(torch, dtype, None), torch.dtype
    ):
        raise ReasonDistillError(f"unknown dtype {dtype!r}; use float32, bfloat16 or float16")
    where = str(local) if looks_local else path_or_id
    try:
        tokenizer = AutoTokenizer.from_pretrained(where)
        model, info = AutoModelForCausalLM.from_pretrained(
            where, dtype=dtype if dtype is not None else "auto", output_loading_info=True
        )
    except SafetensorError as e:
        raise ReasonDistillError(
            f"cannot load model {path_or_id!r}: a weights file in it is truncated or corrupt ({_first_line(e)})"
        ) from None
    except _LOAD_ERRORS as e:
        raise ReasonDistillError(f"cannot load model {path_or_id!r}: {_first_line(e)}") from None
    if info["missing_keys"]:
        # transformers fills missing tensors with a fresh random init and only logs it: a model
        # half made of noise must not be evaluated or served as if it were the trained one.
        missing = sorted(info["missing_keys"])
        raise ReasonDistillError(
            f"cannot load model {path_or_id!r}: its weights lack {len(missing)} tensor(s) the config needs "
            f"(first: {missing[0]}): an incomplete or mismatched checkpoint"
        )
    ensure_pad_token(tokenizer, model)
    if device is not None:
        try:
            model.to(device)
        except (RuntimeError, ValueError, AssertionError) as e:  # "cuda" on a CPU-only machine, a typo
            raise ReasonDistillError(
                f"cannot put model {path_or_id!r} on device {str(device)!r}: {_first_line(e)}"
            ) from None
    return model, tokenizer


# What loading raises for a bad directory, besides SafetensorError (a truncated or corrupt weights
# file, caught first): a hub miss or a missing file (OSError), a bad config or unknown
# architecture (ValueError, KeyError), weights whose shapes do not fit the config (RuntimeError),
# a config.json that is not JSON or not UTF-8 (ValueError subclasses).
_LOAD_ERRORS = (OSError, ValueError, KeyError, RuntimeError)


def _first_line(e: BaseException) -> str:
    """The exception's message on one line (some span several: "...from one of:\n a\n b")."""
    text = " ".join(str(e).split())
    if "ignore_mismatched_sizes" in text:  # its "look at the above report" is hidden without -v
        return "tensor shapes in the weights differ from its config.json (weights and config of different models?)"
    return (text[:300] + " ...") if len(text) > 300 else text or type(e).__name__
