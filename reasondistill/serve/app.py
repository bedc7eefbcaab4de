"""The FastAPI app of `reasondistill serve`: /v1/models, /v1/completions, /v1/chat/completions.

Prompts are tokenized exactly as the toolkit's training and `hf` teacher tokenize them
(models.tokenize.encode_prompt), so a student served here answers the same ids it was
trained on: a completions prompt is text (the `plain` template's "Question: ...\\n" for a
model trained on it), chat messages go through the model tokenizer's own chat template (a
model trained with the chat or think template, or any instruction-tuned model). A model
without a chat template refuses chat requests with a 400 naming the completions endpoint,
rather than guessing a prompt format it was not trained on.
"""

from __future__ import annotations

import hmac
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from jinja2 import TemplateError

from reasondistill.errors import ReasonDistillError
from reasondistill.models.tokenize import encode_prompt
from reasondistill.serve.engine import Engine, GenParams
from reasondistill.serve.protocol import (
    ChatRequest,
    CompletionRequest,
    Unsupported,
    chat_body,
    completion_body,
    error_body,
    message_text,
)
from reasondistill.serve.stream import stream_events


class APIError(Exception):
    def __init__(
        self, status: int, message: str, kind: str = "invalid_request_error", param: str | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.kind, self.param = status, message, kind, param


def build_app(engine: Engine, model_name: str, api_key: str | None = None) -> FastAPI:
    """The server app; with `api_key`, every /v1 request needs `Authorization: Bearer <api_key>`."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await engine.start()
        yield
        await engine.stop()

    app = FastAPI(title="reasondistill serve", lifespan=lifespan, docs_url=None, redoc_url=None)

    @app.exception_handler(APIError)
    async def _api_error(request: Request, e: APIError) -> JSONResponse:
        return JSONResponse(error_body(e.message, e.kind, param=e.param), status_code=e.status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, e: RequestValidationError) -> JSONResponse:
        # OpenAI answers 400 (FastAPI's default is 422) and names the parameter in `param`.
        msgs, params = [], []
        for err in e.errors():
            where = ".".join(str(x) for x in err["loc"][1:])
            cause = (err.get("ctx") or {}).get("error")
            if isinstance(cause, Unsupported):
                msgs.append(str(cause))
                params.append(cause.param)
            elif err["type"] == "extra_forbidden":
                msgs.append(f"unknown parameter {where!r}: reasondistill serve does not implement it")
                params.append(where)
            else:
                msgs.append(f"{where}: {err['msg']}")
                params.append(where)
        return JSONResponse(error_body("; ".join(msgs), param=params[0] if params else None), status_code=400)

    @app.middleware("http")
    async def _auth(request: Request, call_next):
        if api_key is not None and request.url.path.startswith("/v1"):
            given = request.headers.get("authorization", "")
            # Constant-time comparison: the key must not leak through response timing.
            if not hmac.compare_digest(given.encode(), f"Bearer {api_key}".encode()):
                body = error_body("invalid or missing API key", "authentication_error", "invalid_api_key")
                return JSONResponse(body, status_code=401)
        return await call_next(request)

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok"}

    @app.get("/v1/models")
    async def models() -> dict:
        card = {"id": model_name, "object": "model", "created": 0, "owned_by": "reasondistill"}
        return {"object": "list", "data": [card]}

    @app.post("/v1/completions", response_model=None)
    async def completions(req: CompletionRequest) -> dict | StreamingResponse:
        _check_model(req.model, model_name)
        prompts = [req.prompt] if isinstance(req.prompt, str) else req.prompt
        ids = [encode_prompt(engine.tokenizer, p) for p in prompts]
        params = _params(req, engine, ids, req.max_tokens, req.logprobs)
        if req.stream:
            return _streamed(engine, ids, req, params, "completions", model_name)
        outs = await _generate(engine, ids, req.n, params)
        return completion_body(model_name, outs, sum(map(len, ids)))

    @app.post("/v1/chat/completions", response_model=None)
    async def chat(req: ChatRequest) -> dict | StreamingResponse:
        _check_model(req.model, model_name)
        ids = [chat_prompt_ids(engine.tokenizer, req.messages)]
        top = (req.top_logprobs or 0) if req.logprobs else None
        params = _params(req, engine, ids, req.max_completion_tokens or req.max_tokens, top)
        if req.stream:
            return _streamed(engine, ids, req, params, "chat", model_name)
        outs = await _generate(engine, ids, req.n, params)
        return chat_body(model_name, outs, len(ids[0]))

    return app


def chat_prompt_ids(tokenizer, messages: list[dict]) -> list[int]:
    """Token ids of a chat prompt through the model's chat template (as training encodes them)."""
    turns = [{"role": str(m.get("role")), "content": message_text(m)} for m in messages]
    try:
        return encode_prompt(tokenizer, turns)
    except ReasonDistillError as e:
        raise APIError(400, f"{e}. Send a text prompt to /v1/completions instead") from None
    except TemplateError as e:  # the template's own raise_exception: e.g. no user turn
        raise APIError(400, f"messages: the model's chat template refused them: {e}") from None


def _check_model(requested: str, served: str) -> None:
    if requested != served:
        raise APIError(
            404, f"The model {requested!r} does not exist; this server serves {served!r}", "not_found_error"
        )


def _params(req, engine: Engine, ids: list[list[int]], max_tokens: int | None, top: int | None) -> GenParams:
    longest = max(map(len, ids))
    if engine.context is not None:
        room = engine.context - longest
        if max_tokens is None:
            max_tokens = room
        if room < 1 or max_tokens > room:
            raise APIError(
                400,
                f"this model's maximum context length is {engine.context} tokens; the prompt has "
                f"{longest} and max_tokens asks for {max_tokens}",
            )
    if max_tokens is None:
        max_tokens = 1024
    return GenParams(max_tokens, req.temperature, req.top_p, tuple(s for s in req.stop if s), top, req.seed)


def _streamed(engine: Engine, ids, req, params: GenParams, api: str, model: str) -> StreamingResponse:
    """Every check has passed (a bad request got its 400 above): stream the answer as SSE."""
    usage = req.stream_options is not None and req.stream_options.include_usage
    events = stream_events(engine, ids, req.n, params, api=api, model=model, include_usage=usage)
    return StreamingResponse(events, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


async def _generate(engine: Engine, ids: list[list[int]], n: int, params: GenParams):
    try:
        return await engine.generate(ids, n, params)
    except Exception as e:  # the error of one batch answers its requests with a 500, not a dead server
        raise APIError(500, f"generation failed: {type(e).__name__}: {e}", "server_error") from e
