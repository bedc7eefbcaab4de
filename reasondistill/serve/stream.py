"""`stream: true`: OpenAI-style server-sent events, fed token by token from the batched engine.

The engine calls back with every decode step's new token of each streamed row (engine.py's
_RowStreamer); `RowText` turns a row's tokens into text deltas that never run ahead of what the
finished, non-streamed answer says: text past the row's end (EOS, max_tokens) is dropped, the
last (longest stop string - 1) characters are held back until no stop string can start in them,
and an incomplete UTF-8 character (decoded as U+FFFD) waits for its next byte. When the row is
done its authoritative text (Output.text) closes the stream, so the deltas always join to it.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator

from reasondistill.serve.engine import Engine, GenParams, Output


class RowText:
    """The text of one streamed row so far; `add` returns the newly sendable part."""

    def __init__(self, engine: Engine, params: GenParams) -> None:
        self.engine, self.params = engine, params
        self.ids: list[int] = []
        self.sent, self.done = "", False
        self.hold = max(map(len, params.stop), default=1) - 1

    def add(self, token: int) -> str:
        if self.done:
            return ""
        if token in self.engine.eos or len(self.ids) >= self.params.max_tokens:
            self.done = True  # the rest of the batch's steps are padding for this row
            return ""
        self.ids.append(token)
        text = self.engine.tokenizer.decode(self.ids, skip_special_tokens=True)
        hits = [text.index(s) for s in self.params.stop if s in text]
        if hits:
            self.done, text = True, text[: min(hits)]
        else:
            text = text[: len(text) - self.hold].rstrip("\ufffd")
        if not text.startswith(self.sent):
            return ""  # decoding changed its mind about sent text (rare): the final text settles it
        delta, self.sent = text[len(self.sent) :], text
        return delta

    def rest(self, final: str) -> str:
        """What the finished row adds to what was sent."""
        return final[len(self.sent) :] if final.startswith(self.sent) else ""


def sse(obj: dict | str) -> str:
    return f"data: {obj if isinstance(obj, str) else json.dumps(obj)}\n\n"


async def stream_events(
    engine: Engine,
    ids: list[list[int]],
    n: int,
    params: GenParams,
    *,
    api: str,
    model: str,
    include_usage: bool,
) -> AsyncIterator[str]:
    """The SSE body of one request: role chunk (chat), deltas, finish chunks, usage, [DONE]."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[int, int]] = asyncio.Queue()
    rows = [RowText(engine, params) for _ in range(len(ids) * n)]
    task = asyncio.ensure_future(
        engine.generate(ids, n, params, lambda row, tok: loop.call_soon_threadsafe(queue.put_nowait, (row, tok)))
    )
    task.add_done_callback(lambda t: t.cancelled() or t.exception())  # a client gone mid-stream: no warning
    chat = api == "chat"
    head = {
        "id": f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex}",
        "object": "chat.completion.chunk" if chat else "text_completion",
        "created": int(time.time()),
        "model": model,
    }

    def chunk(i: int, text: str | None, finish: str | None = None, role: bool = False) -> str:
        if chat:
            delta = {"role": "assistant", "content": ""} if role else ({"content": text} if text else {})
            choice = {"index": i, "delta": delta, "logprobs": None, "finish_reason": finish}
        else:
            choice = {"index": i, "text": text or "", "logprobs": None, "finish_reason": finish}
        return sse({**head, "choices": [choice]})

    if chat:
        for i in range(len(rows)):
            yield chunk(i, None, role=True)
    while not task.done():
        get = asyncio.ensure_future(queue.get())
        await asyncio.wait({get, task}, return_when=asyncio.FIRST_COMPLETED)
        if not get.done():
            get.cancel()
            break
        if delta := rows[get.result()[0]].add(get.result()[1]):
            yield chunk(get.result()[0], delta)
    while not queue.empty():  # steps that arrived together with the end of generation
        row, tok = queue.get_nowait()
        if delta := rows[row].add(tok):
            yield chunk(row, delta)
    try:
        outs: list[Output] = task.result()
    except Exception as e:  # headers are sent: the error travels as an event (the openai client raises it)
        yield sse({"error": {"message": f"generation failed: {type(e).__name__}: {e}", "type": "server_error",
                             "param": None, "code": None}})  # fmt: skip
        return
    for i, (row, out) in enumerate(zip(rows, outs, strict=True)):
        if rest := row.rest(out.text):
            yield chunk(i, rest)
        yield chunk(i, None, out.finish_reason)
    if include_usage:
        prompt_tokens = sum(map(len, ids)) if not chat else len(ids[0])
        completion = sum(o.completion_tokens for o in outs)
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion,
                 "total_tokens": prompt_tokens + completion}  # fmt: skip
        yield sse({**head, "choices": [], "usage": usage})
    yield sse("[DONE]")
