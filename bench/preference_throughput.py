"""Preference training throughput: our DPO and ORPO objectives vs TRL's DPOTrainer and ORPOTrainer.

Usage:  python bench/preference_throughput.py [--quick] [--pairs N] [--repeats R] [--threads T]

All four train the same ~1.1M-parameter Llama (seed-0 init) for one epoch over the same preference
pairs (prompt: a 2..12-term sum; chosen: its step-by-step trace, rejected: a trace with a wrong
step and answer; 40..250 tokens a side), 8 pairs a batch, fp32, on CPU, interleaved over repeats.
Throughput is pairs per second of the training loop, wall and CPU (process CPU time, all threads:
robust to a shared machine), tokenization and model loading outside the timed region for all.
- ours: train_model with objective dpo (beta 0.1) / orpo (lambda 0.1): length-grouped batches, the
  pair kept in one micro-batch, no gradient checkpointing. DPO's reference log-probs are computed
  once before training (a no-grad pass, reported separately and as "incl. reference" throughput).
- TRL 1.16: DPOConfig / ORPOConfig defaults, except output_dir, use_cpu=True and bf16=False (fp32
  like ours; TRL defaults bf16=True), per_device_train_batch_size=8 (its default is 8 too),
  num_train_epochs=1 and report_to=[]. So: DPO runs its reference model in every step
  (precompute_ref_log_probs=False), both use gradient checkpointing (their default True) and
  random batches padded to the batch max.
Target (docs/benchmarks.md): ours >= 1.5 x TRL for both, in pairs per CPU second.
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

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import cpu_clock  # noqa: E402  (bench/cpu_clock.py)

from reasondistill.config import StageContext  # noqa: E402
from reasondistill.models.tiny import TinyModelSpec, build_tiny_model, count_parameters  # noqa: E402
from reasondistill.models.tokenizer import train_tokenizer  # noqa: E402
from reasondistill.stages.train import TrainStageConfig  # noqa: E402
from reasondistill.train.batching import encode_pairs  # noqa: E402
from reasondistill.train.config import TrainConfig  # noqa: E402
from reasondistill.train.mix import SourceRows, TrainRows  # noqa: E402
from reasondistill.train.objectives import OBJECTIVES  # noqa: E402
from reasondistill.train.trainer import train_model  # noqa: E402

SPEC = TinyModelSpec(arch="llama", hidden_size=128, num_layers=4, num_heads=4)
BATCH, MAX_LENGTH = 8, 512


def pair(i: int) -> dict:
    """A sum with 2..12 terms: the step-by-step trace (chosen) and one with a slip (rejected)."""
    r = random.Random(i)
    xs = [r.randint(1, 999) for _ in range(r.randint(2, 12))]
    steps, total = [], xs[0]
    for x in xs[1:]:
        steps.append(f"{total}+{x}={total + x}")
        total += x
    slip = r.randrange(len(steps))
    wrong = [s if k != slip else s[:-1] + str((int(s[-1]) + 1) % 10) for k, s in enumerate(steps)]
    prompt = f"Question: What is {' + '.join(map(str, xs))}?\n"
    return {"prompt": prompt, "chosen": "Reasoning: " + "\n".join(steps) + f"\nAnswer: {total}",
            "rejected": "Reasoning: " + "\n".join(wrong) + f"\nAnswer: {total + r.randint(1, 9)}"}  # fmt: skip


def run_ours(kind: str, tok, rows: list[dict], work: Path) -> dict:
    cfg = TrainConfig(per_device_batch_size=BATCH, epochs=1, save_every=0, lr=1e-4, max_length=MAX_LENGTH,
                      progress_bar=False, report_to=[])  # fmt: skip
    model = build_tiny_model(SPEC, tok, seed=0)
    out = Path(tempfile.mkdtemp(dir=work))
    stage = TrainStageConfig.model_validate({"kind": "train", "rows": "pairs", "model": {"path": "org/unused"},
                                             "train": {"max_length": MAX_LENGTH}})  # fmt: skip
    ctx = StageContext("bench", stage, out, {}, {})
    data = TrainRows(rows, [(0, i) for i in range(len(rows))], (SourceRows("pairs", 1.0, len(rows), len(rows)),), "preference")  # fmt: skip
    t0, c0 = time.perf_counter(), time.process_time()
    objective = OBJECTIVES.get(kind).build(OBJECTIVES.config(kind)(kind=kind), ctx, model, tok, data)
    ref_t, ref_c = time.perf_counter() - t0, time.process_time() - c0
    cpu_clock.install()
    state = train_model(model, tok, rows, cfg, out, objective)
    p = cpu_clock.CpuClock.last
    return {"wall_s": state["wall_s"], "cpu_s": p.cpu_s, "ref_wall_s": ref_t, "ref_cpu_s": ref_c}


def run_trl(kind: str, tok, rows: list[dict], work: Path) -> dict:
    from datasets import Dataset
    from transformers import TrainerCallback

    if kind == "dpo":
        from trl import DPOConfig as Config
        from trl import DPOTrainer as Trainer
    else:
        from trl.experimental.orpo import ORPOConfig as Config
        from trl.experimental.orpo import ORPOTrainer as Trainer

    class Clock(TrainerCallback):
        def on_train_begin(self, *a, **k):
            self.t0, self.c0 = time.perf_counter(), time.process_time()

        def on_train_end(self, *a, **k):
            self.t, self.c = time.perf_counter() - self.t0, time.process_time() - self.c0

    args = Config(output_dir=tempfile.mkdtemp(dir=work), use_cpu=True, bf16=False, per_device_train_batch_size=BATCH,
                  num_train_epochs=1, report_to=[], disable_tqdm=True)  # fmt: skip
    clock = Clock()
    model = build_tiny_model(SPEC, tok, seed=0)
    if kind == "dpo":  # TRL's DPO loads its reference model from the policy's path: give it one
        path = Path(tempfile.mkdtemp(dir=work))
        model.save_pretrained(str(path))
        model = str(path)
    trainer = Trainer(model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tok,
                      callbacks=[clock])  # fmt: skip
    trainer.train()
    return {"wall_s": clock.t, "cpu_s": clock.c, "ref_wall_s": 0.0, "ref_cpu_s": 0.0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="64 pairs, 1 repeat")
    ap.add_argument("--pairs", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    n, repeats = (64, 1) if a.quick else (a.pairs - a.pairs % BATCH, a.repeats)
    rows = [pair(i) for i in range(n)]
    tok = train_tokenizer((r["prompt"] + r["chosen"] + r["rejected"] for r in rows), vocab_size=128)
    sides = [len(s.ids) for p in encode_pairs(tok, rows, MAX_LENGTH) for s in (p.chosen, p.rejected)]
    print(f"model {count_parameters(build_tiny_model(SPEC, tok)):,} params; {n} pairs, {min(sides)}..{max(sides)} "
          f"tokens a side (mean {statistics.mean(sides):.0f}); batch {BATCH} pairs; torch threads "
          f"{torch.get_num_threads()}; load avg {os.getloadavg()[0]:.2f}")  # fmt: skip
    names = [("ours", "dpo"), ("trl", "dpo"), ("ours", "orpo"), ("trl", "orpo")]
    res: dict[tuple[str, str], list[dict]] = {k: [] for k in names}
    with tempfile.TemporaryDirectory() as work:
        run = lambda who, kind, rs: (run_ours if who == "ours" else run_trl)(kind, tok, rs, Path(work))  # noqa: E731
        for who, kind in names:  # warm-up, untimed: first-call costs (allocator, lazy imports)
            run(who, kind, rows[: 2 * BATCH])
        for r in range(repeats):
            order = names if r % 2 == 0 else names[::-1]
            for who, kind in order:
                res[(who, kind)].append(run(who, kind, rows))
                m = res[(who, kind)][-1]
                print(f"  repeat {r + 1}/{repeats} {who:4s} {kind}: {n / m['wall_s']:7.1f} pairs/s wall, "
                      f"{n / m['cpu_s']:7.1f} pairs per CPU-s")  # fmt: skip
    report(res, n)


def report(res: dict, n: int) -> None:
    med = {k: {f: statistics.median(m[f] for m in v) for f in v[0]} for k, v in res.items()}
    print("\n| objective | system | pairs/s (wall) | pairs per CPU-s | incl. reference pass (CPU) |")
    print("|---|---|---|---|---|")
    for kind in ("dpo", "orpo"):
        for who in ("ours", "trl"):
            m = med[(who, kind)]
            incl = n / (m["cpu_s"] + m["ref_cpu_s"])
            print(f"| {kind} | {who} | {n / m['wall_s']:.1f} | {n / m['cpu_s']:.1f} | {incl:.1f} |")
    for kind in ("dpo", "orpo"):
        o, t = med[("ours", kind)], med[("trl", kind)]
        ratio, incl = t["cpu_s"] / o["cpu_s"], t["cpu_s"] / (o["cpu_s"] + o["ref_cpu_s"])
        print(
            f"{kind}: ours / TRL = {ratio:.2f}x per CPU-s ({incl:.2f}x counting our reference pass), "
            f"{t['wall_s'] / o['wall_s']:.2f}x wall; target >= 1.5x: {'met' if incl >= 1.5 else 'NOT met'}"
        )


if __name__ == "__main__":
    main()
