"""Teachers (program, hf) and the `generate` stage, on a tiny random model (no hub, no tasks)."""

from __future__ import annotations

import sys
import types

import pytest
from pydantic import ValidationError

import reasondistill.stages.generate as generate_stage
from reasondistill.evaluate.generate import generate_batch
from reasondistill.models.tokenize import encode_prompt
from reasondistill.stages.base import StageContext
from reasondistill.teachers import TEACHERS, build_teacher
from reasondistill.teachers.hf import HFConfig, HFTeacher
from reasondistill.teachers.program import ProgramConfig
from reasondistill.traces.format import render_completion, render_prompt
from reasondistill.traces.store import TraceStore
from tests.unit.helpers_tiny import examples, fake_verify, tiny_model, tiny_tokenizer


@pytest.fixture(scope="module")
def tok():
    return tiny_tokenizer()


@pytest.fixture(scope="module")
def model(tok):
    return tiny_model(tok, seed=0)


def _hf(model, tok, **kw) -> HFTeacher:
    cfg = HFConfig(kind="hf", model={"path": "tiny"}, **{"max_new_tokens": 8, **kw})
    return HFTeacher(cfg, model=model, tokenizer=tok)


def _dump(path) -> list[dict]:
    return [t.model_dump() for t in TraceStore(path).read()]


def test_registry_lists_builtin_teachers():
    assert {"program", "hf"} <= set(TEACHERS.names())


def test_program_teacher_gold_traces_and_resume(tmp_path):
    exs = examples(3)
    teacher = build_teacher(ProgramConfig(kind="program", n=2))
    with TraceStore(tmp_path / "t.jsonl") as store:
        teacher.generate(exs, store, fake_verify)
    traces = TraceStore(tmp_path / "t.jsonl").read()
    assert [(t.example_id, t.sample) for t in traces] == [(e.id, s) for e in exs for s in range(2)]
    t = traces[0]
    assert t.completion == render_completion(exs[0].answer, exs[0].rationale, "before")
    assert (t.rationale, t.answer, t.score, t.prompt) == (
        exs[0].rationale,
        "0",
        1.0,
        render_prompt(exs[0].question),
    )
    with TraceStore(tmp_path / "t.jsonl") as store:
        teacher.generate(exs, store, fake_verify)
        assert len(store.done()) == 6  # nothing rewritten


def test_hf_teacher_n_samples(tmp_path, model, tok):
    exs = examples(5)
    with TraceStore(tmp_path / "t.jsonl") as store:
        _hf(model, tok, n=3, batch_size=6, temperature=1.0).generate(exs, store, lambda ex, a: True)
    traces = TraceStore(tmp_path / "t.jsonl").read()
    assert [(t.example_id, t.sample) for t in traces] == [(e.id, s) for e in exs for s in range(3)]
    assert len({t.completion for t in traces if t.example_id == "ex0"}) > 1  # sampled, not copies
    for t in traces:
        assert t.teacher == "hf:tiny"
        assert 1 <= t.usage["completion_tokens"] <= 8 and t.usage["prompt_tokens"] > 0
        assert t.score == (1.0 if t.answer is not None else 0.0)
        assert (t.error is None) or "truncated" in t.error


class _KilledAfter(TraceStore):
    """A store whose process 'dies' after `limit` records, in the middle of a batch."""

    def __init__(self, path, limit: int) -> None:
        super().__init__(path)
        self.limit = limit

    def append(self, traces) -> int:
        for t in traces:
            if len(self.done()) >= self.limit:
                raise KeyboardInterrupt
            super().append([t])
        return 0


def test_hf_teacher_resume_equals_uninterrupted(tmp_path, model, tok):
    exs = examples(7)
    kw = {"n": 2, "batch_size": 4, "temperature": 1.0, "seed": 3}
    with TraceStore(tmp_path / "full.jsonl") as store:
        _hf(model, tok, **kw).generate(exs, store, fake_verify)
    part = tmp_path / "part.jsonl"
    with pytest.raises(KeyboardInterrupt), _KilledAfter(part, limit=5) as store:
        _hf(model, tok, **kw).generate(exs, store, fake_verify)
    with open(part, "a") as f:
        f.write('{"example_id": "ex2", "sam')  # torn write of the record in flight
    assert len(TraceStore(part).done()) == 5
    with TraceStore(part) as store:
        _hf(model, tok, **kw).generate(exs, store, fake_verify)
    assert _dump(part) == _dump(tmp_path / "full.jsonl")


def test_hf_teacher_greedy_matches_generate_batch(tmp_path, model, tok):
    exs = examples(3)
    with TraceStore(tmp_path / "t.jsonl") as store:
        _hf(model, tok, temperature=0.0, batch_size=2).generate(exs, store, fake_verify)
    prompts = [encode_prompt(tok, render_prompt(e.question)) for e in exs]
    expected = [g.text for g in generate_batch(model, tok, prompts, max_new_tokens=8)]
    assert [t.completion for t in TraceStore(tmp_path / "t.jsonl").read()] == expected


def test_hf_config_rejects_greedy_with_n():
    with pytest.raises(ValidationError, match="identical samples"):
        HFConfig(kind="hf", model={"path": "x"}, n=2, temperature=0)


def _gen_cfg(teacher: dict) -> dict:
    return {"kind": "generate", "teacher": teacher, "data": {"stage": "data", "split": "train"}}


def test_generate_config_teacher_union():
    cfg = generate_stage.GenerateConfig.model_validate(_gen_cfg({"kind": "hf", "model": {"stage": "sft"}}))
    assert isinstance(cfg.teacher, HFConfig)
    assert cfg.model_dump()["teacher"]["max_new_tokens"] == 256  # full config is hashed/saved
    with pytest.raises(ValidationError) as err:
        generate_stage.GenerateConfig.model_validate(_gen_cfg({"kind": "gpt9"}))
    msg = err.value.errors()[0]["msg"]
    assert "gpt9" in msg and "'hf'" in msg and "'program'" in msg and "\n" not in msg
    with pytest.raises(ValidationError):
        generate_stage.GenerateConfig.model_validate(_gen_cfg({"kind": "program", "temperature": 1}))


def _ctx(tmp_path, cfg) -> StageContext:
    out = tmp_path / "gen"
    out.mkdir(exist_ok=True)
    return StageContext(name="gen", cfg=cfg, out_dir=out, coords={}, dirs={"data": tmp_path / "data"})


def test_generate_stage_program_and_resume(tmp_path, monkeypatch):
    exs = examples(4)
    monkeypatch.setattr(generate_stage, "load_data", lambda d, split, limit: (exs[:limit], fake_verify))
    raw = _gen_cfg({"kind": "program"}) | {"data": {"stage": "data", "split": "train", "limit": 3}}
    ctx = _ctx(tmp_path, generate_stage.GenerateConfig.model_validate(raw))
    summary = generate_stage.GenerateStage().run(ctx)
    assert summary["traces"] == 3 and summary["new"] == 3 and summary["teacher_accuracy"] == 1.0
    assert generate_stage.GenerateStage().run(ctx)["new"] == 0


def test_generate_stage_hf_loads_model_source(tmp_path, monkeypatch, model, tok):
    loaded = []
    fake = types.ModuleType("reasondistill.models.load")
    fake.load_model = lambda path, **kw: loaded.append(path) or (model, tok)
    monkeypatch.setitem(sys.modules, "reasondistill.models.load", fake)
    monkeypatch.setattr(generate_stage, "load_data", lambda d, split, limit: (examples(3), fake_verify))
    raw = _gen_cfg({"kind": "hf", "model": {"stage": "sft"}, "n": 2, "max_new_tokens": 4, "batch_size": 4})
    ctx = _ctx(tmp_path, generate_stage.GenerateConfig.model_validate(raw))
    ctx.dirs["sft"] = tmp_path / "sft"
    summary = generate_stage.GenerateStage().run(ctx)
    assert summary["traces"] == 6 and summary["completion_tokens"] > 0
    assert loaded == [str(tmp_path / "sft" / "model")]


@pytest.mark.parametrize("kind", ["chat", "think"])
def test_program_teacher_writes_its_templates_prompt_and_text(tmp_path, kind):
    exs = examples(2)
    teacher = build_teacher(ProgramConfig(kind="program", template={"kind": kind}))
    with TraceStore(tmp_path / "t.jsonl") as store:
        teacher.generate(exs, store, fake_verify)
    t = TraceStore(tmp_path / "t.jsonl").read()[1]
    assert t.prompt == [{"role": "user", "content": exs[1].question}]
    assert t.completion == teacher.template.render(exs[1].answer, exs[1].rationale, "before")
    assert (t.rationale, t.answer, t.score) == (exs[1].rationale, exs[1].answer, 1.0)


def test_hf_teacher_prompts_through_the_chat_template(tmp_path):
    from reasondistill.models.tokenizer import train_tokenizer

    chat_tok = train_tokenizer([e.question for e in examples(4)], 128, chat=True)
    chat_model = tiny_model(chat_tok, seed=0)
    exs = examples(3)
    with TraceStore(tmp_path / "t.jsonl") as store:
        _hf(chat_model, chat_tok, temperature=0.0, template={"kind": "chat"}).generate(exs, store, fake_verify)
    msgs = [[{"role": "user", "content": e.question}] for e in exs]
    expected = generate_batch(chat_model, chat_tok, [encode_prompt(chat_tok, m) for m in msgs], max_new_tokens=8)
    traces = TraceStore(tmp_path / "t.jsonl").read()
    assert [t.prompt for t in traces] == msgs and [t.completion for t in traces] == [g.text for g in expected]
