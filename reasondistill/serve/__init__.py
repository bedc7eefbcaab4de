"""`reasondistill serve MODEL_DIR`: an OpenAI-compatible server for any local HF causal LM.

Endpoints: /v1/models, /v1/completions, /v1/chat/completions (with logprobs / top_logprobs,
n, stop, temperature, top_p, seed), /health. Concurrent requests are batched (engine.py).
This module stays light (argparse only) so the CLI starts fast; the server imports torch
and FastAPI when it runs.
"""

from __future__ import annotations

import argparse


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
    p.add_argument("--log-level", default="warning", help="uvicorn log level")
    p.add_argument("--access-log", action="store_true", help="log every request (method, path, status)")
    p.add_argument("--port-file", help=argparse.SUPPRESS)  # launcher: where to write the bound port
    p.add_argument("--parent-pid", type=int, help=argparse.SUPPRESS)  # launcher: exit when it dies
    return p


def serve_main(args: argparse.Namespace) -> int:
    """Run the server until interrupted (SIGINT / SIGTERM); returns the exit code."""
    from reasondistill.serve.server import run_server

    return run_server(args)


__all__ = ["add_serve_parser", "serve_main"]
