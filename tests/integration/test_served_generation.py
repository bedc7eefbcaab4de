"""The `openai` teacher through the CLI against a real `reasondistill serve` process, all on loopback.

- SIGKILL a generation stage midway, rerun it: the traces equal an uninterrupted run's, and no
  completed request is sent twice;
- a fault-injecting proxy (fault_proxy.py) breaks ~30% of requests: the stage still completes,
  and every example ends with its traces or a recorded failure reason;
- the quickstart runs with its teacher served by `reasondistill serve`.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
import yaml

from reasondistill.pipeline import plan
from reasondistill.recipe import load_recipe
from reasondistill.runner import run_plan
from reasondistill.teachers.openai.config import OpenAIConfig
from reasondistill.teachers.openai.serve import served_model
from reasondistill.teachers.openai.teacher import OpenAITeacher
from reasondistill.traces.store import TraceStore
from tests.integration.conftest import CLI, ROOT, cli_env, run_cli, stage_dirs
from tests.integration.fault_proxy import FAULTS, FaultProxy
from tests.unit.helpers_tiny import examples, fake_verify, tiny_model, tiny_tokenizer

N = 40  # questions in the pool


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """A tiny random Llama + its tokenizer, saved like any HF model."""
    d = tmp_path_factory.mktemp("served") / "model"
    tok = tiny_tokenizer()
    tok.save_pretrained(d)
    model = tiny_model(tok, seed=1)
    with torch.no_grad():
        # A random model's next-token distribution is nearly flat: top-2 logits can differ by
        # less than the float noise between batch compositions. Sharpening it keeps greedy
        # outputs independent of how the server happened to batch requests.
        model.lm_head.weight.mul_(100)
    model.save_pretrained(d)
    return d


@pytest.fixture(scope="module")
def server(model_dir, tmp_path_factory):
    """(root URL without /v1, model id) of one `reasondistill serve` process for the module."""
    with served_model(str(model_dir), tmp_path_factory.mktemp("serve_log"), max_batch_size=16) as url:
        yield url.removesuffix("/v1"), str(model_dir)


def write_recipe(tmp_path: Path, teacher: dict, name: str = "served") -> Path:
    recipe = {
        "name": name,
        "seed": 0,
        "stages": {
            "data": {
                "kind": "data",
                "task": "arithmetic",
                "config": {"terms": 2, "digits": 2},
                "splits": {"pool": {"n": N}},
            },  # fmt: skip
            "traces": {
                "kind": "generate",
                "data": {"stage": "data", "split": "pool"},
                "teacher": {
                    "kind": "openai",
                    "api": "completions",
                    "temperature": 0,
                    "n": 1,
                    "max_tokens": 16,
                    **teacher,
                },
            },  # fmt: skip
        },
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def traces_dir(runs: Path, name: str = "served") -> Path:
    return stage_dirs(runs, name)["traces"]


def _lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def test_sigkill_midway_then_resume_equals_an_uninterrupted_run(tmp_path, server):
    root, model = server
    # The proxy only slows each request (50 ms) so that the kill lands mid-stage.
    with FaultProxy(root, rate=0.0, delay=0.05) as proxy:
        recipe = write_recipe(tmp_path, {"base_url": proxy.base_url, "model": model, "concurrency": 2})
        # The uninterrupted reference runs in-process (same stages, no interpreter start-up).
        recipe_obj, _ = load_recipe(recipe, [f"runs_dir={tmp_path / 'ref'}"])
        run_plan(recipe_obj, plan(recipe_obj), echo=lambda *_: None)
        assert proxy.forwarded["/v1/completions"] == N
        reference = (traces_dir(tmp_path / "ref") / "traces.jsonl").read_text()

        runs = tmp_path / "runs"
        proc = subprocess.Popen([*CLI, "run", str(recipe), "--runs-dir", str(runs)], cwd=ROOT, env=cli_env(),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        deadline = time.monotonic() + 120
        traces = None
        while time.monotonic() < deadline and proc.poll() is None:
            found = list(runs.glob("served/traces-*/traces.jsonl"))
            if found and _lines(found[0]) >= 8:
                traces = found[0]
                break
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        assert traces is not None, "the stage never got going"
        kept = _lines(traces)
        assert 8 <= kept < N and not (traces.parent / "_COMPLETE").exists()
        cached = _lines(runs / "served" / "_cache" / "openai_requests.jsonl")
        proxy.wait_idle()  # requests the killed run left in flight still reach the server
        sent_before = proxy.forwarded["/v1/completions"]

        run_cli("run", str(recipe), "--runs-dir", str(runs))
        resent = proxy.forwarded["/v1/completions"] - sent_before
    assert resent == N - cached  # every completed request was answered from disk, none re-sent
    assert traces.read_text() == reference  # same traces, same order: nothing missing, no duplicates
    rows = [json.loads(x) for x in reference.splitlines()]
    assert sorted((r["example_id"], r["sample"]) for r in rows) == sorted(
        {(r["example_id"], 0) for r in rows}
    )
    assert len(rows) == N


def test_fault_injection_every_example_ends_with_traces_or_a_reason(tmp_path, server):
    root, model = server
    with FaultProxy(root, rate=0.3, seed=1, hang=2.5, retry_after="1") as proxy:
        teacher = {"base_url": proxy.base_url, "model": model, "concurrency": 4, "timeout": 1.5,
                   "max_retries": 8, "backoff_base": 0.05, "backoff_max": 1.0}  # fmt: skip
        recipe = write_recipe(tmp_path, teacher)
        proc = run_cli("run", str(recipe), "--runs-dir", str(tmp_path / "runs"), check=False, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    assert set(proxy.injected) == set(FAULTS), proxy.injected  # every kind of fault was hit
    out = traces_dir(tmp_path / "runs")
    got = {(t.example_id, t.sample) for t in TraceStore(out / "traces.jsonl").read()}
    failed = set()
    if (out / "failures.jsonl").exists():
        failed = {(r["example_id"], r["sample"]) for r in map(json.loads, (out / "failures.jsonl").open())}
    ids = [
        json.loads(x)["id"] for x in (stage_dirs(tmp_path / "runs", "served")["data"] / "pool.jsonl").open()
    ]
    assert got | failed == {(i, 0) for i in ids} and not got & failed
    usage = json.loads((out / "openai_usage.json").read_text())["last_run"]
    assert usage["retries"] >= sum(proxy.injected.values()) - usage["requests_failed"]
    assert {"HTTP 429", "HTTP 500", "timeout", "empty response"} <= set(usage["failed_attempts_by_reason"])


def test_failures_are_recorded_per_example_when_nothing_gets_through(tmp_path, server):
    root, model = server
    faults = ("429", "500", "malformed", "truncated", "empty")  # no hang: keep the test fast
    with FaultProxy(root, rate=1.0, faults=faults, retry_after="0") as proxy:
        cfg = OpenAIConfig(kind="openai", base_url=proxy.base_url, model=model, api="completions", temperature=0,
                           max_tokens=4, max_retries=1, backoff_base=0, max_failed_fraction=1.0,
                           abort_after_failures=None, cache=str(tmp_path / "cache.jsonl"))  # fmt: skip
        with TraceStore(tmp_path / "stage" / "traces.jsonl") as store:
            OpenAITeacher(cfg).generate(examples(10), store, fake_verify)
    assert store.read() == []
    rows = [json.loads(x) for x in (tmp_path / "stage" / "failures.jsonl").read_text().splitlines()]
    assert [r["example_id"] for r in rows] == [f"ex{i}" for i in range(10)]
    assert all(r["reason"] and r["attempts"] == 2 for r in rows)


def test_quickstart_with_its_teacher_served(tmp_path):
    runs = tmp_path / "runs"
    proc = run_cli("run", "recipes/quickstart_served.yaml", "--smoke", "--runs-dir", str(runs))
    dirs = stage_dirs(runs, "quickstart_served-smoke")
    assert all((d / "_COMPLETE").exists() for d in dirs.values())
    traces = TraceStore(dirs["traces"] / "traces.jsonl").read()
    assert len(traces) == 32 and all(t.teacher == "openai:serve:teacher" for t in traces)
    assert "serving" in (dirs["traces"] / "serve.log").read_text()
    assert "openai teacher: 32 new" in proc.stderr + proc.stdout


def test_chat_quickstart_with_its_teacher_served_over_the_chat_api(tmp_path):
    """The chat quickstart's teacher behind `reasondistill serve`: the `openai` teacher sends chat
    messages to /v1/chat/completions, the server renders them with the model's own (ChatML) chat
    template, and the traces keep the messages."""
    runs = tmp_path / "runs"
    teacher = ("{kind: openai, serve: {stage: teacher}, template: {kind: chat}, n: 1, temperature: 0.7, "
               "max_tokens: 64, concurrency: 8}")  # fmt: skip
    run_cli("run", "recipes/quickstart_chat.yaml", "--smoke", "--runs-dir", str(runs), f"stages.traces.teacher={teacher}")
    dirs = stage_dirs(runs, "quickstart_chat-smoke")
    assert all((d / "_COMPLETE").exists() for d in dirs.values())
    traces = TraceStore(dirs["traces"] / "traces.jsonl").read()
    assert len(traces) == 32 and all(t.teacher == "openai:serve:teacher" for t in traces)
    assert all(t.prompt == [{"role": "user", "content": t.prompt[-1]["content"]}] for t in traces)
    from transformers import AutoTokenizer

    from reasondistill.models.tokenize import encode_prompt

    tok = AutoTokenizer.from_pretrained(str(dirs["teacher"] / "model"))
    # The server's prompt is the training encoding of the same messages (usage counts its tokens).
    assert all(t.usage["prompt_tokens"] == len(encode_prompt(tok, t.prompt)) for t in traces)
