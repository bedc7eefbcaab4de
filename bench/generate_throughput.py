"""Teacher generation throughput: (a) the `hf` teacher batched vs one question at a time,
(b) the `openai` teacher against `reasondistill serve` at concurrency 1 vs 8.

Usage:  python bench/generate_throughput.py [--quick] [--questions N] [--max-new-tokens T]
                                           [--batch-size B] [--threads T] [--device cpu|cuda]

Both use the same model: a randomly initialised Llama the size of the quickstart teacher
(hidden 128, 4 layers, 4 heads, ~0.9M parameters) with a BPE tokenizer trained here, on
arithmetic questions ("23+45+12"), sampling at temperature 0.7 (the quickstart's setting).
Throughput = completion tokens (as the teacher records them in `usage`) / wall seconds of
`teacher.generate`, model loading excluded. Target for (a): batched >= 10x one-at-a-time.
For (b) the server runs in its own process (model loaded before timing starts); the client
is the real `openai` teacher (async httpx, retries on, request cache in a fresh directory so
nothing is served from cache). Concurrency 8 lets the server batch up to 8 requests into one
`generate` call, so (b) shows how much of (a)'s batching gain survives HTTP + JSON.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from reasondistill.models.tiny import TinyModelSpec, build_tiny_model, count_parameters  # noqa: E402
from reasondistill.models.tokenizer import train_tokenizer  # noqa: E402
from reasondistill.records import Example  # noqa: E402
from reasondistill.teachers.hf import HFConfig, HFTeacher  # noqa: E402
from reasondistill.teachers.openai.config import OpenAIConfig  # noqa: E402
from reasondistill.teachers.openai.serve import served_model  # noqa: E402
from reasondistill.teachers.openai.teacher import OpenAITeacher  # noqa: E402
from reasondistill.traces.store import TraceStore  # noqa: E402

SPEC = TinyModelSpec(arch="llama", hidden_size=128, num_layers=4, num_heads=4)


def questions(n: int, seed: int = 0) -> list[Example]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        terms = [rng.randint(10, 99) for _ in range(3)]
        q = "+".join(map(str, terms))
        out.append(Example(id=f"q{i}", task="arith", question=q, answer=str(sum(terms)), split="bench"))
    return out


def _verify(ex: Example, answer: str) -> bool:
    return answer == ex.answer


def run_hf(model, tok, exs, batch_size: int, max_new: int, work: Path) -> tuple[int, float]:
    cfg = HFConfig(kind="hf", model={"path": "bench"}, temperature=0.7, max_new_tokens=max_new,
                   batch_size=batch_size, seed=0)  # fmt: skip
    teacher = HFTeacher(cfg, model=model, tokenizer=tok)
    path = work / f"hf-{batch_size}-{time.monotonic_ns()}.jsonl"
    t0 = time.perf_counter()
    with TraceStore(path) as store:
        teacher.generate(exs, store, _verify)
    seconds = time.perf_counter() - t0
    return sum(t.usage["completion_tokens"] for t in TraceStore(path).read()), seconds


def run_openai(
    url: str, model_id: str, exs, concurrency: int, max_new: int, work: Path
) -> tuple[int, float, dict]:
    tag = f"c{concurrency}-{time.monotonic_ns()}"
    cfg = OpenAIConfig(kind="openai", base_url=url, model=model_id, api="completions", temperature=0.7,
                       max_tokens=max_new, concurrency=concurrency, cache=str(work / f"cache-{tag}.jsonl"))  # fmt: skip
    teacher = OpenAITeacher(cfg)
    t0 = time.perf_counter()
    with TraceStore(work / tag / "traces.jsonl") as store:
        teacher.generate(exs, store, _verify)
    seconds = time.perf_counter() - t0
    return teacher.summary["last_run"]["completion_tokens"], seconds, teacher.summary["last_run"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer questions (a smoke run, noisy figures)")
    ap.add_argument("--questions", type=int, default=128)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=64, help="hf teacher batch size for the batched run")
    ap.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    n = 32 if args.quick else args.questions
    exs = questions(n)
    tok = train_tokenizer(
        [f"Question: {e.question}\nAnswer: {e.answer}" for e in questions(500, seed=1)], 128
    )
    model = build_tiny_model(SPEC, tok, seed=0).to(args.device).eval()
    print(f"model: llama hidden {SPEC.hidden_size} x {SPEC.num_layers} layers, {count_parameters(model):,} "
          f"parameters, {args.device}, torch threads {torch.get_num_threads()}; {n} questions, "
          f"max_new_tokens {args.max_new_tokens}, temperature 0.7")  # fmt: skip

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        run_hf(model, tok, exs[:4], args.batch_size, 8, work)  # warm-up (allocator, kernels)
        one_tok, one_s = run_hf(model, tok, exs, 1, args.max_new_tokens, work)
        bat_tok, bat_s = run_hf(model, tok, exs, args.batch_size, args.max_new_tokens, work)
        print("\n(a) hf teacher                 tokens   seconds   tokens/s")
        print(f"    one question at a time  {one_tok:9d} {one_s:9.2f} {one_tok / one_s:10.1f}")
        print(
            f"    batched (batch {args.batch_size:<3d})      {bat_tok:9d} {bat_s:9.2f} {bat_tok / bat_s:10.1f}"
        )
        speedup = (bat_tok / bat_s) / (one_tok / one_s)
        print(f"    speedup: {speedup:.1f}x (target >= 10x: {'met' if speedup >= 10 else 'NOT met'})")

        model_dir = work / "model"
        tok.save_pretrained(model_dir)
        model.to("cpu").save_pretrained(model_dir)
        device = None if args.device == "cpu" else args.device
        with served_model(
            str(model_dir), work / "serve", max_batch_size=32, device=device, threads=args.threads
        ) as url:
            run_openai(url, str(model_dir), exs[:8], 4, 8, work)  # warm-up
            rows = {c: run_openai(url, str(model_dir), exs, c, args.max_new_tokens, work) for c in (1, 8)}
        print("\n(b) openai teacher -> serve    tokens   seconds   tokens/s   requests")
        for c, (toks, secs, run) in rows.items():
            print(
                f"    concurrency {c:<2d}          {toks:9d} {secs:9.2f} {toks / secs:10.1f} {run['requests_sent']:10d}"
            )
        scaling = (rows[8][0] / rows[8][1]) / (rows[1][0] / rows[1][1])
        print(f"    scaling 1 -> 8: {scaling:.1f}x")


if __name__ == "__main__":
    main()
