"""The `openai` teacher against a scripted fake server (httpx.MockTransport): no sockets, no model."""

from __future__ import annotations

import json
import random
import re

import httpx
import pytest
from pydantic import ValidationError

from reasondistill.errors import ReasonDistillError
from reasondistill.stages.generate import GenerateConfig
from reasondistill.teachers import TEACHERS
from reasondistill.teachers.openai.config import OpenAIConfig
from reasondistill.teachers.openai.http import RetryPolicy
from reasondistill.teachers.openai.teacher import OpenAITeacher
from reasondistill.traces.format import render_prompt
from reasondistill.traces.store import TraceStore
from reasondistill.traces.templates import build_template, question_from
from tests.unit.helpers_tiny import examples, fake_verify

KEY = "sk-unit-test-9f8e7d6c5b4a"


class FakeServer:
    """An OpenAI-compatible endpoint: answers "Answer: 2i" to "what is i + i?"; `script` injects faults."""

    def __init__(self, script=None, finish_reason: str = "stop") -> None:
        self.calls: list[tuple[httpx.Request, dict]] = []
        self.script, self.finish_reason = script, finish_reason

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.calls.append((request, body))
        if self.script is not None and (fault := self.script(len(self.calls), request, body)) is not None:
            return fault
        text_in = body["prompt"] if "prompt" in body else body["messages"][-1]["content"]
        i = int(re.search(r"what is (\d+)", text_in).group(1))
        chat = request.url.path.endswith("/chat/completions")
        choices = []
        for c in range(body["n"]):
            text = f"Reasoning: {i} plus {i} (take {c})\nAnswer: {2 * i}"
            lp = None
            if body.get("logprobs"):
                top = [{"token": "A", "logprob": -0.1, "bytes": [65]}]
                lp = (
                    {"content": [{"token": "A", "logprob": -0.1, "bytes": [65], "top_logprobs": top}]}
                    if chat
                    else {"tokens": ["A"], "token_logprobs": [-0.1], "top_logprobs": [{"A": -0.1}]}
                )
            out = {"message": {"role": "assistant", "content": text}} if chat else {"text": text}
            choices.append({"index": c, **out, "logprobs": lp, "finish_reason": self.finish_reason})
        usage = {"prompt_tokens": 10, "completion_tokens": 7 * body["n"], "total_tokens": 10 + 7 * body["n"]}
        return httpx.Response(200, json={"id": "x", "choices": choices, "usage": usage})

    def requested(self) -> list[str]:
        """Example questions' numbers of every call, in call order."""
        out = []
        for _, b in self.calls:
            text = b["prompt"] if "prompt" in b else b["messages"][-1]["content"]
            out.append(re.search(r"what is (\d+)", text).group(1))
        return out


def _cfg(**kw) -> OpenAIConfig:
    base = dict(kind="openai", base_url="http://fake/v1", model="m", max_retries=3, backoff_base=0.0,
                backoff_max=0.0, concurrency=3)  # fmt: skip
    return OpenAIConfig(**{**base, **kw})


def _run(tmp_path, server, n_examples: int = 4, sub: str = "stage", **kw) -> OpenAITeacher:
    kw.setdefault("cache", str(tmp_path / "cache.jsonl"))
    teacher = OpenAITeacher(_cfg(**kw), transport=httpx.MockTransport(server))
    with TraceStore(tmp_path / sub / "traces.jsonl") as store:
        teacher.generate(examples(n_examples), store, fake_verify)
    return teacher


def _traces(tmp_path, sub: str = "stage"):
    return TraceStore(tmp_path / sub / "traces.jsonl").read()


def test_registered_and_validated_by_the_generate_stage():
    assert "openai" in TEACHERS.names()
    cfg = GenerateConfig.model_validate(
        {"kind": "generate", "data": {"stage": "d", "split": "pool"},
         "teacher": {"kind": "openai", "serve": {"stage": "teacher"}, "api": "completions"}}
    )  # fmt: skip
    assert cfg.teacher.serve.stage == "teacher"
    assert (_cfg().api, _cfg(template={"kind": "chat"}).api, _cfg(template={"kind": "think"}).api) == (
        "completions", "chat", "chat"
    )  # the endpoint follows the template
    bad = [
        dict(serve={"stage": "t"}),  # both base_url and serve
        dict(base_url=None),  # neither
        dict(model=None),  # base_url without a model
        dict(temperature=0, n=2),  # greedy duplicates
        dict(api="chat"),  # text prompts (template plain) do not go to the chat endpoint
        dict(template={"kind": "chat"}, api="completions"),
        dict(base_url="ftp://x"),
    ]
    for over in bad:
        with pytest.raises(ValidationError):
            _cfg(**over)
    with pytest.raises(ValidationError, match="system_prompt moved into the prompt template"):
        _cfg(system_prompt="be brief")
    with pytest.raises(ValidationError) as e:
        _cfg(api_key_env=KEY)  # the key pasted where its variable's NAME belongs
    assert KEY not in str(e.value.errors()[0]["msg"])


def test_backoff_is_full_jitter_capped_and_honours_retry_after():
    rng, p = random.Random(0), RetryPolicy(max_retries=5, backoff_base=1.0, backoff_max=8.0)
    for attempt in range(6):
        waits = [p.delay(attempt, None, rng) for _ in range(200)]
        assert 0 <= min(waits) and max(waits) <= min(8.0, 2**attempt)
        assert max(waits) > 0.5 * min(8.0, 2**attempt)  # full jitter spans the whole range
    assert all(p.delay(0, 5.0, rng) >= 5.0 for _ in range(50))  # Retry-After is a floor
    assert p.delay(0, 100.0, rng) == 8.0  # ... capped at backoff_max


@pytest.mark.parametrize("header, floor", [("7", 7.0), ("0.5", 0.5), ("soon", None)])
def test_a_servers_retry_after_reaches_the_retry_delay(monkeypatch, header, floor):
    """The wait before a retry is at least the 429's Retry-After (the policy test above checks
    `delay` alone; this one checks that the header gets there through the request path)."""
    import asyncio

    from reasondistill.teachers.openai import http as http_mod

    waits: list[float] = []

    async def no_sleep(seconds: float) -> None:
        waits.append(seconds)

    monkeypatch.setattr(http_mod.asyncio, "sleep", no_sleep)
    answers = iter([
        httpx.Response(429, headers={"Retry-After": header}, json={"error": {"message": "slow down"}}),
        httpx.Response(200, json={"choices": [{"index": 0, "text": "Answer: 2", "finish_reason": "stop"}]}),
    ])  # fmt: skip

    async def go():
        transport = httpx.MockTransport(lambda request: next(answers))
        async with httpx.AsyncClient(transport=transport) as client:
            return await http_mod.post_with_retries(
                client, lambda: ("http://fake/v1", lambda: None), {"model": "m"}, {}, timeout=5, api="completions",
                n=1, policy=RetryPolicy(max_retries=3, backoff_base=0.01, backoff_max=60.0), rng=random.Random(0),
            )  # fmt: skip

    reply = asyncio.run(go())
    assert reply.choices[0].text == "Answer: 2" and len(waits) == 1
    if floor is None:  # an HTTP-date or garbage: plain backoff (full jitter under base * 2^0)
        assert waits[0] <= 0.01
    else:
        assert waits[0] >= floor


@pytest.mark.parametrize("api", ["chat", "completions"])
def test_requests_carry_sampling_knobs_key_and_logprobs(tmp_path, monkeypatch, api):
    monkeypatch.setenv("RD_UNIT_KEY", KEY)
    server = FakeServer()
    template = {"kind": "chat", "system": "think step by step"} if api == "chat" else {"kind": "plain"}
    _run(tmp_path, server, template=template, n=2, temperature=0.7, top_p=0.9, max_tokens=20, stop=["\n\n"],
         top_logprobs=3, api_key_env="RD_UNIT_KEY", extra_body={"top_k": 5})  # fmt: skip
    assert len(server.calls) == 4  # samples grouped: one request with n=2 per example
    req, body = server.calls[0]
    assert req.headers["authorization"] == f"Bearer {KEY}"
    assert req.url.path == ("/v1/chat/completions" if api == "chat" else "/v1/completions")
    assert {k: body[k] for k in ("model", "n", "temperature", "top_p", "max_tokens", "stop", "top_k")} == {
        "model": "m", "n": 2, "temperature": 0.7, "top_p": 0.9, "max_tokens": 20, "stop": ["\n\n"], "top_k": 5,
    }  # fmt: skip
    if api == "chat":
        assert body["messages"] == [{"role": "system", "content": "think step by step"},
                                    {"role": "user", "content": examples(1)[0].question}]  # fmt: skip
        assert (body["logprobs"], body["top_logprobs"]) == (True, 3)
    else:
        assert body["prompt"] == render_prompt(examples(1)[0].question) and body["logprobs"] == 3
    traces = _traces(tmp_path)
    assert [(t.example_id, t.sample) for t in traces] == [(f"ex{i}", s) for i in range(4) for s in range(2)]
    t = traces[3]
    assert (t.answer, t.score, t.error, t.teacher) == ("2", 1.0, None, "openai:m")
    # The prompt as sent (a format stage re-renders it in the student's template).
    sent = build_template(_cfg(template=template).template).prompt(examples(2)[1].question)
    assert t.prompt == sent and question_from(t.prompt) == examples(2)[1].question
    assert t.logits_ref == "logprobs.jsonl"
    rows = [json.loads(x) for x in (tmp_path / "stage" / "logprobs.jsonl").read_text().splitlines()]
    assert len(rows) == 8 and rows[0]["logprobs"][0] == {"token": "A", "logprob": -0.1, "top": [["A", -0.1]]}
    usage = json.loads((tmp_path / "stage" / "openai_usage.json").read_text())
    assert usage["last_run"]["requests_answered"] == 4 and usage["last_run"]["completion_tokens"] == 56
    assert KEY not in json.dumps(usage) + (tmp_path / "cache.jsonl").read_text()


def test_every_fault_kind_is_retried_until_success(tmp_path):
    def faults(k, request, body):
        if k == 1:
            return httpx.Response(429, headers={"Retry-After": "0"}, json={"error": {"message": "slow down"}})
        if k == 2:
            return httpx.Response(503, text="overloaded")
        if k == 3:
            return httpx.Response(200, content=b'{"choices": [')  # malformed JSON
        if k == 4:
            return httpx.Response(200, json={"choices": [], "usage": {}})  # empty
        if k == 5:
            raise httpx.ReadTimeout("slow", request=request)
        if k == 6:
            raise httpx.RemoteProtocolError("peer closed connection: incomplete body", request=request)
        return None

    teacher = _run(tmp_path, FakeServer(faults), n_examples=2, concurrency=1, max_retries=6)
    assert len(_traces(tmp_path)) == 2
    run = teacher.summary["last_run"]
    assert (run["requests_sent"], run["retries"], run["requests_failed"]) == (8, 6, 0)
    assert set(run["failed_attempts_by_reason"]) == {
        "HTTP 429", "HTTP 503", "malformed JSON response", "empty response", "timeout", "transport error",
    }  # fmt: skip
    assert not (tmp_path / "stage" / "failures.jsonl").exists()


def test_failures_are_recorded_then_retried_by_a_rerun(tmp_path):
    broken = FakeServer(
        lambda k, req, body: httpx.Response(500, text="boom") if "what is 1 " in str(body) else None
    )
    with pytest.raises(ReasonDistillError, match=r"1 of 4 samples failed.*HTTP 500: boom"):
        _run(tmp_path, broken, max_retries=2)
    assert broken.requested().count("1") == 3  # first try + 2 retries
    fails = [json.loads(x) for x in (tmp_path / "stage" / "failures.jsonl").read_text().splitlines()]
    assert fails == [{"example_id": "ex1", "sample": 0, "reason": "HTTP 500: boom", "attempts": 3}]
    assert {t.example_id for t in _traces(tmp_path)} == {"ex0", "ex2", "ex3"}

    healthy = FakeServer()
    _run(tmp_path, healthy)
    assert healthy.requested() == ["1"]  # only the failed sample; completed ones are never re-sent
    assert [t.example_id for t in _traces(tmp_path)] == ["ex0", "ex1", "ex2", "ex3"]  # canonical order
    assert not (tmp_path / "stage" / "failures.jsonl").exists()


def test_max_failed_fraction_lets_the_stage_complete(tmp_path):
    broken = FakeServer(
        lambda k, req, body: httpx.Response(400, text="bad") if "what is 2 " in str(body) else None
    )
    _run(tmp_path, broken, max_failed_fraction=0.25)
    assert broken.requested().count("2") == 1  # a 400 is not retried
    assert "HTTP 400" in (tmp_path / "stage" / "failures.jsonl").read_text()


def test_wrong_key_stops_at_once_without_printing_it(tmp_path, monkeypatch):
    monkeypatch.setenv("RD_UNIT_KEY", KEY)
    # A hostile server echoing the key must not get it into the message either.
    server = FakeServer(lambda k, req, body: httpx.Response(401, json={"error": {"message": f"bad {KEY}"}}))
    with pytest.raises(ReasonDistillError, match="HTTP 401") as e:
        _run(tmp_path, server, n_examples=20, api_key_env="RD_UNIT_KEY", concurrency=1)
    assert KEY not in str(e.value) and len(server.calls) == 1
    assert not list((tmp_path / "stage").glob("*.json*"))  # nothing done: no half-written artifact
    monkeypatch.delenv("RD_UNIT_KEY")
    with pytest.raises(ReasonDistillError, match="RD_UNIT_KEY is not set"):
        _run(tmp_path, server, api_key_env="RD_UNIT_KEY")


def test_server_down_aborts_after_consecutive_failures(tmp_path):
    def down_after_3(k, request, body):
        if k > 3:
            raise httpx.ConnectError("refused", request=request)

    with pytest.raises(ReasonDistillError, match="3 requests in a row failed"):
        _run(
            tmp_path,
            FakeServer(down_after_3),
            n_examples=10,
            max_retries=1,
            abort_after_failures=3,
            concurrency=1,
        )
    assert len(_traces(tmp_path)) == 3  # what was done is kept
    reasons = [
        json.loads(x)["reason"] for x in (tmp_path / "stage" / "failures.jsonl").read_text().splitlines()
    ]
    assert len(reasons) == 7 and reasons.count("not attempted") == 4  # every sample accounted for
    assert reasons[0] == "transport error: ConnectError"


def test_cache_answers_a_new_stage_dir_without_requests(tmp_path):
    first = FakeServer()
    _run(tmp_path, first, sub="a", n=2, temperature=1.0)
    again = FakeServer()
    _run(tmp_path, again, sub="b", n=2, temperature=1.0, concurrency=7)  # operational knob changed
    assert again.calls == []
    assert [t.model_dump() for t in _traces(tmp_path, "a")] == [
        t.model_dump() for t in _traces(tmp_path, "b")
    ]
    hotter = FakeServer()
    _run(tmp_path, hotter, sub="c", n=2, temperature=0.5)  # sampling changed: new requests
    assert len(hotter.calls) == 4


def test_truncated_completion_is_a_completed_trace_with_error(tmp_path):
    server = FakeServer(finish_reason="length")
    _run(tmp_path, server, max_tokens=5)
    traces = _traces(tmp_path)
    assert len(traces) == 4 and all(t.error == "truncated at max_tokens=5" for t in traces)
    again = FakeServer()
    _run(tmp_path, again, max_tokens=5)
    assert again.calls == []  # completed: not re-sent


def test_seeded_samples_are_requested_one_by_one_with_stable_seeds(tmp_path):
    server = FakeServer()
    _run(tmp_path, server, n_examples=2, n=3, seed=7, concurrency=1)
    seeds = [b["seed"] for _, b in server.calls]
    assert len(server.calls) == 6 and all(b["n"] == 1 for _, b in server.calls) and len(set(seeds)) == 6
    other = FakeServer()
    _run(tmp_path, other, n_examples=2, n=3, seed=7, concurrency=1, sub="x", cache=str(tmp_path / "c2"))
    assert [b["seed"] for _, b in other.calls] == seeds


def test_requests_spread_over_replicas(tmp_path):
    server = FakeServer()
    _run(tmp_path, server, n_examples=12, base_url=["http://r1/v1", "http://r2/v1"], concurrency=4)
    hosts = [req.url.host for req, _ in server.calls]
    assert hosts.count("r1") == hosts.count("r2") == 6


def test_think_template_rebuilds_the_think_block_from_a_servers_reasoning_field(tmp_path):
    """vLLM's and SGLang's reasoning parsers return the reasoning apart from the content; the think
    template puts it back into its block, also when a rerun builds the trace from the cache."""

    def split(call, request, body):
        i = int(re.search(r"what is (\d+)", body["messages"][-1]["content"]).group(1))
        msg = {"role": "assistant", "content": f"\n\n{2 * i}", "reasoning_content": f"\n{i} plus {i}\n"}
        return httpx.Response(200, json={"choices": [{"index": 0, "message": msg, "finish_reason": "stop"}]})

    _run(tmp_path, FakeServer(split), n_examples=2, template={"kind": "think"})
    t = _traces(tmp_path)[1]
    assert (t.completion, t.rationale, t.answer, t.score) == ("<think>\n1 plus 1\n</think>\n\n2", "1 plus 1", "2", 1.0)
    assert t.prompt == [{"role": "user", "content": examples(2)[1].question}]
    silent = FakeServer(lambda *a: httpx.Response(500))
    _run(tmp_path, silent, n_examples=2, sub="again", template={"kind": "think"})
    assert not silent.calls and _traces(tmp_path, "again") == _traces(tmp_path)
