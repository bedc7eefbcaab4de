"""The async part of the `openai` teacher: a pool of `concurrency` workers sending requests.

Each worker takes the next request, sends it under the retry policy (http.py) to the
least-busy server, and hands the outcome to `on_done` / `on_failed` on the event loop's
thread, so cache, trace and failure writes never interleave. A 401/403/404 stops every
worker at once (the configuration is wrong); so do `abort_after` requests in a row failing
for good (the server is down).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx

from reasondistill.teachers.openai.http import (
    FatalRequestError,
    Reply,
    RequestFailed,
    RetryPolicy,
    post_with_retries,
)

log = logging.getLogger("reasondistill")


@dataclass
class Request:
    example_index: int
    samples: list[int]  # sample indices answered by the choices of this one request (n = len)
    payload: dict[str, Any]
    keys: list[str]  # cache key of each sample


@dataclass
class Stats:
    attempts: int = 0  # HTTP requests sent, retries included
    answered: int = 0  # requests that got a usable reply
    gave_up: int = 0  # requests that failed for good
    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasons: Counter = field(default_factory=Counter)  # failed attempts by kind

    def as_dict(self) -> dict:
        return {
            "requests_sent": self.attempts,
            "requests_answered": self.answered,
            "requests_failed": self.gave_up,
            "retries": self.attempts - self.answered - self.gave_up,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "failed_attempts_by_reason": dict(self.reasons.most_common()),
        }


class Aborted(Exception):
    """The stage must stop: a fatal response, or too many requests in a row failed."""


def reason_kind(reason: str) -> str:
    """'HTTP 500: boom' -> 'HTTP 500'; 'malformed JSON response (12 bytes)' -> 'malformed JSON response'."""
    return reason.split(":")[0].split(" (")[0].split(" after ")[0]


async def dispatch(
    requests: Iterable[Request],
    *,
    urls: list[str],
    headers: dict[str, str],
    api: str,
    timeout: float,
    concurrency: int,
    policy: RetryPolicy,
    abort_after: int | None,
    on_done: Callable[[Request, Reply], None],
    on_failed: Callable[[Request, RequestFailed], None],
    stats: Stats,
    transport: httpx.AsyncBaseTransport | None = None,
    seed: int = 0,
) -> None:
    """Send every request; returns when all are answered or failed. Raises Aborted."""
    inflight = [0] * len(urls)
    turn = itertools.count()

    def pick():
        # Least-busy replica; ties rotate so equal replicas share the load.
        start = next(turn) % len(urls)
        i = min(range(len(urls)), key=lambda j: (inflight[j], (j - start) % len(urls)))
        inflight[i] += 1
        return urls[i], lambda: inflight.__setitem__(i, inflight[i] - 1)

    def count() -> None:
        stats.attempts += 1

    def failed_attempt(e: RequestFailed) -> None:
        stats.reasons[reason_kind(e.reason)] += 1

    todo = iter(requests)
    in_a_row = 0
    rng = random.Random(seed)  # jitter only: never affects what is generated
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    last_log = time.monotonic()

    async def worker() -> None:
        nonlocal in_a_row, last_log
        for req in todo:
            try:
                reply = await post_with_retries(
                    client, pick, req.payload, headers, timeout=timeout, api=api,
                    n=len(req.samples), policy=policy, rng=rng, on_attempt=count, on_error=failed_attempt,
                )  # fmt: skip
            except FatalRequestError as e:
                raise Aborted(
                    f"the server refused the request ({e}); check base_url, model and api_key_env"
                ) from None
            except RequestFailed as e:
                stats.gave_up += 1
                on_failed(req, e)
                in_a_row += 1
                if abort_after is not None and in_a_row >= abort_after:
                    raise Aborted(
                        f"{in_a_row} requests in a row failed (last: {e.reason}); is the server up?"
                    ) from None
                continue
            stats.answered += 1
            stats.prompt_tokens += reply.usage["prompt_tokens"]
            stats.completion_tokens += reply.usage["completion_tokens"]
            in_a_row = 0
            on_done(req, reply)
            if time.monotonic() - last_log > 30:  # hours-long runs need a heartbeat
                last_log = time.monotonic()
                log.info("openai teacher: %d requests answered, %d failed", stats.answered, stats.gave_up)

    async with httpx.AsyncClient(limits=limits, timeout=timeout, transport=transport) as client:
        try:
            async with asyncio.TaskGroup() as tg:
                for _ in range(concurrency):
                    tg.create_task(worker())
        except* Aborted as eg:
            raise eg.exceptions[0] from None
