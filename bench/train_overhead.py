"""SFT throughput: reasondistill's train_model vs a bare PyTorch loop vs TRL's SFTTrainer.

Usage:  python bench/train_overhead.py [--setting tiny|smollm2] [--quick] [--rows N] [--repeats R] [--threads T]

`--setting tiny` (default): all three train the same ~1.1M-parameter Llama (same seed-0 init)
for one epoch over the same variable-length arithmetic traces (2..12 terms of 1..3-digit
numbers, so rows run from 35 to 241 tokens), batch 32, fp32, on CPU, interleaved over
repeats, in one process.
`--setting smollm2`: the pulled SmolLM2-135M-Instruct (`reasondistill models pull`; pulled on
first use), fine-tuned in full, batch 8, fp32, on variable-length *chat* rows (2..8-term sums of
1..2-digit numbers as a user turn, the step-by-step answer as the assistant turn, rendered by
SmolLM2's chat template). Each run is a fresh spawned process, so that its peak resident memory
(ru_maxrss) is its own; the table gives it and its growth over the loaded model.
Throughput is real (non-padding) tokens / training-loop seconds; model loading, tokenization
and model saving are outside the timed region for all three.
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
import multiprocessing
import os
import random
import resource
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


def _sum(i: int, terms: tuple[int, int], top: int) -> tuple[str, str]:
    """(expression, step-by-step answer) of a sum of terms[0]..terms[1] numbers in 1..top."""
    r = random.Random(i)
    xs = [r.randint(1, top) for _ in range(r.randint(*terms))]
    total, steps = xs[0], []
    for x in xs[1:]:
        steps.append(f"{total}+{x}={total + x}")
        total += x
    return " + ".join(map(str, xs)), "Reasoning: " + "\n".join(steps) + f"\nAnswer: {total}"


def trace(i: int) -> dict:
    """A step-by-step addition trace with 2..12 terms: lengths vary ~6x."""
    expr, completion = _sum(i, (2, 12), 999)
    return {"prompt": f"Question: What is {expr}?\n", "completion": completion}


def chat_row(i: int) -> dict:
    """The same kind of trace as TRL conversational prompt/completion messages, 2..8 terms."""
    expr, completion = _sum(i, (2, 8), 99)
    return {"prompt": [{"role": "user", "content": f"What is {expr}?"}],
            "completion": [{"role": "assistant", "content": completion}]}  # fmt: skip


def run_ours(model, tok, rows, work: Path, batch: int = BATCH) -> tuple[float, float]:
    cfg = TrainConfig(per_device_batch_size=batch, epochs=1, save_every=0, lr=1e-3, progress_bar=False)
    out = Path(tempfile.mkdtemp(dir=work))
    cpu_clock.install()
    state = train_model(model, tok, rows, cfg, out)
    p = cpu_clock.CpuClock.last
    return state["tokens_per_s"], p.tokens / p.cpu_s


def run_bare(model, tok, rows, batch: int = BATCH) -> tuple[float, float]:
    cfg = TrainConfig()
    enc = encode_rows(tok, rows, cfg.max_length)
    plan = BatchPlan([len(r.ids) for r in enc], batch, 0, cfg.group_by_length, cfg.mega_batch)
    batches = [collate([enc[i] for i in plan.rows(s)], tok.pad_token_id) for s in range(plan.steps_per_epoch)]
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


def run_trl(model, tok, rows, work: Path, batch: int = BATCH) -> tuple[float, float]:
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
        per_device_train_batch_size=batch,
        num_train_epochs=1,
    )
    clock = Clock()
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(rows),
        processing_class=tok,
        callbacks=[clock],
    )
    tokens = sum(len(ids) for ids in trainer.train_dataset["input_ids"])
    trainer.train()
    return tokens / clock.t, tokens / clock.c


def padding_share(lengths: list[int], grouped: bool, batch: int = BATCH) -> float:
    """Share of computed positions that are padding, for our plan or random batches (TRL)."""
    plan = BatchPlan(lengths, batch, 0, grouped, TrainConfig().mega_batch)
    arr = np.asarray(lengths)
    padded = sum(arr[plan.rows(s)].max() * batch for s in range(plan.steps_per_epoch))
    return 1 - arr.sum() / padded


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--setting", choices=["tiny", "smollm2"], default="tiny")
    ap.add_argument(
        "--quick", action="store_true", help="tiny: 256 rows, 1 repeat (~1 min); smollm2: 32 rows"
    )
    ap.add_argument("--rows", type=int, default=None, help="default: 512 (tiny), 128 (smollm2)")
    ap.add_argument("--repeats", type=int, default=None, help="default: 5 (tiny), 2 (smollm2)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    (main_smollm2 if a.setting == "smollm2" else main_tiny)(a)


def main_tiny(a: argparse.Namespace) -> None:
    rows_n, repeats = (256, 1) if a.quick else ((a.rows or 512) - (a.rows or 512) % BATCH, a.repeats or 5)
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
    res: dict[str, list[tuple[float, ...]]] = {"ours": [], "bare": [], "trl": []}
    with tempfile.TemporaryDirectory() as work:
        runs = {
            "ours": lambda rs: run_ours(build_tiny_model(SPEC, tok, seed=0), tok, rs, Path(work)),
            "bare": lambda rs: run_bare(build_tiny_model(SPEC, tok, seed=0), tok, rs),
            "trl": lambda rs: run_trl(build_tiny_model(SPEC, tok, seed=0), tok, rs, Path(work)),
        }
        for fn in runs.values():  # warm-up, untimed: first-call costs (allocator, lazy imports)
            fn(rows[: 2 * BATCH])
        for r, name in _interleaved(repeats):
            res[name].append(runs[name](rows))
            _print_run(r, repeats, name, res[name][-1])
    report(res)


# -- SmolLM2-135M-Instruct: one spawned process per run, for its own peak memory -----------------

SMOLLM2, SMOL_BATCH = "smollm2-135m-instruct", 8


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        return next(int(x.split()[1]) for x in f if x.startswith("VmRSS:")) / 1024


def _smollm2_run(name: str, rows_n: int, threads: int | None, q) -> None:
    """Child process: load the pulled model, warm up, time one run; puts (tokens/s wall, tokens per
    CPU-s, peak RSS MB, RSS MB with the model loaded)."""
    from reasondistill.models.load import load_model
    from reasondistill.models.pull import resolve_pretrained

    if threads:
        torch.set_num_threads(threads)
    model, tok = load_model(resolve_pretrained(SMOLLM2), dtype=torch.float32)
    rows = [chat_row(i) for i in range(rows_n)]
    loaded = _rss_mb()
    # Warm-up, untimed (first-call kernel and allocator costs), on 2 rows; grads freed after.
    warm = encode_rows(tok, rows[:2], 512)
    model(**collate(warm, tok.pad_token_id)).loss.backward()
    model.zero_grad(set_to_none=True)
    with tempfile.TemporaryDirectory() as work:
        if name == "ours":
            out = run_ours(model, tok, rows, Path(work), SMOL_BATCH)
        elif name == "bare":
            out = run_bare(model, tok, rows, SMOL_BATCH)
        else:
            out = run_trl(model, tok, rows, Path(work), SMOL_BATCH)
    q.put((*out, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, loaded))


def main_smollm2(a: argparse.Namespace) -> None:
    from reasondistill.models.load import load_model
    from reasondistill.models.pull import resolve_pretrained

    rows_n = 32 if a.quick else (a.rows or 128) - (a.rows or 128) % SMOL_BATCH
    repeats = 1 if a.quick else (a.repeats or 2)
    model, tok = load_model(resolve_pretrained(SMOLLM2))
    lengths = [len(r.ids) for r in encode_rows(tok, [chat_row(i) for i in range(rows_n)], 512)]
    print(
        f"{SMOLLM2}: {count_parameters(model):,} params, fp32, full fine-tuning; {rows_n} chat rows, "
        f"{min(lengths)}..{max(lengths)} tokens (mean {statistics.mean(lengths):.0f}); batch {SMOL_BATCH} "
        f"({rows_n // SMOL_BATCH} steps); torch threads {a.threads or torch.get_num_threads()}; "
        f"load avg {os.getloadavg()[0]:.2f}"
    )
    print(
        "padding share of computed positions: ours (length-grouped) "
        f"{padding_share(lengths, True, SMOL_BATCH):.1%}, random batches like TRL's "
        f"{padding_share(lengths, False, SMOL_BATCH):.1%}"
    )
    del model
    ctx = multiprocessing.get_context("spawn")
    res: dict[str, list[tuple[float, ...]]] = {"ours": [], "bare": [], "trl": []}
    for r, name in _interleaved(repeats):
        q = ctx.Queue()
        proc = ctx.Process(target=_smollm2_run, args=(name, rows_n, a.threads, q))
        proc.start()
        res[name].append(q.get())
        proc.join()
        _print_run(r, repeats, name, res[name][-1])
    report(res)


def _interleaved(repeats: int):
    """(repeat, runner) in run order: the order rotates per repeat, so drifting machine load hits
    all three alike."""
    names = ["ours", "bare", "trl"]
    for r in range(repeats):
        for name in names[r % 3 :] + names[: r % 3]:
            yield r, name


def _print_run(r: int, repeats: int, name: str, x: tuple[float, ...]) -> None:
    mem = f"  peak RSS {x[2]:,.0f} MB (+{x[2] - x[3]:,.0f} over the loaded model)" if len(x) > 2 else ""
    print(
        f"repeat {r + 1}/{repeats}  {name:5s} {x[0]:>9,.0f} tokens/s wall {x[1]:>9,.0f} per CPU-s{mem}",
        flush=True,
    )


def report(res: dict[str, list[tuple[float, ...]]]) -> None:
    mem = len(next(iter(res.values()))[0]) > 2
    head = " | peak RSS MB (max) | over the loaded model MB" if mem else ""
    print(f"\n| system | tokens/s wall (median) | tokens per CPU-second (median) | wall, per run{head} |")
    print("|---|---|---|---|" + ("---|---|" if mem else ""))
    med = {k: [statistics.median(x[i] for x in v) for i in (0, 1)] for k, v in res.items()}
    for k, v in res.items():
        extra = ""
        if mem:
            peak = max(x[2] for x in v)
            extra = f" | {peak:,.0f} | {max(x[2] - x[3] for x in v):,.0f}"
        print(
            f"| {k} | {med[k][0]:,.0f} | {med[k][1]:,.0f} | {', '.join(f'{x[0]:,.0f}' for x in v)}{extra} |"
        )
    print("\n(per CPU-second: discounts time our threads were descheduled by other processes)")
    for i, clock in enumerate(("wall", "CPU")):
        r_bare, r_trl = med["ours"][i] / med["bare"][i], med["ours"][i] / med["trl"][i]
        print(
            f"{clock:4s}: ours / bare = {r_bare:.3f} (target >= 0.97: {'PASS' if r_bare >= 0.97 else 'FAIL'});"
            f"  ours / TRL = {r_trl:.2f} (target >= 1.5: {'PASS' if r_trl >= 1.5 else 'FAIL'})"
        )


if __name__ == "__main__":
    main()
