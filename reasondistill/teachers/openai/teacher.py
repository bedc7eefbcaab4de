"""`openai` teacher: sample traces from any OpenAI-compatible server (vLLM, SGLang, hosted, `serve`).

Guarantees (docs/teachers.md):
- nothing completed is lost or re-sent: each response is appended and flushed to the request
  cache (cache.py) and its traces to the trace store as it arrives; a rerun builds
  traces for cached samples without a request and sends only the rest;
- a failure never crashes the stage: a request that still fails after its retries is listed
  with its reason in `<stage dir>/failures.jsonl` and is *not* a completed request, so a
  rerun retries it. Every (example, sample) ends either in traces.jsonl or in failures.jsonl.
  With more failures than `max_failed_fraction` allows, the stage stops with an error and
  stays partial, so the next run retries exactly the failed samples;
- a truncated completion (finish_reason "length") is a completed request: it becomes a trace
  with `error` set, as in the `hf` teacher;
- traces.jsonl ends in example order, then sample order, whatever order replies came in, so
  a resumed run's file equals an uninterrupted one's;
- the API key is read from the environment variable named by `api_key_env` when requests
  are sent, goes only into the Authorization header, and is scrubbed from recorded reasons.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import time
from contextlib import contextmanager
from pathlib import Path

from reasondistill.config import StageContext
from reasondistill.errors import ReasonDistillError
from reasondistill.records import Example, write_json_atomic
from reasondistill.teachers.base import TEACHERS, Teacher, Verify
from reasondistill.teachers.openai.cache import RequestCache, request_key
from reasondistill.teachers.openai.config import OpenAIConfig
from reasondistill.teachers.openai.http import RetryPolicy, scrub
from reasondistill.teachers.openai.records import FAILURES_FILE, TraceWriter, canonical_order
from reasondistill.teachers.openai.run import Aborted, Request, Stats, dispatch
from reasondistill.traces.store import TraceStore
from reasondistill.traces.templates import check_trained_template

USAGE_FILE = "openai_usage.json"  # the stage's request / token / cost summary, over all its runs


class OpenAITeacher(Teacher):
    Config = OpenAIConfig
    any_prompt = True

    def __init__(self, cfg: OpenAIConfig, ctx: StageContext | None = None, transport=None) -> None:
        super().__init__(cfg, ctx)
        self.transport = transport  # tests inject an httpx transport; None: real HTTP
        self.summary: dict = {}  # this run's summary, also written to USAGE_FILE

    @property
    def name(self) -> str:
        cfg = self.cfg
        return f"openai:serve:{cfg.serve.stage or cfg.serve.path}" if cfg.serve else f"openai:{cfg.model}"

    def model_id(self) -> str:
        """The model id requests carry (and cache keys include)."""
        if self.cfg.model:
            return self.cfg.model
        if self.ctx is None:
            raise ValueError("serve: {stage: ...} needs a StageContext to resolve the model")
        return self.cfg.serve.resolve(self.ctx)  # `reasondistill serve` names a model by its path

    def generate(self, examples: list[Example], store: TraceStore, verify: Verify) -> None:
        cfg, t0 = self.cfg, time.time()
        logging.getLogger("httpx").setLevel(logging.WARNING)  # one INFO line per request otherwise
        api_key = self._api_key()
        model, stage_dir = self.model_id(), store.path.parent
        if cfg.serve is not None:  # a model of this recipe: prompt it the way it was trained
            check_trained_template(model, cfg.template, f"openai teacher {self.name!r}")
        cache = RequestCache(self._cache_path(stage_dir))
        out = TraceWriter(self, store, verify, cache, stage_dir, api_key)
        stats, todo, aborted = Stats(), [], None
        try:
            for i, ex in enumerate(examples):
                fresh = []
                for s in range(cfg.n):
                    if store.has(ex.id, s):
                        continue
                    key = self._key(model, ex, s)
                    if key in cache:
                        out.trace(ex, s, cache.get(key))
                        out.cached += 1
                    else:
                        fresh.append(s)
                todo += self._requests(model, i, ex, fresh)
            if todo:
                with self._endpoints(stage_dir) as urls:
                    try:
                        asyncio.run(self._dispatch(todo, urls, api_key, stats, out, examples))
                    except Aborted as e:
                        aborted = scrub(str(e), api_key)
        finally:
            cache.close()
            out.close()
        if aborted and not store.done():
            # Stopped before anything was generated (bad key, URL, model): leave no artifact, so
            # the runner removes the stage directory.
            (stage_dir / FAILURES_FILE).unlink(missing_ok=True)
            raise ReasonDistillError(f"openai teacher: {aborted}")
        failed = out.outstanding(examples, cfg.n)
        canonical_order(store, examples)
        self._summarize(stats, out, failed, time.time() - t0, stage_dir)
        if aborted:
            raise ReasonDistillError(
                f"openai teacher: {aborted} (completed samples are kept; rerun to resume)"
            )
        total = len(examples) * cfg.n
        if len(failed) > cfg.max_failed_fraction * total:
            reason = next(iter(failed.values()))["reason"]
            raise ReasonDistillError(
                f"openai teacher: {len(failed)} of {total} samples failed after retries (e.g. {reason}); "
                f"see {stage_dir / FAILURES_FILE}. Rerun to retry only those, or allow some with "
                "max_failed_fraction"
            )

    # -- requests ---------------------------------------------------------------------------
    def _input(self, ex: Example):
        """The prompt (completions) or messages (chat) of a request: the template's prompt."""
        return self.template.prompt(ex.question)

    def _seed(self, ex: Example, sample: int) -> int | None:
        if self.cfg.seed is None:
            return None
        digest = hashlib.sha256(f"{self.cfg.seed}:{ex.id}:{sample}".encode()).digest()
        return int.from_bytes(digest[:4], "big") >> 1  # a 31-bit seed: every server accepts it

    def _key(self, model: str, ex: Example, sample: int) -> str:
        params = {**self.cfg.sampling(), "seed": self._seed(ex, sample)}
        return request_key(model, self.cfg.api, self._input(ex), params, sample)

    def _requests(self, model: str, index: int, ex: Example, samples: list[int]) -> list[Request]:
        cfg = self.cfg
        if not samples:
            return []
        # A seeded sample is requested alone, so its seed (and so its content) does not depend
        # on which other samples were still missing when the request was made.
        groups = [samples] if cfg.group_samples and cfg.seed is None else [[s] for s in samples]
        out = []
        for group in groups:
            payload = {
                "model": model,
                "max_tokens": cfg.max_tokens,
                "temperature": cfg.temperature,
                "top_p": cfg.top_p,
                "n": len(group),
                **cfg.extra_body,
            }
            payload["prompt" if cfg.api == "completions" else "messages"] = self._input(ex)
            if cfg.stop:
                payload["stop"] = cfg.stop
            if (seed := self._seed(ex, group[0])) is not None:
                payload["seed"] = seed
            if cfg.top_logprobs:
                if cfg.api == "chat":
                    payload.update(logprobs=True, top_logprobs=cfg.top_logprobs)
                else:
                    payload["logprobs"] = cfg.top_logprobs
            out.append(Request(index, group, payload, [self._key(model, ex, s) for s in group]))
        return out

    async def _dispatch(self, todo, urls, api_key, stats, out, examples) -> None:
        cfg = self.cfg
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        await dispatch(
            todo,
            urls=urls,
            headers=headers,
            api=cfg.api,
            timeout=cfg.timeout,
            concurrency=cfg.concurrency,
            policy=RetryPolicy(cfg.max_retries, cfg.backoff_base, cfg.backoff_max),
            abort_after=cfg.abort_after_failures,
            on_done=lambda req, reply: out.done(examples[req.example_index], req, reply),
            on_failed=lambda req, err: out.failed(examples[req.example_index], req, err),
            stats=stats,
            transport=self.transport,
        )

    @contextmanager
    def _endpoints(self, stage_dir: Path):
        serve = self.cfg.serve
        if serve is None:
            yield self.cfg.urls
            return
        from reasondistill.teachers.openai.serve import served_model

        with served_model(
            self.model_id(), stage_dir, api_key_env=self.cfg.api_key_env, max_batch_size=serve.max_batch_size,
            device=serve.device, threads=serve.threads, startup_timeout=serve.startup_timeout,
        ) as url:  # fmt: skip
            yield [url]

    # -- bookkeeping ------------------------------------------------------------------------
    def _api_key(self) -> str | None:
        name = self.cfg.api_key_env
        if name is None:
            return None
        value = os.environ.get(name)
        if not value:
            raise ReasonDistillError(f"api_key_env: environment variable {name} is not set or empty")
        return value

    def _cache_path(self, stage_dir: Path) -> Path:
        if self.cfg.cache:
            return Path(self.cfg.cache)
        # Beside the recipe's stage dirs, shared by them (see cache.py for why).
        root = self.ctx.out_dir.parent if self.ctx is not None else stage_dir
        return root / "_cache" / "openai_requests.jsonl"

    def _summarize(
        self, stats: Stats, out: TraceWriter, failed: dict, seconds: float, stage_dir: Path
    ) -> None:
        run = {
            "samples_new": out.new,
            "samples_cached": out.cached,
            "samples_failed": len(failed),
            **stats.as_dict(),
            "seconds": round(seconds, 2),
            "completion_tokens_per_s": round(stats.completion_tokens / seconds, 1) if seconds > 0 else None,
        }
        if self.cfg.price is not None:
            p = self.cfg.price
            cost = (stats.prompt_tokens * p.prompt + stats.completion_tokens * p.completion) / 1e6
            run["cost_usd"] = round(cost, 6)
        path = stage_dir / USAGE_FILE
        prev = _load_json(path) or {"runs": 0, "total": {}}
        total = dict(prev["total"])
        for k, v in run.items():
            if isinstance(v, int | float) and k not in ("samples_failed", "completion_tokens_per_s"):
                total[k] = round(total.get(k, 0) + v, 6)
        total["samples_failed"] = len(failed)  # outstanding now, not a sum over runs
        self.summary = {"runs": prev["runs"] + 1, "last_run": run, "total": total}
        stage_dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(path, self.summary)
        cost = f"; ${run['cost_usd']:.4f}" if "cost_usd" in run else ""
        (self.ctx.log if self.ctx else logging.getLogger("reasondistill")).info(
            "openai teacher: %d new, %d cached, %d failed samples in %.1fs; %d requests (%d retries); "
            "%d prompt + %d completion tokens%s",
            out.new, out.cached, len(failed), seconds, stats.attempts, run["retries"],
            stats.prompt_tokens, stats.completion_tokens, cost,
        )  # fmt: skip


def _load_json(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.exists() else None


TEACHERS.register(
    "openai", OpenAITeacher, description="any OpenAI-compatible server (vLLM, SGLang, reasondistill serve)"
)
