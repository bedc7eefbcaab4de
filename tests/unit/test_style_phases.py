"""Phase segmentation (traces/style/phases.py) on hand-written traces, and per-trace profiles."""

from __future__ import annotations

import pytest

from reasondistill.traces.style.lexicon import DefaultLexicon
from reasondistill.traces.style.profile import StyleAnalyzer

AN = StyleAnalyzer(DefaultLexicon().build())


@pytest.mark.parametrize(
    "trace, phases",
    [
        # the canonical four, one unit each
        (
            "I need 7+8. 7+8=15. Let me check: 8+7=15. So overall, 15.",
            ["framing", "exploration", "verification", "synthesis"],
        ),
        # units with no pivot continue the phase before them; a realization returns to exploration
        (
            "We want 2+3+4. 2+3=5. Let me verify. 5 is right. Wait, 5+4=9. Double-check: 9. The answer is 9.",
            ["framing", "exploration", "verification", "exploration", "verification", "synthesis"],
        ),
        # a plain step-by-step rationale: all exploration (work from the first unit, no conclusion)
        ("7+8=15, 15+9=24, 24+6=30", ["exploration"]),
        # no pivot and no equation anywhere: framing is the first unit only
        ("Natalia sold clips. She sold half as many in May.", ["framing", "exploration"]),
        # an integration pivot before the last verification does not open synthesis
        (
            "So overall the plan is clear. Let me check 2+2=4. Therefore 4.",
            ["exploration", "verification", "synthesis"],
        ),
        # lines are units too
        ("Okay.\nHmm\n3*4=12\nfinal answer: 12", ["framing", "exploration", "synthesis"]),
        ("", []),
    ],
)
def test_phase_sequence(trace, phases):
    assert AN.profile(trace).phases == phases


def test_phase_words_and_shares():
    trace = "I need to add these. 7+8=15. Let me check: 8+7=15. So overall, 15."
    p = AN.profile(trace)
    assert p.phase_words == {"framing": 5, "exploration": 1, "verification": 4, "synthesis": 3}
    assert p.words == 13 and sum(p.phase_share.values()) == pytest.approx(1.0)
    d = p.to_dict()
    assert d["phase_share"]["framing"] == pytest.approx(5 / 13, abs=1e-4)
    assert d["pivots_per_1k_words"] == pytest.approx(1000 * 2 / 13)


def test_summary_groups_and_the_3_of_4_share():
    from reasondistill.traces.style.summary import summarize

    full = AN.profile("Hmm, what if 2+2=4? Let me check. So overall, 4.")  # all 4 types
    three = AN.profile("Wait. Maybe 4. Let me check.")
    none = AN.profile("2+2=4")
    s = summarize([full, three, none, none], ["correct", "correct", "wrong", "unknown"])
    assert s["correct"]["n"] == 2 and s["correct"]["share_3of4_pivot_types"] == 1.0
    assert s["wrong"]["share_3of4_pivot_types"] == 0.0
    assert s["all"]["share_3of4_pivot_types"] == 0.5
    assert (
        0
        <= s["all"]["share_3of4_pivot_types_ci_low"]
        <= 0.5
        <= s["all"]["share_3of4_pivot_types_ci_high"]
        <= 1
    )
    assert s["all"]["distinct_pivot_types_dist"] == {"0": 0.5, "1": 0.0, "2": 0.0, "3": 0.25, "4": 0.25}
    assert summarize([], [])["unknown"] == {"n": 0}
