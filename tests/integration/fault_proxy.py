"""A fault-injecting HTTP proxy for tests: sits between a teacher and a server, on 127.0.0.1 only.

On a `rate` share of requests it injects one fault, cycling through `faults` so each kind
shows up: a hang longer than the client's timeout (then the connection is closed), 429 with
Retry-After, 500, a malformed JSON body, a body cut short (Content-Length promises more than
is sent), or a valid reply with no choices. Everything else is forwarded to the upstream.

HTTP/1.1 is parsed by hand on asyncio streams, because a truncated body cannot be produced
with a framework that writes correct responses. Every wait is bounded (`hang`), and the proxy
runs in a daemon thread that `stop()` ends.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time
from collections import Counter

import httpx

FAULTS = ("timeout", "429", "500", "malformed", "truncated", "empty")
_REASONS = {200: "OK", 429: "Too Many Requests", 500: "Internal Server Error"}


class FaultProxy:
    def __init__(
        self,
        upstream: str,
        rate: float = 0.3,
        faults: tuple[str, ...] = FAULTS,
        seed: int = 0,
        hang: float = 3.0,
        delay: float = 0.0,
        retry_after: str = "1",
    ) -> None:
        self.upstream = upstream.rstrip("/")  # e.g. http://127.0.0.1:8000 (no /v1)
        self.rate, self.faults, self.hang, self.delay, self.retry_after = (
            rate,
            faults,
            hang,
            delay,
            retry_after,
        )
        self.rng = random.Random(seed)
        self.injected: Counter = Counter()
        self.forwarded: Counter = Counter()  # path -> requests passed to the upstream
        self.inflight = 0  # requests read and not yet answered (a killed client's included)
        self._next = 0
        self._tasks: set[asyncio.Task] = set()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("fault proxy did not start")
        return self

    def __exit__(self, *exc) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=10)

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Wait until no request is being handled (e.g. those a killed client left in flight)."""
        deadline = time.monotonic() + timeout
        while self.inflight and time.monotonic() < deadline:
            time.sleep(0.01)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._main())
        finally:
            self._loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        self._client = httpx.AsyncClient(timeout=60)
        server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        await self._stop.wait()
        server.close()
        for task in self._tasks:  # hung or keep-alive connections: end them, don't leak them
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._client.aclose()

    def _pick(self) -> str | None:
        if self.rng.random() >= self.rate:
            return None
        fault = self.faults[self._next % len(self.faults)]
        self._next += 1
        self.injected[fault] += 1
        return fault

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self._tasks.add(task)
        try:
            while (req := await _read_request(reader)) is not None:
                self.inflight += 1
                try:
                    if not await self._respond(*req, writer):
                        break
                finally:
                    self.inflight -= 1
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()

    async def _respond(self, method: str, path: str, headers: dict, body: bytes, w) -> bool:
        """Answer one request; False closes the connection."""
        if self.delay:
            await asyncio.sleep(self.delay)
        fault = self._pick() if path.startswith("/v1/") and method == "POST" else None
        if fault == "timeout":
            await asyncio.sleep(self.hang)
            return False
        if fault == "429":
            return await _send(
                w, 429, b'{"error": {"message": "rate limited"}}', {"Retry-After": self.retry_after}
            )
        if fault == "500":
            return await _send(w, 500, b'{"error": {"message": "injected"}}')
        if fault == "malformed":
            return await _send(w, 200, b'{"id": "x", "choices": [{"text": "unterminated')
        if fault == "empty":
            return await _send(w, 200, json.dumps({"id": "x", "choices": [], "usage": {}}).encode())
        keep = {k: v for k, v in headers.items() if k in ("authorization", "content-type")}
        r = await self._client.request(method, self.upstream + path, headers=keep, content=body)
        self.forwarded[path] += 1
        if fault == "truncated":
            await _send(w, r.status_code, r.content, length=len(r.content), cut=len(r.content) // 2)
            return False
        return await _send(w, r.status_code, r.content, {"Retry-After": r.headers.get("retry-after")})


async def _read_request(reader: asyncio.StreamReader):
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None  # the client closed the connection
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    body = await reader.readexactly(int(headers.get("content-length", 0)))
    return method, path, headers, body


async def _send(
    w, status: int, body: bytes, extra: dict | None = None, length: int | None = None, cut=None
) -> bool:
    head = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}", "Content-Type: application/json"]
    head.append(f"Content-Length: {len(body) if length is None else length}")
    head += [f"{k}: {v}" for k, v in (extra or {}).items() if v is not None]
    w.write(("\r\n".join(head) + "\r\n\r\n").encode() + (body if cut is None else body[:cut]))
    await w.drain()
    return True
