"""Run the serve app under uvicorn: as the `reasondistill serve` process, or in a thread (tests, bench).

The listening socket is bound here, before uvicorn starts, so `--port 0` (any free port)
works: the real port is known at once, printed, and written to `--port-file` for the
process that launched us (teachers/openai/serve.py).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from pathlib import Path

import uvicorn

from reasondistill.errors import ReasonDistillError
from reasondistill.serve.app import build_app
from reasondistill.serve.engine import Engine


def bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise ReasonDistillError(f"cannot listen on {host}:{port}: {e.strerror}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _uvicorn(app, log_level: str, access_log: bool) -> uvicorn.Server:
    config = uvicorn.Config(app, log_level=log_level.lower(), access_log=access_log, timeout_keep_alive=30)
    if access_log:
        # uvicorn gives its access logger the --log-level (default warning here), but it logs
        # every request at INFO: --access-log would print nothing unless raised to INFO too.
        logging.getLogger("uvicorn.access").setLevel(logging.INFO)
    return uvicorn.Server(config)


def run_server(args) -> int:
    """The `reasondistill serve` command: load the model, listen, serve until SIGINT/SIGTERM."""
    from reasondistill.evaluate.generate import default_device
    from reasondistill.models.load import load_model

    api_key = None
    if args.api_key_env:
        api_key = os.environ.get(args.api_key_env)
        if not api_key:
            raise ReasonDistillError(
                f"--api-key-env: environment variable {args.api_key_env} is not set or empty"
            )
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    model, tokenizer = load_model(args.model_dir, dtype=args.dtype, device=args.device or default_device())
    name = args.model_name or args.model_dir
    engine = Engine(model, tokenizer, max_batch_size=args.max_batch_size, batch_wait_ms=args.batch_wait_ms)
    sock = bind(args.host, args.port)
    port = sock.getsockname()[1]
    if args.port_file:  # written atomically: the launcher polls for it
        tmp = Path(args.port_file + ".tmp")
        tmp.write_text(str(port))
        os.replace(tmp, args.port_file)
    if args.parent_pid:
        threading.Thread(target=_exit_with_parent, args=(args.parent_pid,), daemon=True).start()
    auth = " (API key required)" if api_key else ""
    print(f"serving {name!r} on http://{args.host}:{port}/v1{auth}", flush=True)
    server = _uvicorn(build_app(engine, name, api_key), args.log_level, args.access_log)
    server.run(sockets=[sock])
    return 0


def _exit_with_parent(parent_pid: int) -> None:
    """A server started for one stage must not outlive it, even when that process is SIGKILLed."""
    while os.getppid() == parent_pid:
        time.sleep(0.5)
    os._exit(0)


class ServerThread:
    """The app served from a background thread on 127.0.0.1 (tests, benchmarks).

    with ServerThread(engine, "tiny") as srv: use srv.base_url ("http://127.0.0.1:PORT/v1").
    """

    def __init__(
        self, engine: Engine, model_name: str, api_key: str | None = None, port: int = 0, access_log: bool = False
    ) -> None:
        self.sock = bind("127.0.0.1", port)
        self.port = self.sock.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.server = _uvicorn(build_app(engine, model_name, api_key), "warning", access_log)
        self._thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> ServerThread:
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("serve thread did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=10)
        self.sock.close()
