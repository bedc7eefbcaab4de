"""`reasondistill serve MODEL_DIR`: an OpenAI-compatible server for any local HF causal LM.

Endpoints: /v1/models, /v1/completions, /v1/chat/completions (with logprobs / top_logprobs,
n, stop, temperature, top_p, seed, stream), /health. Concurrent requests are batched
(engine.py); `stream: true` answers with server-sent events (stream.py); a parameter `serve`
does not implement is refused with a 400 naming it (protocol.py).
This module stays light (argparse only) so the CLI starts fast; the server imports torch
and FastAPI when it runs.
"""

from __future__ import annotations

import argparse
import os


def add_serve_parser(subparsers) -> argparse.ArgumentParser:
    """Register the `serve` subcommand on the CLI's subparsers."""
    p = subparsers.add_parser(
        "serve", help="serve a local HF causal LM (e.g. a trained student) over an OpenAI-compatible API"
    )
    p.add_argument("model_dir", help="a saved transformers model directory (or hub id)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback only)")
    p.add_argument("--port", type=int, default=8000, help="port (0: any free port, printed at start)")
    p.add_argument("--model-name", help="model id clients must send (default: MODEL_DIR as given, like vLLM)")
    p.add_argument(
        "--api-key-env",
        help="NAME of an environment variable holding the API key clients must send as a Bearer token",
    )
    p.add_argument("--max-batch-size", type=int, default=32, help="rows (prompts x n) per generate call")
    p.add_argument(
        "--batch-wait-ms", type=float, default=5.0, help="how long to collect requests into a batch"
    )
    p.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    p.add_argument("--dtype", help="float32, bfloat16, float16 (default: the checkpoint's)")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--log-level", default="warning", help="uvicorn log level (default: warning)")
    p.add_argument(
        "--access-log", action="store_true", help="log every request (client, method, path, status), at any --log-level"
    )
    p.add_argument("--port-file", help=argparse.SUPPRESS)  # launcher: where to write the bound port
    p.add_argument("--parent-pid", type=int, help=argparse.SUPPRESS)  # launcher: exit when it dies
    return p


def serve_main(args: argparse.Namespace) -> int:
    """Run the server until interrupted (SIGINT / SIGTERM); returns the exit code."""
    check_args(args)  # before the (slow) model load: a typo fails in a fraction of a second
    from reasondistill.serve.server import run_server

    return run_server(args)


_LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")
_DTYPES = ("float32", "bfloat16", "float16", "auto")


def check_args(args: argparse.Namespace) -> None:
    """Refuse flag values that would only fail later (or never: a batch size of 0 hangs)."""
    from reasondistill.errors import ReasonDistillError

    problems = []
    if not 0 <= args.port <= 65535:
        problems.append(f"--port {args.port}: must be 0..65535 (0: any free port)")
    if args.max_batch_size < 1:
        problems.append(f"--max-batch-size {args.max_batch_size}: must be >= 1")
    if args.batch_wait_ms < 0:
        problems.append(f"--batch-wait-ms {args.batch_wait_ms:g}: must be >= 0")
    if args.threads is not None and args.threads < 1:
        problems.append(f"--threads {args.threads}: must be >= 1")
    if args.dtype is not None and args.dtype not in _DTYPES:
        problems.append(f"--dtype {args.dtype}: use one of {', '.join(_DTYPES)}")
    if args.log_level.lower() not in _LOG_LEVELS:
        problems.append(f"--log-level {args.log_level}: use one of {', '.join(_LOG_LEVELS)}")
    if args.api_key_env and not os.environ.get(args.api_key_env):
        problems.append(f"--api-key-env: environment variable {args.api_key_env} is not set or empty")
    if problems:
        raise ReasonDistillError("; ".join(problems))


__all__ = ["add_serve_parser", "serve_main"]
