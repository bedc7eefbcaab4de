"""`serve: {stage: ...}` of the `openai` teacher: run `reasondistill serve` for the stage's duration.

The server is a child process on a free loopback port, its output in `<stage dir>/serve.log`.
It is stopped when the stage ends, and it exits by itself if the stage's process dies (it
watches its parent pid), so a SIGKILLed run leaves no server behind.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from reasondistill.errors import ReasonDistillError


@contextmanager
def served_model(
    model_dir: str,
    log_dir: Path,
    *,
    api_key_env: str | None = None,
    max_batch_size: int = 32,
    device: str | None = None,
    threads: int | None = None,
    startup_timeout: float = 600.0,
) -> Iterator[str]:
    """Yield the base URL ("http://127.0.0.1:PORT/v1") of a `reasondistill serve` of `model_dir`."""
    log_dir.mkdir(parents=True, exist_ok=True)
    port_file = log_dir / "serve.port"
    port_file.unlink(missing_ok=True)
    cmd = [
        sys.executable, "-m", "reasondistill.cli", "serve", model_dir,
        "--host", "127.0.0.1", "--port", "0", "--port-file", str(port_file),
        "--parent-pid", str(os.getpid()), "--max-batch-size", str(max_batch_size),
    ]  # fmt: skip
    if api_key_env:
        cmd += ["--api-key-env", api_key_env]  # the name only: the child reads the value itself
    if device:
        cmd += ["--device", device]
    if threads:
        cmd += ["--threads", str(threads)]
    log_path = log_dir / "serve.log"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        base_url = _wait_ready(proc, port_file, log_path, startup_timeout)
        yield base_url
    finally:
        _stop(proc)
        port_file.unlink(missing_ok=True)


def _wait_ready(proc: subprocess.Popen, port_file: Path, log_path: Path, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace").strip().splitlines()[-3:]
            raise ReasonDistillError(
                f"`reasondistill serve` exited with code {proc.returncode} before it was ready "
                f"(log: {log_path}): " + " | ".join(tail)
            )
        if port_file.exists():
            base = f"http://127.0.0.1:{port_file.read_text().strip()}"
            try:
                if httpx.get(base + "/health", timeout=2).status_code == 200:
                    return base + "/v1"
            except httpx.HTTPError:
                pass  # bound but not accepting yet
        time.sleep(0.1)
    raise ReasonDistillError(f"`reasondistill serve` was not ready after {timeout:g}s (log: {log_path})")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()  # uvicorn shuts down gracefully on SIGTERM
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)
