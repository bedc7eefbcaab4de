"""OpenAI API request schemas and response bodies (the subset `serve` implements).

Nothing a client asks for is silently ignored: an unknown field, or an OpenAI parameter `serve`
does not implement (`tools`, `best_of` > n, `logit_bias`, penalties, `response_format`, ...), is
answered with a 400 naming it. Such parameters are still accepted at their neutral value
(`presence_penalty: 0`, `tools: []`, `best_of` equal to n), which clients often send and which
asks for nothing `serve` would not do anyway. `user` is metadata and accepted as is.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from reasondistill.serve.engine import Output

# OpenAI parameters `serve` does not implement -> the values that ask for nothing (accepted).
NEUTRAL: dict[str, tuple] = {
    "presence_penalty": (0, 0.0),
    "frequency_penalty": (0, 0.0),
    "logit_bias": ({},),
    "tools": ([],),
    "tool_choice": ("none",),
    "functions": ([],),
    "function_call": ("none",),
    "parallel_tool_calls": (False, True),  # with no tools it asks for nothing
    "response_format": ({"type": "text"},),
    "suffix": ("",),
    "echo": (False,),
    "store": (False,),
    "audio": (),
    "modalities": (["text"],),
    "prediction": (),
    "reasoning_effort": (),
    "web_search_options": (),
    "service_tier": ("auto", "default"),
}


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    include_usage: bool = False  # a last chunk with the usage, and no choices (OpenAI's layout)


class Unsupported(ValueError):
    """A request parameter `serve` does not implement; `param` names it in the 400 answer."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param


class _Sampling(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: str
    temperature: float = Field(1.0, ge=0, le=2)
    top_p: float = Field(1.0, gt=0, le=1)
    n: int = Field(1, ge=1, le=128)
    stop: list[str] = Field(default_factory=list, max_length=16)
    seed: int | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: str | None = None  # metadata: changes no answer
    metadata: dict[str, str] | None = None  # metadata too (OpenAI's stored-completion tags)

    @field_validator("stop", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        return [] if v is None else [v] if isinstance(v, str) else v

    @model_validator(mode="before")
    @classmethod
    def _unimplemented(cls, data: Any) -> Any:
        """Known OpenAI parameters `serve` does not implement: accepted only at their neutral value."""
        if isinstance(data, dict):
            for name, neutral in NEUTRAL.items():
                if name in data and data[name] is not None and data[name] not in neutral:
                    raise Unsupported(name, f"{name}={data[name]!r} is not supported by reasondistill serve"
                                      + (f" (accepted: {', '.join(map(repr, neutral))})" if neutral else ""))  # fmt: skip
            return {k: v for k, v in data.items() if k not in NEUTRAL}
        return data

    @model_validator(mode="after")
    def _stream_knobs(self):
        if self.stream_options is not None and not self.stream:
            raise Unsupported("stream_options", "stream_options: only with stream: true")
        if self.stream and self.logprobs not in (None, False):
            raise Unsupported("logprobs", "logprobs with stream: true is not supported by reasondistill serve")
        return self


class CompletionRequest(_Sampling):
    prompt: str | list[str]
    max_tokens: int | None = Field(16, ge=1)  # OpenAI's default for the completions API
    logprobs: int | None = Field(None, ge=0, le=20)
    best_of: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _best_of(self):
        # best_of samples best_of and returns the n with the highest log-prob: with best_of == n
        # there is nothing to choose, anything else would need a selection `serve` does not make.
        if self.best_of is not None and self.best_of != self.n:
            raise Unsupported("best_of", f"best_of={self.best_of} is not supported by reasondistill serve (only best_of == n)")
        return self


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


def error_body(
    message: str, kind: str = "invalid_request_error", code: str | None = None, param: str | None = None
) -> dict:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}
