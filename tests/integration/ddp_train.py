"""Helper for test_ddp.py: train a tiny model; run directly or under `accelerate launch`.

usage: ddp_train.py TOKENIZER_DIR OUT_DIR PER_DEVICE_BATCH GRAD_ACCUM
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

from transformers import AutoTokenizer

from reasondistill.models.tiny import TinyModelSpec, build_tiny_model
from reasondistill.train.config import TrainConfig
from reasondistill.train.trainer import train_model


def rows(n: int = 64) -> list[dict]:
    out = []
    for i in range(n):
        r = random.Random(i)
        xs = [r.randint(1, 99) for _ in range(r.randint(2, 8))]  # lengths vary ~4x
        out.append({"prompt": f"Question: {'+'.join(map(str, xs))}?\n", "completion": f"Answer: {sum(xs)}"})
    return out


def main() -> None:
    tok_dir, out_dir, per_device, accum = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    tok = AutoTokenizer.from_pretrained(tok_dir)
    model = build_tiny_model(TinyModelSpec(hidden_size=32, num_layers=2, num_heads=4), tok, seed=0)
    cfg = TrainConfig(
        per_device_batch_size=per_device, grad_accum=accum, max_steps=4, lr=3e-3, warmup_steps=0,
        save_every=2, keep_checkpoint=True, seed=0, progress_bar=False,
    )  # fmt: skip
    train_model(model, tok, rows(), cfg, out_dir)


if __name__ == "__main__":
    main()
