"""TrainConfig: every knob of the training loop, with defaults measured on tiny CPU models."""

from __future__ import annotations

import importlib.util
from typing import Literal

from pydantic import Field, field_validator

from reasondistill.config import StrictModel

# The trackers accelerate supports (accelerate.tracking.LOGGER_TYPE_TO_CLASS) and the module each
# needs. Listed here, not read from accelerate, because planning a recipe must not import torch.
TRACKERS = {
    "tensorboard": "tensorboard",
    "wandb": "wandb",
    "mlflow": "mlflow",
    "comet_ml": "comet_ml",
    "aim": "aim",
    "clearml": "clearml",
    "dvclive": "dvclive",
    "swanlab": "swanlab",
    "trackio": "trackio",
}


class TrainConfig(StrictModel):
    """Global batch = per_device_batch_size x world size x grad_accum items per optimizer step
    (an item is a row, or a pair for preference objectives)."""

    per_device_batch_size: int = Field(32, gt=0)
    grad_accum: int = Field(1, gt=0, description="micro-batches accumulated per optimizer step")
    max_length: int = Field(512, gt=1, description="prompt+completion tokens kept (the start is kept)")
    max_steps: int | None = Field(None, gt=0, description="optimizer steps; None: run `epochs`")
    epochs: float = Field(1.0, gt=0, description="used when max_steps is None")
    # Default measured on the default TinyModelSpec from scratch (300 steps x 32 arithmetic
    # traces; final loss 2.58 / 1.97 / 1.76 / 1.87 at lr 3e-4 / 1e-3 / 3e-3 / 1e-2). Fine-tuning
    # a pretrained model wants ~1e-5..1e-4 (full) or ~1e-4..1e-3 (LoRA).
    lr: float = Field(3e-3, gt=0, description="peak learning rate")
    schedule: Literal["linear", "cosine", "constant"] = "cosine"
    warmup_steps: int = Field(10, ge=0)
    weight_decay: float = Field(0.01, ge=0, description="AdamW decay on matrices; never on norms/biases")
    adam_betas: tuple[float, float] = (0.9, 0.999)
    max_grad_norm: float | None = Field(1.0, gt=0, description="None: no clipping")
    seed: int | None = Field(
        None, description="data order and dropout; None: the stage's seed (0 outside stages)"
    )
    group_by_length: bool = Field(True, description="length-grouped batches (see train/batching.py)")
    mega_batch: int = Field(32, gt=0, description="global batches per length-sorting window")
    pad_to_multiple_of: int | None = Field(None, gt=0, description="e.g. 8 for tensor cores on GPU")
    mixed_precision: Literal["no", "fp16", "bf16"] | None = Field(
        None, description="None: whatever `accelerate launch`/its config says (default: fp32)"
    )
    gradient_checkpointing: bool = False
    pass_attention_mask: bool = Field(
        False, description="right padding + causal attention make it redundant; True for exotic models"
    )
    save_every: int = Field(200, ge=0, description="checkpoint every N steps (0: never); resume uses it")
    keep_checkpoint: bool = Field(False, description="keep out_dir/checkpoint after the final model is saved")
    log_every: int = Field(10, gt=0, description="tracker/progress-bar loss every N steps")
    progress_bar: bool = True
    report_to: list[str] = Field(
        ["tensorboard"],
        description="experiment trackers (accelerate's): tensorboard (out_dir/logs), wandb, mlflow, comet_ml, "
        "aim, clearml, dvclive, swanlab, trackio; [] for none",
    )

    @field_validator("report_to")
    @classmethod
    def _trackers(cls, v: list[str]) -> list[str]:
        """Known and installed, checked when the recipe is planned: a missing package would
        otherwise surface only once a long run reaches its training stage (or never: accelerate
        skips unavailable trackers silently)."""
        for name in v:
            if name not in TRACKERS:
                raise ValueError(f"unknown tracker {name!r}; accelerate supports: {', '.join(TRACKERS)}")
            if importlib.util.find_spec(TRACKERS[name]) is None:
                raise ValueError(f"tracker {name!r} needs the {TRACKERS[name]!r} package: pip install {name}")
        if len(set(v)) != len(v):
            raise ValueError("a tracker is listed twice")
        return v
