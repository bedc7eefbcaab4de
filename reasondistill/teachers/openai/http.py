"""One OpenAI-compatible request with the teacher's retry policy, and strict response parsing.

Raw httpx rather than the `openai` SDK: every failure mode (timeout, 429 + Retry-After,
5xx, malformed or truncated JSON, missing choices) must map to a recorded reason, and the
SDK's own retries and lenient parsing would hide some of them. The API key only ever goes
into the Authorization header; reasons are built from status codes and response text with
the key scrubbed, so it cannot reach a log or a failures file.
"""

from __future__ import annotations

import asyncio
import json
import random
from dataclasses import dataclass
from typing import Any

import httpx

# Retried: overload and transient server trouble (the OpenAI SDK retries the same codes).
RETRY_STATUS = {408, 409, 429}
# Fatal for the whole stage: every other request would fail the same way (bad key, wrong URL/model).
FATAL_STATUS = {401, 403, 404}


class RequestFailed(Exception):
    """A request that produced no usable answer. `retryable`: worth another attempt."""

    def __init__(self, reason: str, retryable: bool, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason, self.retryable, self.retry_after = reason, retryable, retry_after
        self.attempts = 1  # set by post_with_retries to the number of attempts made


class FatalRequestError(Exception):
    """A response that means the configuration is wrong (401/403/404): stop the stage."""


@dataclass
class Choice:
    text: str
    finish_reason: str | None
    logprobs: list[dict] | None  # [{"token", "logprob", "top": [[token, logprob], ...]}] or None
    # A chat reply's reasoning, where the server splits it off the content (vLLM and SGLang
    # reasoning parsers: `reasoning_content`, or `reasoning` in newer vLLM); the think template
    # puts it back into its <think> block.
    reasoning: str | None = None


@dataclass
class Reply:
    choices: list[Choice]  # in `index` order
    usage: dict[str, int]


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 6
    backoff_base: float = 1.0
    backoff_max: float = 60.0

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds before retry number attempt+1: full jitter on base * 2^attempt, capped at
        backoff_max; a server's Retry-After is a floor (itself capped at backoff_max)."""
        jitter = rng.uniform(0, min(self.backoff_max, self.backoff_base * 2**attempt))
        if retry_after is not None:
            return max(jitter, min(retry_after, self.backoff_max))
        return jitter


def scrub(text: str, secret: str | None) -> str:
    return text.replace(secret, "[api key]") if secret else text


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP-date: rare from inference servers; fall back to backoff


async def post_once(
    client: httpx.AsyncClient, url: str, payload: dict, headers: dict, timeout: float, api: str, n: int
) -> Reply:
    """POST once and parse; raises RequestFailed / FatalRequestError, never anything else."""
    try:
        # wait_for bounds the whole exchange; httpx's own timeout is per read/write/connect.
        r = await asyncio.wait_for(client.post(url, json=payload, headers=headers, timeout=timeout), timeout)
    except (TimeoutError, httpx.TimeoutException):
        raise RequestFailed(f"timeout after {timeout:g}s", True) from None
    except httpx.HTTPError as e:  # refused, reset, a body cut short (RemoteProtocolError), ...
        raise RequestFailed(f"transport error: {type(e).__name__}", True) from None
    if r.status_code != 200:
        detail = _error_message(r)
        reason = f"HTTP {r.status_code}" + (f": {detail}" if detail else "")
        if r.status_code in FATAL_STATUS:
            raise FatalRequestError(reason)
        retryable = r.status_code in RETRY_STATUS or r.status_code >= 500
        raise RequestFailed(reason, retryable, _retry_after(r.headers.get("retry-after")))
    try:
        body = r.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise RequestFailed(f"malformed JSON response ({len(r.content)} bytes)", True) from None
    return parse_reply(body, api, n)


def _error_message(r: httpx.Response) -> str:
    try:
        err = r.json().get("error")
        msg = err.get("message") if isinstance(err, dict) else err
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        msg = r.text
    return " ".join(str(msg or "").split())[:300]


def parse_reply(body: Any, api: str, n: int) -> Reply:
    """Validate an OpenAI response body; anything off is a (retryable) RequestFailed."""
    if not isinstance(body, dict):
        raise RequestFailed("malformed response: not a JSON object", True)
    raw = body.get("choices")
    if not isinstance(raw, list) or not raw:
        raise RequestFailed("empty response: no choices", True)
    if len(raw) != n:
        raise RequestFailed(f"malformed response: {len(raw)} choices for n={n}", True)
    choices: list[Choice | None] = [None] * n
    for pos, c in enumerate(raw):
        if not isinstance(c, dict):
            raise RequestFailed("malformed response: a choice is not an object", True)
        idx = c.get("index", pos)
        msg = (c.get("message") or {}) if api == "chat" else {}
        text = msg.get("content") if api == "chat" else c.get("text")
        reasoning = next(
            (r for r in (msg.get("reasoning_content"), msg.get("reasoning")) if isinstance(r, str)), None
        )
        if text is None and reasoning is not None:
            text = ""  # stopped while still reasoning: the content never started
        if not isinstance(idx, int) or not 0 <= idx < n or choices[idx] is not None:
            raise RequestFailed(f"malformed response: bad choice index {idx!r}", True)
        if not isinstance(text, str):
            raise RequestFailed("malformed response: a choice has no text", True)
        choices[idx] = Choice(text, c.get("finish_reason"), _logprobs(c.get("logprobs"), api), reasoning)
    usage = body.get("usage") if isinstance(body.get("usage"), dict) else {}
    usage = {k: int(usage.get(k) or 0) for k in ("prompt_tokens", "completion_tokens")}
    return Reply(choices, usage)


def _logprobs(lp: Any, api: str) -> list[dict] | None:
    """Both APIs' log-prob layouts as [{"token", "logprob", "top": [[token, logprob], ...]}]."""
    if not isinstance(lp, dict):
        return None
    try:
        if api == "chat":
            return [
                {
                    "token": t["token"],
                    "logprob": t["logprob"],
                    "top": [[x["token"], x["logprob"]] for x in t.get("top_logprobs") or []],
                }
                for t in lp.get("content") or []
            ]
        tops = lp.get("top_logprobs") or [None] * len(lp["tokens"])
        return [
            {"token": tok, "logprob": val, "top": [[k, v] for k, v in (top or {}).items()]}
            for tok, val, top in zip(lp["tokens"], lp["token_logprobs"], tops, strict=True)
        ]
    except (KeyError, TypeError, ValueError):
        return None  # log-probs are a bonus: a server's odd layout must not fail the sample


async def post_with_retries(
    client: httpx.AsyncClient,
    pick_url,
    payload: dict,
    headers: dict,
    *,
    timeout: float,
    api: str,
    n: int,
    policy: RetryPolicy,
    rng: random.Random,
    on_attempt=None,
    on_error=None,
) -> Reply:
    """post_once under `policy`; `pick_url()` chooses a server per attempt (failover across replicas).

    Raises RequestFailed with the last reason once retries are spent (or at once if the failure
    is not retryable), FatalRequestError for 401/403/404.
    """
    path = "/chat/completions" if api == "chat" else "/completions"
    for attempt in range(policy.max_retries + 1):
        base, release = pick_url()
        try:
            if on_attempt is not None:
                on_attempt()
            return await post_once(client, base.rstrip("/") + path, payload, headers, timeout, api, n)
        except RequestFailed as e:
            if on_error is not None:
                on_error(e)  # every failed attempt, retried or not (for the stage's summary)
            if not e.retryable or attempt == policy.max_retries:
                e.attempts = attempt + 1
                raise
            wait = policy.delay(attempt, e.retry_after, rng)
        finally:
            release()
        await asyncio.sleep(wait)
    raise AssertionError("unreachable")  # pragma: no cover
