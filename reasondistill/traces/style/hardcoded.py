"""Synthetic style traces (ST-HC): a step-by-step rationale rewritten to hard-code the four
pivot types and the four phases, with a target's pivot counts and phase proportions.

Lippmann & Yang (arXiv 2504.01738) had GPT-4o rewrite rationales from a structured prompt that
names the 4 pivot types and the 4 phases (their ST-HC set), and then changed the final answer
of those traces to a wrong one (ST-HC-W). This writer does the rewrite procedurally: framing
restates the problem; exploration works the rationale's steps with `exploration` and
`realization` pivot sentences between them; verification re-states steps after verification
pivots; synthesis gives the integration pivots and a final statement of the answer. Each pivot
sentence holds exactly one marker of its type and the filler sentences none (a unit test checks
every phrase against the default lexicon), so the pivot counts are the target's exactly; phase
shares are met by adding filler sentences to a phase until it holds its share of the target
length. The wrong-answer variant differs from the trace only in its final statement
(`HardcodedTrace.text(wrong)`), so the body stays correct up to it, as in the paper.

Departures: phrases are ours, fixed banks rather than a model's free writing, so ST-HC is more
uniform in wording than GPT-4o's; the phase order is always F E V S (the structured prompt's).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from reasondistill.traces.style.phases import PHASES
from reasondistill.traces.style.steps import split_steps

RESTATE = [
    "The problem asks for the value of {q}.",
    "We need to evaluate the sum {q}.",
    "The task is to compute {q}.",
    "Here the goal is to work out {q}.",
]
FILLERS = {
    "framing": ["Combine the numbers in order.", "Each result feeds the next.", "Plan first, then compute."],
    "exploration": ["Keep the running total.", "Carry the value forward.", "One term per step."],
    "verification": ["The numbers agree.", "That matches.", "No error here."],
    "synthesis": ["Nothing else remains.", "The work is complete.", "Every term was used."],
}
PIVOT_SENTENCES = {
    "exploration": [
        "What if I go left to right?",
        "Alternatively, group the terms.",
        "Perhaps a running total is clearest.",
        "Let me try a running total.",
        "Suppose I add them in order.",
    ],
    "realization": [
        "Wait, carry the total forward.",
        "Hmm, slips happen here.",
        "Actually, order does not matter.",
        "Oh, reuse the previous total.",
        "Hold on, note the value.",
    ],
    "verification": [
        "Let me check: {step}.",
        "Let me verify: {step}.",
        "Double-checking: {step}.",
        "To confirm, {step}.",
    ],
    "integration": [
        "Now I see how it fits.",
        "Putting it together, all terms are used.",
        "So overall, it is complete.",
        "This means the total is settled.",
        "Thus every step is covered.",
    ],
}
FIRST, CONNECT = ["First, ", ""], ["Next, ", "Then ", "After that, ", ""]
FINAL = ["The final answer is {a}.", "So the answer is {a}.", "The answer is {a}."]
# A final statement that also carries the last integration pivot, as emergent traces often end.
FINAL_INTEGRATED = [
    "So overall, the answer is {a}.",
    "Thus the answer is {a}.",
    "Now I see it: the answer is {a}.",
]


@dataclass(frozen=True)
class Target:
    """The style one synthetic trace copies: pivots per type, phase shares, length in words."""

    pivots: dict[str, int]
    shares: dict[str, float]
    words: int


@dataclass(frozen=True)
class HardcodedTrace:
    """A synthetic trace: its body and its final statement, which states the answer."""

    body: str
    final: str  # a FINAL phrase with "{a}" for the answer

    def text(self, answer: str) -> str:
        """The whole trace; ST-HC-W is `text(wrong)`: the body unchanged."""
        return f"{self.body}\n{self.final.format(a=answer)}" if self.body else self.final.format(a=answer)


def write_hardcoded(question: str, rationale: str, target: Target, rng: random.Random) -> HardcodedTrace:
    """The ST-HC trace of one rationale with `target`'s pivot counts and phase shares."""
    steps = split_steps(rationale)
    if not steps:
        raise ValueError("an empty rationale has no steps to rewrite")
    phases: dict[str, list[str]] = {p: [] for p in PHASES}
    if target.shares.get("framing", 0) > 0:
        phases["framing"].append(rng.choice(RESTATE).format(q=question))
    work = [f"{rng.choice(FIRST if i == 0 else CONNECT)}{s.text}." for i, s in enumerate(steps)]
    for ptype in ("exploration", "realization"):
        for _ in range(target.pivots.get(ptype, 0)):
            # Anywhere but after the last step, so the realization reads as part of the work.
            work.insert(rng.randrange(len(work)), rng.choice(PIVOT_SENTENCES[ptype]))
    phases["exploration"] = work
    for k in range(target.pivots.get("verification", 0)):
        # Two steps re-stated per check, from the last one back: checks are what emergent
        # traces spend their verification words on.
        i = len(steps) - 1 - (2 * k) % len(steps)
        step = ", ".join(s.text for s in steps[max(0, i - 1) : i + 1])
        phases["verification"].append(rng.choice(PIVOT_SENTENCES["verification"]).format(step=step))
    n_int = target.pivots.get("integration", 0)
    phases["synthesis"] = [rng.choice(PIVOT_SENTENCES["integration"]) for _ in range(max(0, n_int - 1))]
    final = rng.choice(FINAL_INTEGRATED if n_int else FINAL)
    _fill(phases, target, final, rng)
    body = "\n".join(" ".join(s) for p, s in phases.items() if s)
    return HardcodedTrace(body, final)


def _words(sentences: list[str]) -> int:
    return sum(len(s.split()) for s in sentences)


def _fill(phases: dict[str, list[str]], target: Target, final: str, rng: random.Random) -> None:
    """Add filler sentences so each phase nears its share of the target length.

    The words missing to the target length are shared among the phases below their share, in
    proportion to what each lacks (a phase whose pivots alone exceed its share gets none). A
    filler goes after a phase's first sentence: that one carries the pivot or cue which opens
    the phase (phases.py), so the filler continues the phase instead of starting another.
    Synthesis that opens at the final statement (at most one integration pivot) gets no filler."""
    counts = {p: _words(s) + (len(final.split()) if p == "synthesis" else 0) for p, s in phases.items()}
    lack = {p: max(0.0, target.shares.get(p, 0.0) * target.words - counts[p]) for p in PHASES if phases[p]}
    budget = max(0, target.words - sum(counts.values()))
    scale = min(1.0, budget / sum(lack.values())) if sum(lack.values()) else 0.0
    for p, missing in lack.items():
        want = counts[p] + scale * missing
        bank = rng.sample(FILLERS[p], len(FILLERS[p]))  # cycled: no filler twice in a row
        k = 0
        while counts[p] + len(bank[k % len(bank)].split()) / 2 <= want:
            filler = bank[k % len(bank)]
            phases[p].insert(1 + rng.randrange(len(phases[p])), filler)
            counts[p] += len(filler.split())
            k += 1
