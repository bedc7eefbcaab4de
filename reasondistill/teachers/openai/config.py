"""Config of the `openai` teacher (any OpenAI-compatible server: vLLM, SGLang, a hosted API, `serve`)."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from reasondistill.config import ModelSource, StrictModel
from reasondistill.teachers.base import TeacherConfig
from reasondistill.traces.templates import build_template

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class ServeSpec(ModelSource):
    """Start `reasondistill serve` on this model (`stage` or `path`) for the stage's duration."""

    max_batch_size: int = Field(32, ge=1, description="rows per batched generate call of the server")
    device: str | None = Field(None, description="cpu, cuda, ... (default: cuda if available)")
    threads: int | None = Field(None, ge=1, description="torch CPU threads of the server (default: torch's)")
    startup_timeout: float = Field(600.0, gt=0, description="seconds to wait for the model to load")


class Pricing(StrictModel):
    """Per-token prices, to report the cost of a stage (USD per million tokens)."""

    prompt: float = Field(ge=0, description="USD per 1M prompt tokens")
    completion: float = Field(ge=0, description="USD per 1M completion tokens")


class OpenAIConfig(TeacherConfig):
    kind: Literal["openai"]
    base_url: str | list[str] | None = Field(
        None, description="server URL ending in /v1, or a list of replicas to spread requests over"
    )
    serve: ServeSpec | None = Field(
        None, description="instead of base_url: serve a local model for the stage"
    )
    model: str | None = Field(None, description="model id sent to the server (default with serve: its path)")
    api: Literal["chat", "completions"] | None = Field(
        None,
        description="the endpoint; follows `template` (plain: /v1/completions; chat, think: "
        "/v1/chat/completions, the server's chat template renders the turns); if given, must agree",
    )
    api_key_env: str | None = Field(
        None, description="NAME of the environment variable holding the API key (never the key itself)"
    )
    temperature: float = Field(1.0, ge=0, le=2, description="0 = greedy")
    top_p: float = Field(1.0, gt=0, le=1)
    max_tokens: int = Field(256, ge=1, description="completion tokens per sample")
    stop: list[str] = Field(default_factory=list, description="stop sequences")
    top_logprobs: int = Field(0, ge=0, le=20, description="capture the top-k log-probs per token (0: none)")
    seed: int | None = Field(
        None, description="per-sample seeds derived from it (samples are then requested one at a time)"
    )
    extra_body: dict[str, Any] = Field(
        default_factory=dict, description="extra request fields for the server, e.g. {top_k: 20} for vLLM"
    )
    group_samples: bool = Field(
        True, description="one request with n choices per example (prompt billed once)"
    )
    concurrency: int = Field(16, ge=1, description="requests in flight at once")
    timeout: float = Field(120.0, gt=0, description="seconds per request attempt")
    max_retries: int = Field(
        6, ge=0, description="retries on timeouts, 408/409/429, 5xx and malformed replies"
    )
    backoff_base: float = Field(1.0, ge=0, description="retry k waits uniform(0, base * 2^k) seconds")
    backoff_max: float = Field(60.0, ge=0, description="cap of one backoff wait (and of a Retry-After)")
    max_failed_fraction: float = Field(
        0.0, ge=0, le=1, description="share of samples that may fail for good and the stage still complete"
    )
    abort_after_failures: int | None = Field(
        100, ge=1, description="stop the stage after this many requests in a row failed (server down)"
    )
    price: Pricing | None = None
    cache: str | None = Field(None, description="request cache file (default <runs_dir>/<recipe>/_cache/...)")

    @field_validator("api_key_env")
    @classmethod
    def _env_name(cls, v: str | None) -> str | None:
        if v is not None and not _ENV_NAME.match(v):
            # Never echo the value: a user who pasted the key itself here must not see it printed.
            raise ValueError("must be the NAME of an environment variable (letters, digits, _), not a key")
        return v

    @field_validator("base_url")
    @classmethod
    def _urls(cls, v: str | list[str] | None) -> str | list[str] | None:
        urls = [v] if isinstance(v, str) else v or []
        if isinstance(v, list) and not v:
            raise ValueError("an empty list of servers")
        for u in urls:
            if not u.startswith(("http://", "https://")):
                raise ValueError(f"{u!r} is not an http(s) URL")
        return v

    @model_validator(mode="before")
    @classmethod
    def _moved(cls, data: Any) -> Any:
        if isinstance(data, dict) and "system_prompt" in data:
            raise ValueError("system_prompt moved into the prompt template: template: {kind: chat, system: ...}")
        return data

    @model_validator(mode="after")
    def _consistent(self):
        if (self.base_url is None) == (self.serve is None):
            raise ValueError("give exactly one of `base_url` (running servers) or `serve` (start one)")
        if self.base_url is not None and not self.model:
            raise ValueError("`model` is required with `base_url` (the model id the server serves)")
        if self.temperature == 0 and self.n > 1:
            raise ValueError("temperature 0 (greedy) gives n identical samples; use n: 1 or temperature > 0")
        api = "chat" if build_template(self.template).chat else "completions"
        if self.api is not None and self.api != api:
            raise ValueError(
                f"api: {self.api} does not fit template {self.template.kind!r}: text prompts go to "
                "/v1/completions, chat messages to /v1/chat/completions; leave `api` out (it follows the "
                "template) or set template: {kind: chat} for a chat model"
            )
        self.api = api
        return self

    @property
    def urls(self) -> list[str]:
        return [self.base_url] if isinstance(self.base_url, str) else list(self.base_url or [])

    def sampling(self) -> dict:
        """What decides a sample's content (part of every request's cache key)."""
        return {
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_tokens": self.max_tokens,
            "stop": self.stop,
            "top_logprobs": self.top_logprobs,
            "extra_body": self.extra_body,
        }
