"""Pivot detection (traces/style/lexicon.py): exact counts on hand-written traces."""

from __future__ import annotations

import pytest

from reasondistill.errors import ReasonDistillError
from reasondistill.traces.style.lexicon import DefaultLexicon, FileLexicon
from reasondistill.traces.style.profile import StyleAnalyzer

LEX = DefaultLexicon().build()


def counts(text: str, lexicon=LEX) -> dict[str, int]:
    return StyleAnalyzer(lexicon).profile(text).pivots


@pytest.mark.parametrize(
    "text, expected",
    [
        # case and punctuation do not matter
        ("Wait, WAIT! wait... (wait)", {"realization": 4}),
        ("Hmm. Hmmm, hm? Oh! Ah, actually.", {"realization": 6}),
        # a marker inside another word never counts
        ("Awaiting the waiter, I checkmate the unverified overallocation.", {}),
        ("Hmmmm-like humming; washing; ohm", {"realization": 1}),  # "Hmmmm" only
        # the longest marker at a position wins, and matches never overlap
        ("Let me double-check. Let me check. Let's check. Checking.", {"verification": 4}),
        ("Let me verify; double check; cross-check; make sure.", {"verification": 4}),
        ("Let’s check with a typographic apostrophe.", {"verification": 1}),
        ("What if we try? Alternatively, maybe. Let me try.", {"exploration": 5}),
        ("Now I see how it fits. So overall, thus. Putting it all together.", {"integration": 4}),
        # markers split across a line break still count (a space matches any whitespace)
        ("so\noverall it works", {"integration": 1}),
        ("The answer is 7.", {}),
    ],
)
def test_exact_pivot_counts(text, expected):
    assert counts(text) == {
        t: expected.get(t, 0) for t in ("realization", "verification", "exploration", "integration")
    }


def test_a_hand_written_trace():
    trace = (
        "Okay, so I need 7+8+9. Hmm, let me think. 7+8=16. Wait, that's not right: 7+8=15. "
        "What if I pair them? Let me check: 15+9=24. Double-checking gives 24. So overall, 24."
    )
    p = StyleAnalyzer(LEX).profile(trace)
    # Hmm, Wait, that's not right | let me think, What if | Let me check, Double-checking | So overall
    assert p.pivots == {"realization": 3, "verification": 2, "exploration": 2, "integration": 1}
    assert p.distinct_pivot_types == 4
    assert p.words == len(trace.split())


def test_lexicon_add_remove_and_file(tmp_path):
    custom = DefaultLexicon(
        add={"realization": ["eureka", "gosh|golly gee"]}, remove={"realization": ["actually"]}
    ).build()
    assert counts("Eureka! Actually no. Golly  gee, gosh; goshawk.", custom)["realization"] == 3
    f = tmp_path / "lex.yaml"
    f.write_text("extends: none\npivots:\n  verification: ['pr[üu]fen']\n", encoding="utf-8")
    only = FileLexicon(kind="file", path=str(f)).build()
    assert counts("Wait. Prüfen, prufen.", only) == {
        "realization": 0,
        "verification": 2,
        "exploration": 0,
        "integration": 0,
    }


def test_bad_lexicons_fail_clearly(tmp_path):
    with pytest.raises(ReasonDistillError, match="not a valid regular expression"):
        DefaultLexicon(add={"realization": ["wait("]}).build()
    with pytest.raises(ReasonDistillError, match="remove` names markers it does not have"):
        DefaultLexicon(remove={"realization": ["nope"]}).build()
    with pytest.raises(ReasonDistillError, match="matches the empty string"):
        DefaultLexicon(add={"exploration": ["x?"]}).build()
    with pytest.raises(ValueError, match="does not exist"):
        FileLexicon(kind="file", path=str(tmp_path / "missing.yaml"))


def test_find_reports_offsets_in_the_original_text():
    text = "No. Wait, let me check."
    assert LEX.find(text) == [(4, "realization"), (10, "verification")]
