"""Emergent-style traces without a reasoning model: a procedural writer in the manner of R1.

Lippmann & Yang (arXiv 2504.01738) distil from DeepSeek-R1's own traces (their ST set). With
no reasoning model on a CPU, this writer produces traces that read like one on the procedural
tasks: it restates the problem (framing), works the steps (exploration), sometimes makes a
slip and catches it ("Wait, ..."), sometimes tries another route ("What if ..."), checks the
result ("Let me check ...", for sums by adding in the other order), and concludes ("So
overall ..."). Every choice is drawn from a seeded RNG, so wording, pivots and length vary
from trace to trace; `wrong_rate` of the traces make a slip they do not catch, which then
propagates to a wrong final answer.

Departure, and why: in R1's traces failures come from the model; here they are drawn, and a
trace that ends wrong skips its check more often (`verify_rate * wrong_verify`), the simplest
cause of an uncaught slip. So this set's correct/wrong contrast in pivots is built in, not
found: compare the paper's finding on real traces only (docs/style.md).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from reasondistill.traces.style.steps import recompute, split_steps, terms

FRAMING = [
    "Okay, so I need to find {q}.",
    "Alright, the problem asks for {q}.",
    "Okay, let me figure out {q}.",
    "So the question is {q}.",
]
PLAN = ["I'll go left to right.", "One term at a time.", "I'll keep a running total.", ""]  # sums
PLAN_OTHER = ["I'll work through it in steps.", ""]
HMM = ["Hmm, let me think.", "Hmm, okay."]
HMM_SUM = ["Hmm, {n} numbers."]
CONNECT = ["", "Then ", "Next, ", "Now ", "And "]
SLIP = [
    "Wait, that's not right. {right}.",
    "Hmm, no: {right}.",
    "Wait, {right}, not {wrong}.",
    "Oops, {right}.",
]
EXPLORE = [
    "What if I group them? {pairs}.",
    "Alternatively, pair them up: {pairs}.",
    "Maybe pairing is easier: {pairs}.",
]
EXPLORE_PLAIN = ["Maybe I should go step by step.", "Let me try it one step at a time."]
VERIFY_REVERSE = [
    "Let me check by adding in reverse: {chain}.",
    "Let me double-check the other way: {chain}.",
]
VERIFY_RESTATE = ["Let me check: {chain}.", "Let me verify that: {chain}.", "Double-checking: {chain}."]
VERIFY_OK = ["Yes, that matches.", "Same result.", "Good.", ""]
VERIFY_WRONG_OK = ["Looks right.", "Yes.", ""]
SYNTH = [
    "So overall, the answer is {a}.",
    "Therefore the answer is {a}.",
    "Now I see it: the total is {a}.",
    "So the answer is {a}.",
]


@dataclass(frozen=True)
class EmergentStyle:
    """The writer's knobs (rates are per trace)."""

    wrong_rate: float = 0.1  # a slip that is not caught: the trace ends at a wrong answer
    slip_rate: float = 0.5  # a slip caught by a realization ("Wait, ...")
    hmm_rate: float = 0.3  # a hesitation before working ("Hmm, let me think.")
    explore_rate: float = 0.6  # another route is tried ("What if I group them?")
    verify_rate: float = 0.85  # the result is checked ("Let me check ...")
    wrong_verify: float = 0.3  # a trace that ends wrong checks at verify_rate * wrong_verify


def write_emergent(
    question: str, rationale: str, answer: str, rng: random.Random, style: EmergentStyle
) -> tuple[str, str]:
    """(trace, final answer) for one example; the answer differs from `answer` when the trace
    ends wrong (only equation chains can: their slips are recomputed through the chain)."""
    steps = split_steps(rationale)
    numeric = bool(steps) and all(s.value is not None for s in steps) and str(steps[-1].value) == answer
    ends_wrong = numeric and rng.random() < style.wrong_rate
    shown = steps
    if ends_wrong:
        k = rng.randrange(len(steps))
        shown = recompute(steps, k, steps[k].value + rng.choice([-2, -1, 1, 2, 10, -10])) or steps
        ends_wrong = shown is not steps
    final = str(shown[-1].value) if ends_wrong else answer
    nums = terms(question)
    lines = [rng.choice(FRAMING).format(q=question)]
    plan = rng.choice(PLAN if nums else PLAN_OTHER)
    if plan:
        lines[0] += " " + plan
    if rng.random() < style.hmm_rate:
        lines.append(rng.choice(HMM_SUM + HMM if nums else HMM).format(n=len(nums or [])))
    work = []
    slip_at = (
        rng.randrange(len(shown)) if numeric and not ends_wrong and rng.random() < style.slip_rate else None
    )
    for i, step in enumerate(shown):
        lead = "" if i == 0 else rng.choice(CONNECT)
        if i == slip_at:
            wrong = step.value + rng.choice([-1, 1, 10])
            work.append(f"{lead}{step.lhs}={wrong}. " + rng.choice(SLIP).format(right=step.text, wrong=wrong))
        else:
            work.append(f"{lead}{step.text}.")
    lines.append(" ".join(work))
    if nums and len(nums) >= 3 and rng.random() < style.explore_rate:
        lines.append(
            rng.choice(EXPLORE).format(pairs=_pairs(nums)) if not ends_wrong else rng.choice(EXPLORE_PLAIN)
        )
    elif rng.random() < style.explore_rate / 2:
        lines.insert(1, rng.choice(EXPLORE_PLAIN))
    if rng.random() < style.verify_rate * (style.wrong_verify if ends_wrong else 1.0):
        if nums and not ends_wrong and rng.random() < 0.6:
            check = rng.choice(VERIFY_REVERSE).format(chain=_reverse_chain(nums))
            ok = rng.choice(VERIFY_OK)
        else:
            check = rng.choice(VERIFY_RESTATE).format(chain=", ".join(s.text for s in shown[-2:]))
            ok = rng.choice(VERIFY_WRONG_OK if ends_wrong else VERIFY_OK)
        lines.append(f"{check} {ok}".strip())
    lines.append(rng.choice(SYNTH).format(a=final))
    return "\n".join(lines), final


def _pairs(nums: list[int]) -> str:
    """ "7+8=15, 9+6=15, 15+15=30": the sum by pairs, a genuinely different route."""
    parts, sums = [], []
    for i in range(0, len(nums) - 1, 2):
        parts.append(f"{nums[i]}+{nums[i + 1]}={nums[i] + nums[i + 1]}")
        sums.append(nums[i] + nums[i + 1])
    if len(nums) % 2:
        sums.append(nums[-1])
    total = sums[0]
    for s in sums[1:]:
        parts.append(f"{total}+{s}={total + s}")
        total += s
    return ", ".join(parts)


def _reverse_chain(nums: list[int]) -> str:
    rev = nums[::-1]
    total, parts = rev[0], []
    for x in rev[1:]:
        parts.append(f"{total}+{x}={total + x}")
        total += x
    return ", ".join(parts)
