"""The model side of `reasondistill serve`: request batching and batched generation with log-probs.

Concurrent requests are collected for a few milliseconds (`batch_wait_ms`) into one queue
drain; requests that can share a `generate` call (same temperature and top-p, no seed) are
run as one left-padded batch, each row stopping at its own `max_tokens` and stop strings.
Generation runs in a worker thread so the event loop keeps accepting requests meanwhile.

A request with a `seed` runs alone: batch composition would otherwise change its random
stream, and a seed promises the same sample every time. A streamed request (`stream: true`)
shares its batch like any other: it gets each decode step's token through a callback
(_RowStreamer), and stream.py turns those into text deltas.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import torch
from transformers import StoppingCriteria, StoppingCriteriaList
from transformers.generation.streamers import BaseStreamer

from reasondistill.evaluate.generate import left_pad
from reasondistill.models.tokenize import eos_ids


@dataclass(frozen=True)
class GenParams:
    max_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    top_logprobs: int | None = None  # None: no log-probs; 0: the chosen token's only
    seed: int | None = None


@dataclass
class TokenLogprob:
    token: str
    logprob: float
    top: list[tuple[str, float]]  # the top_logprobs most likely tokens at this position


@dataclass
class Output:
    text: str
    finish_reason: str  # "stop" (EOS or a stop string) or "length" (max_tokens)
    completion_tokens: int  # decode steps used, the EOS included (as vLLM counts them)
    prompt_tokens: int
    logprobs: list[TokenLogprob] | None = None


@dataclass
class _Job:
    prompts: list[list[int]]
    n: int
    params: GenParams
    future: asyncio.Future
    outputs: list[Output] = field(default_factory=list)
    # Streaming: called from the generate thread with (row of this job, new token id) at every step.
    on_token: Callable[[int, int], None] | None = None

    @property
    def rows(self) -> int:
        return len(self.prompts) * self.n


class _RowDone(StoppingCriteria):
    """Per-row stop: at the row's own max_tokens, or once its new text holds one of its stop strings."""

    def __init__(self, tokenizer, width: int, limits: list[int], stops: list[tuple[str, ...]]) -> None:
        self.tokenizer, self.width, self.stops = tokenizer, width, stops
        self.limits = torch.tensor(limits)
        # A stop string of L characters spans at most 4L byte-level tokens: decode only that tail
        # instead of the whole row at every step (quadratic in length otherwise).
        self.tail = [4 * max(map(len, s)) + 4 if s else 0 for s in stops]

    def __call__(self, input_ids: torch.LongTensor, scores, **kwargs) -> torch.BoolTensor:
        new = input_ids.shape[1] - self.width
        done = self.limits.to(input_ids.device) <= new
        for i, stops in enumerate(self.stops):
            if stops and not done[i]:
                text = self.tokenizer.decode(
                    input_ids[i, max(self.width, input_ids.shape[1] - self.tail[i]) :]
                )
                done[i] = any(s in text for s in stops)
        return done


class _RowStreamer(BaseStreamer):
    """Hands each decode step's new token of every streaming row to its job's `on_token`.

    transformers calls put() once with the prompt ids, then once per step with the [B] new
    tokens (a row that already stopped gets the pad id: the consumer cuts at its own end)."""

    def __init__(self, rows: list[tuple[Callable[[int, int], None], int] | None]) -> None:
        self.rows, self.prompt_seen = rows, False

    def put(self, value) -> None:
        if not self.prompt_seen:
            self.prompt_seen = True
            return
        for token, row in zip(value.reshape(-1).tolist(), self.rows, strict=True):
            if row is not None:
                row[0](row[1], token)

    def end(self) -> None:
        pass


class Engine:
    """Batched generation for one model. `await engine.generate(...)` from the server's event loop."""

    def __init__(self, model, tokenizer, max_batch_size: int = 32, batch_wait_ms: float = 5.0) -> None:
        self.model, self.tokenizer = model.eval(), tokenizer
        self.max_batch_size, self.batch_wait = max_batch_size, batch_wait_ms / 1000
        self.eos = eos_ids(model, tokenizer)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.eos[0]
        self.context = getattr(model.config, "max_position_embeddings", None)
        self.stats = {"requests": 0, "generate_calls": 0, "rows": 0}
        self._queue: asyncio.Queue[_Job] | None = None
        self._task: asyncio.Task | None = None
        # One dedicated thread runs every generate call: torch's OpenMP pool is per calling
        # thread, and rotating over the default executor's threads starts competing pools
        # that spin on the same cores (20x slower single requests on a 2-core machine).
        self._worker = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="generate")

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def generate(
        self, prompts: list[list[int]], n: int, params: GenParams, on_token: Callable[[int, int], None] | None = None
    ) -> list[Output]:
        """n outputs per prompt, prompt-major (the samples of prompt i at [i * n, (i + 1) * n)).

        on_token(row, token_id): called from the generation thread at every decode step of each
        of this request's rows (streaming); the returned Outputs stay the authoritative result."""
        if self._queue is None:
            raise RuntimeError("Engine.start() was not awaited")
        job = _Job(prompts, n, params, asyncio.get_running_loop().create_future(), on_token=on_token)
        self.stats["requests"] += 1
        await self._queue.put(job)
        return await job.future

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            jobs = [await self._queue.get()]
            deadline = loop.time() + self.batch_wait
            while sum(j.rows for j in jobs) < self.max_batch_size:
                try:
                    jobs.append(await asyncio.wait_for(self._queue.get(), max(0.0, deadline - loop.time())))
                except TimeoutError:
                    break
            for group in _groups(jobs):
                try:
                    await loop.run_in_executor(self._worker, self.run_jobs, group)
                except Exception as e:  # a failed batch fails its requests, never the server
                    for j in group:
                        if not j.future.done():
                            j.future.set_exception(e)
                    continue
                for j in group:
                    if not j.future.done():  # the client may have gone away
                        j.future.set_result(j.outputs)

    def run_jobs(self, jobs: list[_Job]) -> None:
        """Generate every row of `jobs` (same temperature/top-p/seed) in batches of max_batch_size."""
        rows = [(j, k, p) for j in jobs for k, p in enumerate(p for p in j.prompts for _ in range(j.n))]
        first = jobs[0].params
        for start in range(0, len(rows), self.max_batch_size):
            chunk = rows[start : start + self.max_batch_size]
            # A seeded request split over several chunks must not repeat its samples per chunk.
            shared = first if first.seed is None else replace(first, seed=first.seed + start)
            streams = [(j.on_token, k) if j.on_token is not None else None for j, k, _ in chunk]
            outs = self._generate([p for _, _, p in chunk], [j.params for j, _, _ in chunk], shared, streams)
            for (j, _, _), out in zip(chunk, outs, strict=True):
                j.outputs.append(out)

    @torch.inference_mode()
    def _generate(
        self, prompts: list[list[int]], params: list[GenParams], shared: GenParams, streams: list | None = None
    ) -> list[Output]:
        self.stats["generate_calls"] += 1
        self.stats["rows"] += len(prompts)
        device = self.model.device
        input_ids, mask = left_pad(prompts, self.pad_id)
        input_ids, mask = input_ids.to(device), mask.to(device)
        width = input_ids.shape[1]
        limits = [p.max_tokens for p in params]
        want_lp = any(p.top_logprobs is not None for p in params)
        knobs = {"do_sample": shared.temperature > 0}
        if shared.temperature > 0:
            knobs.update(temperature=shared.temperature, top_p=shared.top_p, top_k=0)
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            if shared.seed is not None:
                torch.manual_seed(shared.seed)
            out = self.model.generate(
                input_ids=input_ids,
                attention_mask=mask,
                max_new_tokens=max(limits),
                min_new_tokens=0,
                num_beams=1,
                repetition_penalty=1.0,
                eos_token_id=self.eos,
                pad_token_id=self.pad_id,
                stopping_criteria=StoppingCriteriaList(
                    [_RowDone(self.tokenizer, width, limits, [p.stop for p in params])]
                ),
                use_cache=True,
                return_dict_in_generate=True,
                output_logits=want_lp,
                streamer=_RowStreamer(streams) if streams and any(streams) else None,
                **knobs,
            )
        new = out.sequences[:, width:]
        # Raw (unwarped) log-probs, as vLLM reports by default; one [B, V] step at a time.
        steps = [torch.log_softmax(s.float(), dim=-1) for s in out.logits] if want_lp else []
        results = []
        for i, (ids, p) in enumerate(zip(new.tolist(), params, strict=True)):
            out_i = self._finish(ids, p, len(prompts[i]))
            if p.top_logprobs is not None:
                out_i.logprobs = self._logprobs(steps, i, ids[: out_i.completion_tokens], p.top_logprobs)
            results.append(out_i)
        return results

    def _finish(self, ids: list[int], p: GenParams, prompt_tokens: int) -> Output:
        """Where a row really ended: EOS, the token completing a stop string, or max_tokens."""
        ids = ids[: p.max_tokens]  # rows stopped early by _RowDone are padded after their limit
        end = next((i for i, t in enumerate(ids) if t in self.eos), None)
        text_ids = ids[:end] if end is not None else ids
        text = self.tokenizer.decode(text_ids, skip_special_tokens=True)
        hits = [text.index(s) for s in p.stop if s in text]
        if hits:
            lo, hi = 1, len(text_ids)  # smallest prefix whose text holds a stop string (monotone)
            while lo < hi:
                mid = (lo + hi) // 2
                t = self.tokenizer.decode(text_ids[:mid], skip_special_tokens=True)
                lo, hi = (lo, mid) if any(s in t for s in p.stop) else (mid + 1, hi)
            return Output(text[: min(hits)], "stop", lo, prompt_tokens)
        if end is not None:
            return Output(text, "stop", end + 1, prompt_tokens)
        return Output(text, "length", len(ids), prompt_tokens)

    def _logprobs(self, steps: list[torch.Tensor], row: int, ids: list[int], k: int) -> list[TokenLogprob]:
        out = []
        for t, tid in enumerate(ids):
            if tid in self.eos:
                break  # the EOS is not part of the text
            lp = steps[t][row]
            top = []
            if k > 0:
                vals, idx = lp.topk(min(k, lp.shape[-1]))
                top = [(self._token(j), v) for j, v in zip(idx.tolist(), vals.tolist(), strict=True)]
            out.append(TokenLogprob(self._token(tid), float(lp[tid]), top))
        return out

    @functools.lru_cache(maxsize=65536)  # noqa: B019 (one engine per server process)
    def _token(self, tid: int) -> str:
        return self.tokenizer.decode([tid])


def _groups(jobs: list[_Job]) -> list[list[_Job]]:
    """Jobs that can share one generate call: same temperature and top-p; a seeded job alone."""
    groups: dict[tuple, list[_Job]] = {}
    for j in jobs:
        p = j.params
        key = (p.temperature,) if p.temperature == 0 else (p.temperature, p.top_p)
        if p.seed is not None:
            key = ("seed", id(j))
        groups.setdefault(key, []).append(j)
    return list(groups.values())
