"""Emergent-style and synthetic traces (traces/style/emergent.py, hardcoded.py, arms.py) and the
style_sets stage: exact pivots in every phrase, ST-HC-W changes only the answer, ST-HC copies
the emergent profile, size matching is exact."""

from __future__ import annotations

import json
import random
import re

import pytest

from reasondistill.config import StageContext
from reasondistill.stages.data import DataStage
from reasondistill.stages.generate import GenerateStage
from reasondistill.stages.style_sets import StyleSetsStage
from reasondistill.traces.style import emergent, hardcoded
from reasondistill.traces.style.arms import ArmEnv, ArmItem, HardcodedArm, wrong_answer
from reasondistill.traces.style.emergent import EmergentStyle, write_emergent
from reasondistill.traces.style.lexicon import DefaultLexicon
from reasondistill.traces.style.profile import StyleAnalyzer
from reasondistill.traces.style.summary import group_summary

AN = StyleAnalyzer(DefaultLexicon().build())
TYPES = ("realization", "verification", "exploration", "integration")


def only(ptype: str | None, n: int = 1) -> dict[str, int]:
    return {t: (n if t == ptype else 0) for t in TYPES}


def test_every_synthetic_phrase_holds_exactly_its_pivot():
    fill = {"q": "7+8+9", "step": "7+8=15", "a": "24"}
    for ptype, phrases in hardcoded.PIVOT_SENTENCES.items():
        for s in phrases:
            assert AN.profile(s.format(**fill)).pivots == only(ptype), s
    plain = hardcoded.RESTATE + hardcoded.FINAL + [f for fs in hardcoded.FILLERS.values() for f in fs]
    for s in plain:
        assert AN.profile(s.format(**fill)).pivots == only(None), s
    for s in hardcoded.FINAL_INTEGRATED:
        assert AN.profile(s.format(**fill)).pivots == only("integration"), s


def _items(n: int, wrong_rate: float = 0.0) -> list[ArmItem]:
    out = []
    for i in range(n):
        rng = random.Random(i)
        a, b, c, d = (rng.randint(0, 9) for _ in range(4))
        rationale = f"{a}+{b}={a + b}, {a + b}+{c}={a + b + c}, {a + b + c}+{d}={a + b + c + d}"
        gold = str(a + b + c + d)
        text, answer = write_emergent(
            f"{a}+{b}+{c}+{d}", rationale, gold, rng, EmergentStyle(wrong_rate=wrong_rate)
        )
        out.append(ArmItem(f"ex/{i}", "arithmetic", f"{a}+{b}+{c}+{d}", gold, rationale, text, answer))
    return out


def test_emergent_writer_is_seeded_varied_and_ends_wrong_at_its_rate():
    items = _items(400, wrong_rate=0.2)
    assert _items(400, wrong_rate=0.2) == items
    assert len({it.emergent for it in items}) == 400
    wrong = [it for it in items if it.emergent_answer != it.gold]
    assert 0.12 < len(wrong) / len(items) < 0.28
    for it in items:  # the last line states the trace's own answer, right or wrong
        assert it.emergent.splitlines()[-1].rstrip(".").endswith(it.emergent_answer)
    lengths = [len(it.emergent.split()) for it in items]
    assert max(lengths) - min(lengths) >= 15
    # caught slips are realizations: some correct traces show a wrong result, then "Wait"-like fixes
    assert any(re.search(r"Wait|Hmm, no|Oops", it.emergent) for it in items if it.emergent_answer == it.gold)


def test_st_hc_w_changes_only_the_answer_and_its_final_statement():
    items = _items(200)
    env = ArmEnv(3, [AN.profile(it.emergent) for it in items])
    hc, hcw = HardcodedArm().build(items, env), HardcodedArm(wrong_answer=True).build(items, env)
    for it, (t, a), (tw, aw) in zip(items, hc, hcw, strict=True):
        assert a == it.gold and aw != it.gold and int(aw) >= 0
        lines, wlines = t.splitlines(), tw.splitlines()
        assert lines[:-1] == wlines[:-1]  # the body, unchanged
        assert wlines[-1] == lines[-1].replace(it.gold, aw) and wlines[-1].rstrip(".").endswith(aw)
        assert it.step_by_step.split(", ")[-1] in t  # the body still works the right steps


def test_st_hc_copies_the_emergent_profile():
    items = _items(800)
    profiles = [AN.profile(it.emergent) for it in items]
    env = ArmEnv(0, profiles)
    target = group_summary(profiles)
    for mode in ("sampled", "paired"):
        built = HardcodedArm(target=mode).build(items, env)
        got = group_summary([AN.profile(t) for t, _ in built])
        for t in TYPES:
            assert got[f"{t}_per_trace"] == pytest.approx(target[f"{t}_per_trace"], abs=0.06), (mode, t)
        assert got["share_3of4_pivot_types"] == pytest.approx(target["share_3of4_pivot_types"], abs=0.05)
        assert got["words_mean"] == pytest.approx(target["words_mean"], rel=0.1)
        for ph in ("framing", "exploration", "verification", "synthesis"):
            assert got[f"share_{ph}"] == pytest.approx(target[f"share_{ph}"], abs=0.07), (mode, ph)
    paired = HardcodedArm(target="paired").build(items, env)
    assert all(AN.profile(t).pivots == p.pivots for (t, _), p in zip(paired, profiles, strict=True))


def test_wrong_answer_is_never_the_gold():
    rng = random.Random(0)
    assert all(
        wrong_answer("0", rng, []) not in ("0",) and int(wrong_answer("0", rng, [])) > 0 for _ in range(50)
    )
    assert wrong_answer("blue", rng, ["blue", "red"]) == "red"
    with pytest.raises(ValueError, match="every example has the same answer"):
        wrong_answer("blue", rng, ["blue"])


# -- the stages: generate with the reasoning_style teacher, then style_sets -----------------
def _run(stage, name: str, cfg: dict, tmp_path, dirs: dict) -> StageContext:
    out = tmp_path / name
    out.mkdir()
    ctx = StageContext(name=name, cfg=stage.Config.model_validate(cfg), out_dir=out, coords={}, dirs=dirs)
    stage().run(ctx)
    dirs[name] = out
    return ctx


@pytest.fixture(scope="module")
def sets_dirs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sets")
    dirs: dict = {}
    _run(DataStage, "data", {"kind": "data", "task": "arithmetic", "config": {"terms": 4, "digits": 1},
                             "splits": {"pool": {"n": 60}}}, tmp, dirs)  # fmt: skip
    _run(GenerateStage, "traces", {"kind": "generate", "data": {"stage": "data", "split": "pool"},
                                   "teacher": {"kind": "reasoning_style", "wrong_rate": 0.2}}, tmp, dirs)  # fmt: skip
    arms = {"st": {"kind": "emergent"}, "st_hc": {"kind": "hardcoded"}, "st_hc_w": {"kind": "hardcoded", "wrong_answer": True},
            "st_nt": {"kind": "no_trace"}, "sbs": {"kind": "step_by_step"}}  # fmt: skip
    base = {
        "kind": "style_sets",
        "traces": "traces",
        "source": {"stage": "data", "split": "pool"},
        "splits": arms,
    }
    _run(StyleSetsStage, "sets", base, tmp, dirs)
    _run(StyleSetsStage, "sets_tokens", {**base, "match": "tokens", "max_examples": 20}, tmp, dirs)
    return dirs


def _split(d, name):
    return [json.loads(x) for x in (d / f"{name}.jsonl").read_text().splitlines()]


def test_the_arms_are_size_matched_exactly(sets_dirs):
    from reasondistill.traces.style.profile import token_proxy

    d = sets_dirs["sets"]
    rows = {a: _split(d, a) for a in ("st", "st_hc", "st_hc_w", "st_nt", "sbs")}
    ids = [r["id"] for r in rows["st"]]
    assert len(ids) == 60 and all([r["id"] for r in rs] == ids for rs in rows.values())
    assert all(r["rationale"] is None for r in rows["st_nt"])
    assert all(r["answer"] != r["metadata"]["gold"] for r in rows["st_hc_w"])
    assert all(r["answer"] == r["metadata"]["gold"] for a in ("st_hc", "st_nt", "sbs") for r in rows[a])
    metrics = json.loads((d / "metrics.json").read_text())
    assert set(metrics) == {"emergent_target", "st", "st_hc", "st_hc_w", "st_nt", "sbs"}
    # token matching: every arm within one row of the longest arm's training tokens
    t = sets_dirs["sets_tokens"]
    tokens = {
        a: sum(token_proxy(f"{r['rationale'] or ''} {r['answer']}") for r in _split(t, a)) for a in rows
    }
    assert len(_split(t, "st")) >= 20 and len(_split(t, "st_nt")) > 20 * 10
    assert max(tokens.values()) - min(tokens.values()) <= 200
    assert [r["id"] for r in _split(t, "st_nt")][:22] == [r["id"] for r in _split(t, "st_nt")][:20] + [
        f"{_split(t, 'st_nt')[0]['id']}#1", f"{_split(t, 'st_nt')[1]['id']}#1"]  # fmt: skip


def test_the_teacher_traces_are_scored_and_resumable(sets_dirs):
    from reasondistill.artifacts import read_traces

    traces = read_traces(sets_dirs["traces"])
    assert len(traces) == 60 and {t.teacher for t in traces} == {"reasoning_style"}
    assert 0 < sum(t.score == 0.0 for t in traces) < 30  # wrong_rate 0.2: some end wrong, scored 0
    assert all(t.completion.startswith("Reasoning: ") and t.rationale for t in traces)
    assert emergent.__name__ and hardcoded.__name__  # both writers importable without torch
