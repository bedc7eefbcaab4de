"""The LLM style annotator (traces/style/annotate.py): prompt, reply parsing, profiles, and the
style_analyze stage with an `openai` teacher against a scripted fake server."""

from __future__ import annotations

import json
import re

import httpx
import pytest
from pydantic import ValidationError

from reasondistill.config import StageContext
from reasondistill.errors import ReasonDistillError
from reasondistill.stages.style_analyze import StyleAnalyzeStage
from reasondistill.teachers.openai.teacher import OpenAITeacher
from reasondistill.traces.style import annotate
from reasondistill.traces.style.annotate import (
    AnnotatorConfig,
    UnitLabel,
    annotation_prompt,
    parse_labels,
    profile_from_labels,
    trace_units,
)
from reasondistill.traces.style.lexicon import DefaultLexicon


def test_prompt_numbers_every_unit_and_names_the_window():
    whole = annotation_prompt(["Okay, 2+2.", "Wait,\n  4."], 1, 2)
    assert "1. Okay, 2+2.\n2. Wait, 4.\n" in whole and "one line per sentence, 1 to 2" in whole
    assert "(sentences" not in whole
    window = annotation_prompt(["c", "d"], 3, 5)
    assert "Trace (sentences 3-4 of 5)" in window and "3. c\n4. d\n" in window and ", 3 to 4" in window


def test_parse_labels_exact_and_tolerant():
    reply = "\n".join([
        "Here are the labels:",
        "1. So the question is 2+3.",  # an echo of the sentence: no known phase, ignored
        "1 | framing | none",
        "2: exploration; realization, exploration",
        "**3.** V | verification",
        "4) synthesis, integration, verificationist",  # a word containing a type name is not the type
        "2 | synthesis | integration",  # a second label for unit 2: the first one stands
        "9 | framing | none",  # outside the window: ignored
    ])  # fmt: skip
    assert parse_labels(reply, 1, 4) == [
        UnitLabel("framing", frozenset()),
        UnitLabel("exploration", frozenset({"realization", "exploration"})),
        UnitLabel("verification", frozenset({"verification"})),
        UnitLabel("synthesis", frozenset({"integration"})),
    ]
    assert parse_labels("Sentence 3: F | none\n- 4 | S | integration", 3, 2) == [
        UnitLabel("framing", frozenset()),
        UnitLabel("synthesis", frozenset({"integration"})),
    ]
    assert parse_labels("1 | framing | none", 1, 2) is None  # unit 2 missing
    assert parse_labels("1 | framing | none\n2 | pondering | none", 1, 2) is None  # unknown phase
    assert parse_labels("", 1, 1) is None


def test_profile_counts_units_per_type_and_words_per_phase():
    text = "So 2+2+3. 2+2=4. Wait, wait, 4+3=7. Let me check: 7. So overall 7."
    assert trace_units(text) == ["So 2+2+3.", "2+2=4.", "Wait, wait, 4+3=7.", "Let me check: 7.", "So overall 7."]
    labels = [
        UnitLabel("framing", frozenset()),
        UnitLabel("exploration", frozenset()),
        UnitLabel("exploration", frozenset({"realization"})),
        UnitLabel("verification", frozenset({"verification"})),
        UnitLabel("synthesis", frozenset({"integration"})),
    ]
    p = profile_from_labels(text, labels, id="t")
    # "wait, wait" is one unit labelled realization: 1 (the lexicon counts 2)
    assert p.pivots == {"realization": 1, "verification": 1, "exploration": 0, "integration": 1}
    assert p.phases == ["framing", "exploration", "verification", "synthesis"]
    assert p.phase_words == {"framing": 2, "exploration": 4, "verification": 4, "synthesis": 3}
    assert p.distinct_pivot_types == 3 and p.words == 13 and p.extra == {"id": "t"}
    with pytest.raises(ValueError):
        profile_from_labels(text, labels[:4])  # one label per unit, exactly


def test_config_needs_a_language_model_one_reply_and_a_chat_turn():
    ok = {"kind": "openai", "base_url": "http://x/v1", "model": "m", "template": {"kind": "chat"}}
    assert AnnotatorConfig.model_validate({"teacher": ok}).max_units == 60
    for bad, msg in (
        ({"kind": "program", "template": {"kind": "chat"}}, "only answers its task's questions"),
        ({**ok, "template": {"kind": "plain"}}, "template: {kind: chat}"),
        ({**ok, "n": 2, "temperature": 0.7}, "`n` must be 1"),
    ):
        with pytest.raises(ValidationError, match=re.escape(msg)):
            AnnotatorConfig.model_validate({"teacher": bad})


class LexiconAnnotator:
    """A scripted 'LLM' behind an OpenAI-compatible endpoint: labels each numbered sentence of
    the prompt with the pivot types the default lexicon finds in it, the phase from a fixed
    rule, and (`garble`) answers prose to prompts holding a given sentence."""

    def __init__(self, garble: str | None = None) -> None:
        self.lexicon, self.garble, self.calls = DefaultLexicon(kind="default").build(), garble, 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        prompt = json.loads(request.content)["messages"][-1]["content"]
        lines = []
        for n, unit in re.findall(r"^(\d+)\. (.*)$", prompt, flags=re.MULTILINE):
            types = sorted({t for _, t in self.lexicon.find_lower(" " + unit.lower())})
            phase = "framing" if n == "1" else ("verification" if "verification" in types else "exploration")
            lines.append(f"{n} | {phase} | {', '.join(types) or 'none'}")
        text = "I cannot label this." if self.garble and self.garble in prompt else "\n".join(lines)
        choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        usage = {"prompt_tokens": 50, "completion_tokens": 20, "total_tokens": 70}
        return httpx.Response(200, json={"id": "x", "choices": [choice], "usage": usage})


TRACES = [
    {"example_id": "a", "split": "t", "correct": True,
     "prediction": "Reasoning: Okay, 2+3+4. 2+3=5. Wait, 5+4=9. Let me check: 9. Maybe 4+5 first? Also 9. So overall 9.\nAnswer: 9"},
    {"example_id": "b", "split": "t", "correct": False, "prediction": "Reasoning: 1+1=3. Hmm.\nAnswer: 3"},
    {"example_id": "c", "split": "t", "correct": True, "prediction": "Reasoning: Garble me. 2+2=4.\nAnswer: 4"},
]  # fmt: skip


def _run(tmp_path, server, **annotator):
    ev = tmp_path / "eval"
    ev.mkdir(exist_ok=True)
    (ev / "predictions.jsonl").write_text("".join(json.dumps(t) + "\n" for t in TRACES))
    teacher = {"kind": "openai", "base_url": "http://fake/v1", "model": "m", "template": {"kind": "chat"},
               "cache": str(tmp_path / "cache.jsonl"), "max_retries": 0}  # fmt: skip
    cfg = {"kind": "style_analyze", "predictions": "eval", "charts": False,
           "annotator": {"teacher": teacher, **annotator}}  # fmt: skip
    out = tmp_path / "analysis"
    out.mkdir(exist_ok=True)
    ctx = StageContext("analysis", StyleAnalyzeStage.Config.model_validate(cfg), out, {}, {"eval": ev})
    return ctx, StyleAnalyzeStage().run(ctx)


@pytest.fixture
def fake(monkeypatch):
    """Route the annotator's teacher through a LexiconAnnotator (no sockets)."""
    server = {"now": LexiconAnnotator()}
    monkeypatch.setattr(
        annotate,
        "build_teacher",
        lambda cfg, ctx: OpenAITeacher(cfg, ctx, transport=httpx.MockTransport(lambda r: server["now"](r))),
    )
    return server


def test_stage_profiles_from_the_annotators_labels_in_windows_and_resumes(tmp_path, fake):
    fake["now"] = LexiconAnnotator(garble="Garble me")
    ctx, result = _run(tmp_path, fake, max_units=4)
    # trace a: 7 units -> windows 1-4 and 5-7; b: 2 units; c: 2 units (garbled) -> 4 calls
    assert fake["now"].calls == 4
    info = json.loads((ctx.out_dir / "annotation.json").read_text())
    assert (info["traces"], info["calls"], info["unparsed"]) == (3, 4, 1) and result["annotation"] == info
    profiles = [json.loads(line) for line in (ctx.out_dir / "profiles.jsonl").read_text().splitlines()]
    assert [p["id"] for p in profiles] == ["a", "b"]  # c's reply did not parse: left out
    a, b = profiles
    # Wait, Let me check, Maybe, So overall: each in its own unit
    assert a["pivots"] == {"realization": 1, "verification": 1, "exploration": 1, "integration": 1}
    assert a["phases"] == ["framing", "exploration", "verification", "exploration"]  # windows joined
    assert b["pivots"]["realization"] == 1 and b["phases"] == ["framing", "exploration"]
    metrics = json.loads((ctx.out_dir / "metrics.json").read_text())
    assert (metrics["all"]["n"], metrics["correct"]["share_3of4_pivot_types"], metrics["wrong"]["n"]) == (2, 1.0, 1)
    assert info["agree_3of4"] == 1.0  # the scripted annotator is the lexicon, unit by unit

    # a rerun (after a kill) asks for nothing it already has: the replies are in annotations.jsonl
    fake["now"] = LexiconAnnotator(garble="Garble me")
    _run(tmp_path, fake, max_units=4)
    assert fake["now"].calls == 0


def test_no_parsable_reply_is_one_clear_error(tmp_path, fake):
    fake["now"] = LexiconAnnotator(garble="numbered sentence")  # in every prompt: every reply is prose
    with pytest.raises(ReasonDistillError, match="replies to all 3 traces failed to parse"):
        _run(tmp_path, fake)
