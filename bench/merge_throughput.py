"""Merge throughput: reasondistill's streamed mergekit merge vs the I/O floor, and its peak memory.

Usage:  python bench/merge_throughput.py [--methods ties dare_linear task_arithmetic] [--repeats R]
                                         [--threads T] [--random] [--layers N]

Inputs: a SmolLM2-135M-sized pair theta_0, theta_t = theta_0 + noise (fp32, 538 MB each). theta_0
is the pulled SmolLM2-135M-Instruct when `reasondistill models pull smollm2-135m-instruct` has
run (else, or with --random, a random Llama of the same config). Both live in a temp dir and
are read once before timing, so every measurement sees a warm page cache.
- floor: read every tensor of both inputs and write the output once, with the same reader and
  writer the merge uses (merge/checkpoint.py), no math. Target: merge <= 1.5 x floor.
- merge: `merge_models` (one model at weight 0.5 against theta_0; ties and dare density 0.8).
- peak memory: each measurement runs in a fresh process; peak RSS (VmHWM, reset after the
  imports) minus the RSS after imports, over one model's size. Target: <= 3 x.
On a shared machine other processes steal cycles: the script prints CPU time beside wall time.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SMOL = Path.home() / ".cache/reasondistill/models/smollm2-135m-instruct"
CONFIG = dict(  # SmolLM2-135M's shape
    vocab_size=49152,
    hidden_size=576,
    intermediate_size=1536,
    num_hidden_layers=30,
    num_attention_heads=9,
    num_key_value_heads=3,
    max_position_embeddings=2048,
    tie_word_embeddings=True,
)
KNOBS = {
    "ties": 0.8,
    "dare_linear": 0.8,
    "dare_ties": 0.8,
    "breadcrumbs": 0.8,
    "task_arithmetic": 1.0,
    "linear": 1.0,
}


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def _reset_peak() -> None:
    """Reset the kernel's peak-RSS mark (VmHWM), so import-time transients are not counted."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def _peak_mb() -> float:
    with open("/proc/self/status") as f:
        hwm = next(line for line in f if line.startswith("VmHWM:"))
    return int(hwm.split()[1]) / 1024


def make_inputs(work: Path, random_init: bool, layers: int | None) -> tuple[Path, Path]:
    """theta_0 and theta_t directories (safetensors, fp32)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    if SMOL.is_dir() and not random_init and layers is None:
        model = LlamaForCausalLM.from_pretrained(str(SMOL), dtype=torch.float32)
    else:
        torch.manual_seed(0)
        model = LlamaForCausalLM(
            LlamaConfig(**{**CONFIG, "num_hidden_layers": layers or CONFIG["num_hidden_layers"]})
        )
    model.save_pretrained(str(work / "theta0"))
    torch.manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1e-3 * torch.randn_like(p))
    model.save_pretrained(str(work / "thetat"))
    for d in ("theta0", "thetat"):  # the side files a merge copies
        (work / d / "tokenizer.json").write_text("{}")
    return work / "theta0", work / "thetat"


def child(what: str, work: Path, threads: int) -> dict:
    """One timed measurement in this (fresh) process."""
    import torch

    from reasondistill.merge.checkpoint import Checkpoint, StreamWriter
    from reasondistill.merge.engine import Input, merge_models
    from reasondistill.merge.methods import MERGE_METHODS

    torch.set_num_threads(threads)
    import mergekit.merge_methods  # noqa: F401  (imported before the RSS baseline, like torch)

    from reasondistill.traces.templates.base import read_template_record  # noqa: F401  (what a merge imports)

    t0, tt, out = work / "theta0", work / "thetat", work / f"out-{what}"
    base_rss = _rss_mb()
    _reset_peak()
    wall, cpu = time.perf_counter(), time.process_time()
    if what == "floor":
        a, b = Checkpoint(t0), Checkpoint(tt)
        out.mkdir(exist_ok=True)
        w = StreamWriter(out, [(n, i.dtype, i.shape) for n, i in a.tensors.items()], 5 * 2**30)
        for n in a.tensors:
            x, _ = a.read(n), b.read(n)
            w.write(n, x)
        w.close()
    else:
        method = MERGE_METHODS.get(what).model_validate({"kind": what})
        merge_models(Input("base", t0), [Input("models[0]", tt, 0.5, KNOBS[what])], method, out, seed=0)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"what": what, "wall_s": wall, "cpu_s": cpu, "peak_extra_mb": _peak_mb() - base_rss}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--methods", nargs="+", default=["ties", "dare_linear", "task_arithmetic"])
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--random", action="store_true", help="random weights even if SmolLM2 is pulled")
    p.add_argument("--layers", type=int, help="a random model with N layers (a quick check of the script)")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--work", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(child(args.child, Path(args.work), args.threads)))
        return
    with tempfile.TemporaryDirectory(prefix="merge_bench_") as tmp:
        work = Path(tmp)
        t0, tt = make_inputs(work, args.random, args.layers)
        size_mb = sum(f.stat().st_size for f in t0.glob("*.safetensors")) / 2**20
        for f in [*t0.glob("*.safetensors"), *tt.glob("*.safetensors")]:
            f.read_bytes()  # warm the page cache for every measurement alike
        results: dict[str, list[dict]] = {}
        for _ in range(args.repeats):  # interleaved, so drifting load hits all alike
            for what in ["floor", *args.methods]:
                cmd = [
                    sys.executable,
                    __file__,
                    "--child",
                    what,
                    "--work",
                    str(work),
                    "--threads",
                    str(args.threads),
                ]
                out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
                results.setdefault(what, []).append(json.loads(out.strip().splitlines()[-1]))
        best = {k: min(v, key=lambda r: r["wall_s"]) for k, v in results.items()}
        floor = best["floor"]["wall_s"]
        print(
            f"model: {size_mb:.0f} MB fp32 ({'SmolLM2-135M-Instruct' if SMOL.is_dir() and not (args.random or args.layers) else 'random, SmolLM2-135M shape'}), "
            f"threads {args.threads}, best of {args.repeats}"
        )
        print(
            "| run | wall s | CPU s | x floor (target <= 1.5) | peak extra MB | x model size (target <= 3) |"
        )
        print("|---|---|---|---|---|---|")
        for what, r in best.items():
            print(
                f"| {what} | {r['wall_s']:.2f} | {r['cpu_s']:.2f} | {r['wall_s'] / floor:.2f} | "
                f"{r['peak_extra_mb']:.0f} | {r['peak_extra_mb'] / size_mb:.2f} |"
            )


if __name__ == "__main__":
    main()
