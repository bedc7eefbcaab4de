"""OpenAI API request schemas and response bodies (the subset `serve` implements).

Requests ignore fields they do not know (clients send many optional ones, e.g.
`presence_penalty: 0`); fields that would change the answer and are unsupported
(`stream`, `echo`, `best_of` > n) are rejected with a 400 instead of being silently ignored.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from reasondistill.serve.engine import Output


class _Sampling(BaseModel):
    model_config = ConfigDict(extra="ignore")
    model: str
    temperature: float = Field(1.0, ge=0, le=2)
    top_p: float = Field(1.0, gt=0, le=1)
    n: int = Field(1, ge=1, le=128)
    stop: list[str] = Field(default_factory=list, max_length=16)
    seed: int | None = None
    stream: bool = False

    @field_validator("stop", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        return [] if v is None else [v] if isinstance(v, str) else v

    @field_validator("stream")
    @classmethod
    def _no_stream(cls, v: bool) -> bool:
        if v:
            raise ValueError("stream is not supported by reasondistill serve")
        return v


class CompletionRequest(_Sampling):
    prompt: str | list[str]
    max_tokens: int | None = Field(16, ge=1)  # OpenAI's default for the completions API
    logprobs: int | None = Field(None, ge=0, le=20)
    echo: bool = False

    @field_validator("echo")
    @classmethod
    def _no_echo(cls, v: bool) -> bool:
        if v:
            raise ValueError("echo is not supported by reasondistill serve")
        return v


class ChatRequest(_Sampling):
    messages: list[dict[str, Any]] = Field(min_length=1)
    max_tokens: int | None = Field(None, ge=1)  # None: the rest of the context window
    max_completion_tokens: int | None = Field(None, ge=1)  # the newer name of max_tokens
    logprobs: bool = False
    top_logprobs: int | None = Field(None, ge=0, le=20)


def message_text(message: dict[str, Any]) -> str:
    """A message's text: a plain string, or the text parts of a content list."""
    content = message.get("content") or ""
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return str(content)


def _usage(outs: list[Output], prompt_tokens: int) -> dict:
    completion = sum(o.completion_tokens for o in outs)
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion,
        "total_tokens": prompt_tokens + completion,
    }


def completion_body(model: str, outs: list[Output], prompt_tokens: int) -> dict:
    choices = []
    for i, o in enumerate(outs):
        lp = None
        if o.logprobs is not None:
            offsets, pos = [], 0
            for t in o.logprobs:
                offsets.append(pos)
                pos += len(t.token)
            lp = {
                "tokens": [t.token for t in o.logprobs],
                "token_logprobs": [t.logprob for t in o.logprobs],
                "top_logprobs": [dict(t.top) for t in o.logprobs]
                if o.logprobs and o.logprobs[0].top
                else None,
                "text_offset": offsets,
            }
        choices.append({"index": i, "text": o.text, "logprobs": lp, "finish_reason": o.finish_reason})
    return {
        "id": f"cmpl-{uuid.uuid4().hex}",
        "object": "text_completion",
        "created": int(time.time()),
        "model": model,
        "choices": choices,
        "usage": _usage(outs, prompt_tokens),
    }


def _lp_entry(token: str, logprob: float) -> dict:
    return {"token": token, "logprob": logprob, "bytes": list(token.encode("utf-8"))}


def chat_body(model: str, outs: list[Output], prompt_tokens: int) -> dict:
    choices = []
    for i, o in enumerate(outs):
        lp = None
        if o.logprobs is not None:
            lp = {
                "content": [
                    {**_lp_entry(t.token, t.logprob), "top_logprobs": [_lp_entry(s, v) for s, v in t.top]}
                    for t in o.logprobs
                ],
                "refusal": None,
            }
        message = {"role": "assistant", "content": o.text}
        choices.append({"index": i, "message": message, "logprobs": lp, "finish_reason": o.finish_reason})
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": choices,
        "usage": _usage(outs, prompt_tokens),
    }


def error_body(message: str, kind: str = "invalid_request_error", code: str | None = None) -> dict:
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}
