"""`reasondistill serve`: the OpenAI-compatible app on a tiny model, served by uvicorn in a thread."""

from __future__ import annotations

import concurrent.futures

import httpx
import openai
import pytest

from reasondistill.evaluate.generate import generate_batch
from reasondistill.models.tokenize import encode_prompt
from reasondistill.serve.app import APIError, chat_prompt_ids
from reasondistill.serve.engine import Engine
from reasondistill.serve.server import ServerThread
from tests.unit.helpers_tiny import memorized_model, tiny_tokenizer

Q = "what is 2 + 3?"
PROMPT = f"Question: {Q}\n"
GOLD = "Reasoning: 2 plus 3 is 5\nAnswer: 5"
# The served model's own chat template: it renders the last user turn as the text prompt the
# model was trained on (so chat and completions requests meet the same ids), ignores system
# turns, and refuses messages that do not end with the user's.
CHAT_TEMPLATE = (
    "{% if messages[-1]['role'] != 'user' %}{{ raise_exception('the last message must be the user turn') }}"
    "{% endif %}{{ bos_token + 'Question: ' + messages[-1]['content'] + '\\n' }}"
)


@pytest.fixture(scope="module")
def tok():
    t = tiny_tokenizer()
    t.chat_template = CHAT_TEMPLATE
    return t


@pytest.fixture(scope="module")
def model(tok):
    return memorized_model(tok, [(PROMPT, GOLD), ("Question: reverse abc\n", "Answer: cba")], steps=120)


@pytest.fixture(scope="module")
def srv(model, tok):
    engine = Engine(model, tok, max_batch_size=16, batch_wait_ms=20)
    with ServerThread(engine, "tiny") as s:
        s.engine = engine
        yield s


@pytest.fixture(scope="module")
def http(srv):
    with httpx.Client(base_url=srv.base_url, timeout=30) as c:
        yield c


def _complete(http, **kw) -> dict:
    r = http.post("/completions", json={"model": "tiny", "prompt": PROMPT, "temperature": 0, **kw})
    assert r.status_code == 200, r.text
    return r.json()


def test_greedy_completion_matches_local_generation_and_finish_reasons(http, model, tok):
    ref = generate_batch(model, tok, [encode_prompt(tok, PROMPT)], max_new_tokens=40)[0]
    assert ref.text == GOLD and ref.finished
    body = _complete(http, max_tokens=40)
    (c,) = body["choices"]
    assert (c["text"], c["finish_reason"]) == (GOLD, "stop")
    assert body["usage"]["completion_tokens"] == ref.num_tokens  # EOS counted, as vLLM does
    assert body["usage"]["prompt_tokens"] == len(encode_prompt(tok, PROMPT))
    short = _complete(http, max_tokens=3)["choices"][0]
    assert short["finish_reason"] == "length" and GOLD.startswith(short["text"])
    stopped = _complete(http, max_tokens=40, stop=["\n", "zzz"])
    assert stopped["choices"][0]["text"] == "Reasoning: 2 plus 3 is 5"
    assert stopped["choices"][0]["finish_reason"] == "stop"
    assert stopped["usage"]["completion_tokens"] < body["usage"]["completion_tokens"]


def test_logprobs_in_both_apis(http):
    lp = _complete(http, max_tokens=40, logprobs=2)["choices"][0]["logprobs"]
    assert "".join(lp["tokens"]) == GOLD
    assert all(x <= 0 for x in lp["token_logprobs"]) and all(len(t) == 2 for t in lp["top_logprobs"])
    for tok_, val, top in zip(lp["tokens"], lp["token_logprobs"], lp["top_logprobs"], strict=True):
        assert max(top.values()) == pytest.approx(val, abs=1e-5) and tok_ in top  # greedy picks the top-1
    chat = http.post("/chat/completions", json={
        "model": "tiny", "messages": [{"role": "system", "content": "ignored"}, {"role": "user", "content": Q}],
        "temperature": 0, "logprobs": True, "top_logprobs": 3, "max_tokens": 40,
    }).json()  # fmt: skip
    (c,) = chat["choices"]
    # The chat template renders the last user message as the model's training prompt.
    assert c["message"] == {"role": "assistant", "content": GOLD}
    content = c["logprobs"]["content"]
    assert "".join(t["token"] for t in content) == GOLD
    assert all(len(t["top_logprobs"]) == 3 and t["bytes"] == list(t["token"].encode()) for t in content)


def test_n_samples_seed_and_usage(http):
    body = _complete(http, max_tokens=12, n=4, temperature=1.5, seed=3)
    assert [c["index"] for c in body["choices"]] == [0, 1, 2, 3]
    assert body["usage"]["completion_tokens"] <= 4 * 12
    again = _complete(http, max_tokens=12, n=4, temperature=1.5, seed=3)
    assert [c["text"] for c in again["choices"]] == [c["text"] for c in body["choices"]]
    several = http.post("/completions", json={"model": "tiny", "prompt": [PROMPT, "Question: reverse abc\n"],
                                             "temperature": 0, "max_tokens": 20}).json()  # fmt: skip
    assert [c["text"] for c in several["choices"]] == [GOLD, "Answer: cba"]


def test_concurrent_requests_are_batched(srv, http):
    before = dict(srv.engine.stats)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        bodies = list(pool.map(lambda _: _complete(http, max_tokens=40), range(8)))
    assert all(b["choices"][0]["text"] == GOLD for b in bodies)  # batching changes no greedy output
    calls = srv.engine.stats["generate_calls"] - before["generate_calls"]
    assert srv.engine.stats["requests"] - before["requests"] == 8 and calls < 8


def test_errors_are_openai_shaped(http):
    r = http.post("/completions", json={"model": "other", "prompt": PROMPT})
    assert r.status_code == 404 and "does not exist" in r.json()["error"]["message"]
    r = http.post("/completions", json={"model": "tiny", "prompt": PROMPT, "max_tokens": 10_000})
    assert r.status_code == 400 and "maximum context length" in r.json()["error"]["message"]
    r = http.post(
        "/chat/completions", json={"model": "tiny", "messages": [{"role": "system", "content": "x"}]}
    )
    assert r.status_code == 400 and "the last message must be the user turn" in r.json()["error"]["message"]


@pytest.mark.parametrize(
    "extra, param, message",
    [
        ({"best_of": 3}, "best_of", "best_of=3 is not supported"),
        ({"tools": [{"type": "function", "function": {"name": "f"}}]}, "tools", "tools=[{"),
        ({"presence_penalty": 0.5}, "presence_penalty", "presence_penalty=0.5 is not supported"),
        ({"logit_bias": {"50256": -100}}, "logit_bias", "logit_bias="),
        ({"echo": True}, "echo", "echo=True is not supported"),
        ({"top_k": 5}, "top_k", "unknown parameter 'top_k'"),
        ({"temprature": 0.5}, "temprature", "unknown parameter 'temprature'"),
        ({"stream": True, "logprobs": 1}, "logprobs", "logprobs with stream: true is not supported"),
        ({"stream_options": {"include_usage": True}}, "stream_options", "only with stream: true"),
    ],
)
def test_unimplemented_parameters_are_a_400_naming_them(http, extra, param, message):
    r = http.post("/completions", json={"model": "tiny", "prompt": PROMPT, **extra})
    err = r.json()["error"]
    assert r.status_code == 400 and err["param"] == param and message in err["message"], err


def test_neutral_values_of_unimplemented_parameters_are_accepted(http):
    body = _complete(http, max_tokens=40, presence_penalty=0, frequency_penalty=0.0, logit_bias={}, best_of=1,
                     user="u1", echo=False)  # fmt: skip
    assert body["choices"][0]["text"] == GOLD
    r = http.post("/chat/completions", json={"model": "tiny", "messages": [{"role": "user", "content": Q}],
                                             "tools": [], "tool_choice": "none", "temperature": 0, "max_tokens": 40})  # fmt: skip
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == GOLD


def test_streaming_with_the_openai_client_joins_to_the_unstreamed_answer(srv, http):
    client = openai.OpenAI(base_url=srv.base_url, api_key="unused", max_retries=0)
    chunks = list(client.completions.create(model="tiny", prompt=PROMPT, temperature=0, max_tokens=40,
                                            stream=True, stream_options={"include_usage": True}))  # fmt: skip
    texts = [c.choices[0].text for c in chunks if c.choices]
    assert "".join(texts) == GOLD and len([t for t in texts if t]) > 3  # token by token, not one blob
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == _complete(http, max_tokens=40)["usage"]["completion_tokens"]
    # Stop strings are never streamed past, not even partly: held back until they cannot match.
    stopped = client.completions.create(model="tiny", prompt=PROMPT, temperature=0, max_tokens=40, stop=["is 5"],
                                        stream=True)  # fmt: skip
    assert "".join(c.choices[0].text for c in stopped) == "Reasoning: 2 plus 3 "
    stream = client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": Q}], temperature=0,
                                            max_tokens=40, n=2, stream=True)  # fmt: skip
    by_choice: dict[int, list[str]] = {0: [], 1: []}
    finish = {}
    for c in stream:
        for ch in c.choices:
            by_choice[ch.index].append(ch.delta.content or "")
            finish[ch.index] = ch.finish_reason or finish.get(ch.index)
    assert ["".join(v) for v in by_choice.values()] == [GOLD, GOLD] and finish == {0: "stop", 1: "stop"}
    short = client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": Q}], temperature=0,
                                           max_tokens=3, stream=True)  # fmt: skip
    parts = [(c.choices[0].delta.content or "", c.choices[0].finish_reason) for c in short]
    assert GOLD.startswith("".join(p for p, _ in parts)) and parts[-1][1] == "length"


def test_streamed_sse_wire_format(http):
    with http.stream("POST", "/completions", json={"model": "tiny", "prompt": PROMPT, "temperature": 0,
                                                   "max_tokens": 40, "stream": True}) as r:  # fmt: skip
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        events = [line for line in r.iter_lines() if line]
    assert all(e.startswith("data: ") for e in events) and events[-1] == "data: [DONE]"


def test_access_log_is_visible_at_the_default_log_level(model, tok):
    import logging

    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    access = logging.getLogger("uvicorn.access")
    server = ServerThread(Engine(model, tok), "tiny", access_log=True)  # configures uvicorn's loggers
    access.addHandler(handler)
    try:
        with server as s, httpx.Client(base_url=s.base_url) as c:
            assert c.get("/models").status_code == 200
    finally:
        access.removeHandler(handler)
    assert any("/v1/models" in r.getMessage() and "200" in r.getMessage() for r in records), records


def test_chat_prompts_use_the_models_chat_template_or_are_refused(tok):
    msgs = [{"role": "user", "content": [{"type": "text", "text": Q}]}]  # a content-parts message
    assert chat_prompt_ids(tok, msgs) == encode_prompt(tok, PROMPT)
    bare = tiny_tokenizer()  # no chat template: chat requests cannot be rendered
    with pytest.raises(APIError, match="has no chat template.*/v1/completions") as e:
        chat_prompt_ids(bare, msgs)
    assert e.value.status == 400


def test_api_key_is_required_when_set(model, tok):
    with (
        ServerThread(Engine(model, tok), "tiny", api_key="s3cret") as s,
        httpx.Client(base_url=s.base_url) as c,
    ):
        assert c.get("/models").status_code == 401
        assert c.get("/models", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert c.get("/models", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert httpx.get(f"http://127.0.0.1:{s.port}/health").status_code == 200


def test_the_official_openai_client_works(srv):
    client = openai.OpenAI(base_url=srv.base_url, api_key="unused", max_retries=0)
    assert [m.id for m in client.models.list().data] == ["tiny"]
    chat = client.chat.completions.create(
        model="tiny", messages=[{"role": "user", "content": Q}], temperature=0, max_tokens=40,
        logprobs=True, top_logprobs=2,
    )  # fmt: skip
    assert chat.choices[0].message.content == GOLD and chat.choices[0].finish_reason == "stop"
    assert chat.choices[0].logprobs.content[0].top_logprobs[0].logprob <= 0
    comp = client.completions.create(model="tiny", prompt=PROMPT, temperature=0, max_tokens=40, logprobs=1)
    assert comp.choices[0].text == GOLD and comp.usage.completion_tokens > 0


def test_cli_registers_serve():
    from reasondistill.cli import main

    with pytest.raises(SystemExit) as e:
        main(["serve", "--help"])
    assert e.value.code == 0
