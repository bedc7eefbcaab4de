"""SFT throughput: reasondistill's train_model vs a bare PyTorch loop vs TRL's SFTTrainer.

Usage:  python bench/train_overhead.py [--quick] [--rows N] [--repeats R] [--threads T]

All three train the same ~1.1M-parameter Llama (same seed-0 init) for one epoch over the
same variable-length arithmetic traces (2..12 terms of 1..3-digit numbers, so rows run
from 35 to 241 tokens), batch 32, fp32, on CPU, interleaved over repeats. Throughput
is real (non-padding) tokens / training-loop seconds; tokenization and model saving are
outside the timed region for all three.
- bare: our exact batches pre-collated, then forward(labels) / backward / clip / AdamW step.
  Targets: ours >= 0.97 x bare (framework overhead), ours >= 1.5 x TRL.
- TRL: SFTConfig defaults, except: output_dir; use_cpu=True and bf16=False (fp32 like the
  others; TRL defaults bf16=True); per_device_train_batch_size=32 (TRL default 8) so the
  batch size matches; num_train_epochs=1 (default 3) so every system sees each row once.
  Everything else is TRL's default: no packing, padding to the batch max, random batch
  order, gradient_checkpointing=True, completion-only loss for prompt/completion rows,
  lr 2e-5 (throughput does not depend on it; ours and bare use 1e-3).
On a shared machine, other processes make OpenMP threads wait: pass --threads 1 then.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import cpu_clock  # noqa: E402  (bench/cpu_clock.py: the script's folder is on sys.path)

from reasondistill.models.tiny import TinyModelSpec, build_tiny_model, count_parameters  # noqa: E402
from reasondistill.models.tokenizer import train_tokenizer  # noqa: E402
from reasondistill.train.batching import BatchPlan, collate, encode_rows  # noqa: E402
from reasondistill.train.config import TrainConfig  # noqa: E402
from reasondistill.train.trainer import train_model  # noqa: E402

SPEC = TinyModelSpec(arch="llama", hidden_size=128, num_layers=4, num_heads=4)
BATCH = 32


def trace(i: int) -> dict:
    """A step-by-step addition trace with 2..12 terms: lengths vary ~6x."""
    r = random.Random(i)
    xs = [r.randint(1, 999) for _ in range(r.randint(2, 12))]
    total, steps = xs[0], []
    for x in xs[1:]:
        steps.append(f"{total}+{x}={total + x}")
        total += x
    prompt = f"Question: What is {' + '.join(map(str, xs))}?\n"
    return {"prompt": prompt, "completion": "Reasoning: " + "\n".join(steps) + f"\nAnswer: {total}"}


def run_ours(tok, rows, work: Path) -> tuple[float, float]:
    cfg = TrainConfig(per_device_batch_size=BATCH, epochs=1, save_every=0, lr=1e-3)
    out = Path(tempfile.mkdtemp(dir=work))
    cpu_clock.install()
    state = train_model(build_tiny_model(SPEC, tok, seed=0), tok, rows, cfg, out)
    p = cpu_clock.CpuClock.last
    return state["tokens_per_s"], p.tokens / p.cpu_s


def run_bare(tok, rows) -> tuple[float, float]:
    cfg = TrainConfig()
    enc = encode_rows(tok, rows, cfg.max_length)
    plan = BatchPlan([len(r.ids) for r in enc], BATCH, 0, cfg.group_by_length, cfg.mega_batch)
    batches = [collate([enc[i] for i in plan.rows(s)], tok.pad_token_id) for s in range(plan.steps_per_epoch)]
    model = build_tiny_model(SPEC, tok, seed=0)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model.train()
    t0, c0 = time.perf_counter(), time.process_time()
    for b in batches:
        loss = model(**b).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
    t, c = time.perf_counter() - t0, time.process_time() - c0
    tokens = sum(int(b["attention_mask"].sum()) for b in batches)
    return tokens / t, tokens / c


def run_trl(tok, rows, work: Path) -> tuple[float, float]:
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import SFTConfig, SFTTrainer

    class Clock(TrainerCallback):
        def on_train_begin(self, *a, **k):
            self.t0, self.c0 = time.perf_counter(), time.process_time()

        def on_train_end(self, *a, **k):
            self.t, self.c = time.perf_counter() - self.t0, time.process_time() - self.c0

    args = SFTConfig(
        output_dir=tempfile.mkdtemp(dir=work),
        use_cpu=True,
        bf16=False,
        per_device_train_batch_size=BATCH,
        num_train_epochs=1,
    )
    clock = Clock()
    trainer = SFTTrainer(
        model=build_tiny_model(SPEC, tok, seed=0),
        args=args,
        train_dataset=Dataset.from_list(rows),
        processing_class=tok,
        callbacks=[clock],
    )
    tokens = sum(len(ids) for ids in trainer.train_dataset["input_ids"])
    trainer.train()
    return tokens / clock.t, tokens / clock.c


def padding_share(lengths: list[int], grouped: bool) -> float:
    """Share of computed positions that are padding, for our plan or random batches (TRL)."""
    plan = BatchPlan(lengths, BATCH, 0, grouped, TrainConfig().mega_batch)
    arr = np.asarray(lengths)
    padded = sum(arr[plan.rows(s)].max() * BATCH for s in range(plan.steps_per_epoch))
    return 1 - arr.sum() / padded


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="256 rows, 1 repeat (~1 min)")
    ap.add_argument("--rows", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    a = ap.parse_args()
    rows_n, repeats = (256, 1) if a.quick else (a.rows - a.rows % BATCH, a.repeats)
    if a.threads:
        torch.set_num_threads(a.threads)
    rows = [trace(i) for i in range(rows_n)]
    tok = train_tokenizer((r["prompt"] + r["completion"] for r in rows), vocab_size=128)
    lengths = [len(r.ids) for r in encode_rows(tok, rows, 512)]
    print(
        f"model {count_parameters(build_tiny_model(SPEC, tok)):,} params; {rows_n} rows, "
        f"{min(lengths)}..{max(lengths)} tokens (mean {statistics.mean(lengths):.0f}); batch {BATCH}; "
        f"torch threads {torch.get_num_threads()}; load avg {os.getloadavg()[0]:.2f}"
    )
    print(
        f"padding share of computed positions: ours (length-grouped) {padding_share(lengths, True):.1%}, "
        f"random batches like TRL's {padding_share(lengths, False):.1%}"
    )
    res: dict[str, list[tuple[float, float]]] = {"ours": [], "bare": [], "trl": []}
    with tempfile.TemporaryDirectory() as work:
        runs = {
            "ours": lambda rs: run_ours(tok, rs, Path(work)),
            "bare": lambda rs: run_bare(tok, rs),
            "trl": lambda rs: run_trl(tok, rs, Path(work)),
        }
        for fn in runs.values():  # warm-up, untimed: first-call costs (allocator, lazy imports)
            fn(rows[: 2 * BATCH])
        names = list(runs)
        for r in range(repeats):
            # interleaved, order rotated per repeat, so drifting machine load hits all three alike
            for name in names[r % 3 :] + names[: r % 3]:
                res[name].append(runs[name](rows))
                wall, cpu = res[name][-1]
                print(
                    f"repeat {r + 1}/{repeats}  {name:5s} {wall:>9,.0f} tokens/s wall {cpu:>9,.0f} per CPU-s",
                    flush=True,
                )
    report(res)


def report(res: dict[str, list[tuple[float, float]]]) -> None:
    print("\n| system | tokens/s wall (median) | tokens per CPU-second (median) | wall, per run |")
    print("|---|---|---|---|")
    med = {k: [statistics.median(x[i] for x in v) for i in (0, 1)] for k, v in res.items()}
    for k, v in res.items():
        print(f"| {k} | {med[k][0]:,.0f} | {med[k][1]:,.0f} | {', '.join(f'{x[0]:,.0f}' for x in v)} |")
    print("\n(per CPU-second: discounts time our threads were descheduled by other processes)")
    for i, clock in enumerate(("wall", "CPU")):
        r_bare, r_trl = med["ours"][i] / med["bare"][i], med["ours"][i] / med["trl"][i]
        print(
            f"{clock:4s}: ours / bare = {r_bare:.3f} (target >= 0.97: {'PASS' if r_bare >= 0.97 else 'FAIL'});"
            f"  ours / TRL = {r_trl:.2f} (target >= 1.5: {'PASS' if r_trl >= 1.5 else 'FAIL'})"
        )


if __name__ == "__main__":
    main()
