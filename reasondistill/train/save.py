"""Final artifacts: out_dir/model (plain transformers, + tokenizer) and, for LoRA, out_dir/adapter."""

from __future__ import annotations

from pathlib import Path

from accelerate import Accelerator

from reasondistill.models.lora import is_lora, merge_lora
from reasondistill.train.checkpoint import clear_tmp, commit

MODEL, ADAPTER = "model", "adapter"


def save_final(accelerator: Accelerator, model, tokenizer, out_dir: Path) -> None:
    """Write the trained model atomically (temp dir + rename); every rank must call this.

    A LoRA model is saved twice: the adapter alone (PEFT format) and merged into the base
    weights, so `AutoModelForCausalLM.from_pretrained(out_dir/"model")` needs no PEFT. The
    merge happens in place: the caller's LoRA model object is merged afterwards. (LoRA under
    FSDP / ZeRO-3 sharding is not handled here: rank 0 merges its own, unsharded copy.)
    """
    unwrapped = accelerator.unwrap_model(model)
    lora = is_lora(unwrapped)
    # Full weights: gathered by accelerate, a collective under FSDP / ZeRO-3, so every rank calls it.
    state_dict = None if lora else accelerator.get_state_dict(model)
    main = accelerator.is_main_process
    if lora:
        tmp = clear_tmp(accelerator, out_dir / ADAPTER)
        if main:
            unwrapped.save_pretrained(str(tmp))
        commit(accelerator, out_dir / ADAPTER)
    tmp = clear_tmp(accelerator, out_dir / MODEL)
    if main:
        if lora:
            merge_lora(unwrapped).save_pretrained(str(tmp))
        else:
            unwrapped.save_pretrained(str(tmp), state_dict=state_dict)
        tokenizer.save_pretrained(str(tmp))
    commit(accelerator, out_dir / MODEL)
