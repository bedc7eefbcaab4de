"""Style analysis throughput: pivots, phases and lengths of a large corpus of reasoning-length traces.

Usage:  python bench/style_throughput.py [--mb 100] [--words 3000] [--quick]

A seeded synthetic corpus of R1-like traces (thousands of words each: framing, worked steps
with numbers, pivots of all four types at about one per 25 words, paragraphs) is profiled by
`StyleAnalyzer` (traces/style/profile.py: one regex pass for the pivots, the phase rules, word
and token-proxy counts) and summarised by group, as `reasondistill style analyze` does, on one
core. Target: at least 5 MB of trace text per second (a 100 MB corpus in <= 20 s). Wall and
process CPU seconds are both printed: on a shared machine CPU time is the figure to trust.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from reasondistill.traces.style.lexicon import DefaultLexicon  # noqa: E402
from reasondistill.traces.style.profile import StyleAnalyzer  # noqa: E402
from reasondistill.traces.style.summary import summarize  # noqa: E402

TARGET_MB_S = 5.0
PLAIN = [
    "So {a} times {b} is {c}, and I still need to add the remaining terms to that.",
    "The next part of the problem is about how the two quantities relate to each other.",
    "If the first group has {a} items and the second has {b}, the total is {c}.",
    "I can write this as an equation: {a} + {b} = {c}.",
    "That leaves {b} for the other side of the equation, which seems plausible so far.",
    "The question asks for the number of ways, not the probability, so I should count outcomes.",
    "Each of the {a} rows contributes {b} cells, which gives {c} cells in total.",
]
PIVOTS = [
    "Wait, that doesn't look right.", "Hmm, let me reconsider the second term.", "Actually, I misread the question.",
    "Let me check this by substituting back.", "Let me double-check the arithmetic: {a} + {b} = {c}.",
    "To verify, {c} minus {b} should give {a}.", "What if I approach it from the other direction?",
    "Alternatively, I could count the complement.", "Maybe there is a simpler way to see this.",
    "Now I see how the pieces fit together.", "So overall, the count is {c}.", "Putting it all together gives {c}.",
]  # fmt: skip


def corpus(mb: float, words: int, seed: int = 0) -> list[str]:
    """Traces of about `words` words each until the corpus holds `mb` MB of text."""
    rng = random.Random(seed)
    out, size = [], 0
    while size < mb * 1e6:
        parts, n = ["Okay, so the problem asks me to find how many arrangements satisfy the condition."], 14
        while n < words:
            a, b = rng.randint(2, 999), rng.randint(2, 999)
            s = (rng.choice(PIVOTS) if rng.random() < 0.3 else rng.choice(PLAIN)).format(a=a, b=b, c=a + b)
            parts.append(s + ("\n\n" if rng.random() < 0.15 else " "))
            n += len(s.split())
        parts.append("Therefore the final answer is 42.")
        text = "".join(parts)
        out.append(text)
        size += len(text.encode())
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mb", type=float, default=100.0, help="corpus size in MB of UTF-8 text (default 100)")
    p.add_argument("--words", type=int, default=3000, help="words per trace (default 3000)")
    p.add_argument("--quick", action="store_true", help="10 MB: a rough figure in seconds")
    args = p.parse_args()
    mb_target = 10.0 if args.quick else args.mb
    t0 = time.perf_counter()
    texts = corpus(mb_target, args.words)
    mb = sum(len(t.encode()) for t in texts) / 1e6
    print(
        f"corpus: {len(texts)} traces, {mb:.1f} MB, {args.words} words each (built in {time.perf_counter() - t0:.1f} s)"
    )
    analyzer = StyleAnalyzer(DefaultLexicon().build())
    w0, c0 = time.perf_counter(), time.process_time()
    profiles = [analyzer.profile(t) for t in texts]
    groups = summarize(profiles, ["correct" if i % 5 else "wrong" for i in range(len(profiles))])
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    rate = mb / cpu
    print(f"analysed in {wall:.1f} s wall, {cpu:.1f} s CPU: {mb / wall:.1f} MB/s wall, {rate:.1f} MB/s CPU "
          f"({len(texts) / cpu:.0f} traces/s); target >= {TARGET_MB_S} MB/s "
          f"({'met' if rate >= TARGET_MB_S else 'MISSED'}; 100 MB in {100 / rate:.1f} s)")  # fmt: skip
    a = groups["all"]
    print(f"check: {a['pivots_per_1k_words']:.1f} pivots per 1k words, {a['share_3of4_pivot_types']:.0%} of traces "
          f"with >= 3 of 4 pivot types, mean phase shares F/E/V/S "
          + "/".join(f"{a[f'share_{ph}']:.2f}" for ph in ("framing", "exploration", "verification", "synthesis")))  # fmt: skip
    return 0 if rate >= TARGET_MB_S else 1


if __name__ == "__main__":
    sys.exit(main())
