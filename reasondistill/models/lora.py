"""LoRA adapters via PEFT (Hu et al., arXiv 2106.09685): apply for training, merge for saving."""

from __future__ import annotations

from typing import TYPE_CHECKING

from reasondistill.config import StrictModel

if TYPE_CHECKING:  # peft/torch are imported where used: recipe validation stays fast
    import torch
    from peft import PeftModel
    from transformers import PreTrainedModel


class LoraSpec(StrictModel):
    """LoRA hyper-parameters. `target_modules="all-linear"`: every linear layer but the output head."""

    r: int = 8
    alpha: int = 16
    dropout: float = 0.0
    target_modules: str | list[str] = "all-linear"


def apply_lora(model: PreTrainedModel, spec: LoraSpec, seed: int = 0) -> PeftModel:
    """Wrap `model` with fresh LoRA adapters (seeded init); only adapter weights stay trainable."""
    import torch
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=spec.r,
        lora_alpha=spec.alpha,
        lora_dropout=spec.dropout,
        target_modules=spec.target_modules,
        task_type="CAUSAL_LM",
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return get_peft_model(model, config)


def is_lora(model: torch.nn.Module) -> bool:
    from peft import PeftModel

    return isinstance(model, PeftModel)


def merge_lora(model: PeftModel) -> PreTrainedModel:
    """Fold the adapters into the base weights (in place) and return the plain transformers model,
    which `AutoModelForCausalLM.from_pretrained` then loads without PEFT."""
    return model.merge_and_unload()
