"""Run a Python hypothesis on inputs in a locked-down subprocess (program hypotheses: Wang et al.,
"Hypothesis Search", arXiv 2309.05660, write rules as Python; ReDis writes them in words).

A hypothesis is Python source defining `f` (or one `lambda` expression); `run_program` applies it to
every input in ONE fresh process and returns an output or an error per input, or a reason the
whole run failed. Nothing the program does may harm the host or the run, and every failure scores
0 with its reason. The layers, each enough for some attacks and none trusted alone:

1. Process: a new session (the whole process group is SIGKILLed at the wall-clock limit), an empty
   environment (`env={}`: no secrets, no PYTHON* variables) and `python -I -S -B` (isolated mode:
   no user site, no site-packages, no bytecode written), cwd a fresh temporary directory removed
   afterwards, no inherited file descriptors, stdin closed after the request is read.
2. Kernel limits (setrlimit, set by the child before any untrusted code): CPU seconds (SIGXCPU,
   then SIGKILL a second later), address space, file size, open files, no core dumps, and no new
   processes (RLIMIT_NPROC 0: fork and thread bombs fail at once).
3. Namespaces and identity: the child unshares a network namespace (only a down loopback in it),
   chroots into the temporary directory (no host file exists for it, /proc included) and, run as
   root (as in CI containers), drops to uid/gid 65534 (nobody), so it can neither signal nor touch
   the run's processes and files. As another user it asks for an unprivileged user + mount +
   network namespace to do the same, then empties its capability sets (capset) under
   no_new_privs: inside a user namespace it would otherwise keep CAP_SYS_CHROOT and could chroot
   again to walk out of the jail (chroot raises no audit event). **Fails closed**: if the chroot
   or the privilege drop does not hold (a kernel without unprivileged user namespaces, a
   container without CAP_SYS_CHROOT), the program is not run and every input scores 0 with
   "sandbox unavailable" (the audit hook alone misses calls such as mkfifo / mknod / stat). The
   network namespace may be refused where the chroot holds (rootful Docker lacks CAP_SYS_ADMIN):
   then sockets rest on layer 4 (`network` = "audit-hook"). No seccomp: it needs a compiled filter.
4. Inside Python: an audit hook (PEP 578, irremovable once added) refuses process creation,
   signals, sockets, ctypes/mmap, imports beyond a small allowlist, resource changes, and every
   file-system call outside the temporary directory (open, listdir, remove, rename, chmod, ...),
   and the program's builtins lack `open`, `input` and a free `__import__`; it also caps the files
   written (opened for writing, or directories made) at 64, which with the file-size limit bounds
   the disk a program can fill. Audit hooks alone can
   be bypassed (they do not cover raw memory access); layers 1-3 hold regardless.
5. Output: the parent reads at most `output_bytes` (a flood is killed, not buffered) and accepts
   only a well-formed result record; anything else scores 0 with "no result". The record is the
   child's word: a program that writes its own record to fd 1 and exits can forge it, outputs
   (which it could return anyway) and the self-reported `network` / `jailed` fields alike.
"""

from __future__ import annotations

import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

NOBODY = 65534
CHILD = Path(__file__).with_name("_sandbox_child.py")


@dataclass(frozen=True)
class Limits:
    cpu_s: int = 2  # CPU seconds for the whole run (all inputs)
    wall_s: float = 5.0  # wall-clock seconds, start-up included
    memory_mb: int = 512  # address space
    output_bytes: int = 1 << 20  # what the parent reads back at most
    file_bytes: int = 1 << 20  # largest file the program may write (in its temp dir)


@dataclass
class RunResult:
    outputs: list[str | None]  # one per input: the rule's output as text, or None
    errors: list[str | None]  # one per input: why there is no output
    reason: str | None = None  # why the whole run failed (timeout, crash, no result, ...)
    network: str = ""  # how network access was cut: "namespace" or "audit-hook"
    jailed: bool = False  # chrooted into its temporary directory
    wall_s: float = 0.0
    stderr: str = field(default="", repr=False)


def run_program(source: str, inputs: list[str], limits: Limits = Limits()) -> RunResult:
    """Apply the hypothesis `source` to each input (text as in the task files) in a sandbox."""
    tmp = tempfile.mkdtemp(prefix="rd-sandbox-")
    if os.geteuid() == 0:
        os.chown(tmp, NOBODY, NOBODY)
    try:
        return _spawn(
            {"source": source, "inputs": inputs, "tmp": tmp, "limits": limits.__dict__}, tmp, limits
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _spawn(request: dict, cwd: str, limits: Limits) -> RunResult:
    """One sandbox process on `request` (its `tmp` is where the child jails itself)."""
    n, start = len(request["inputs"]), time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-I", "-S", "-B", str(CHILD)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={}, cwd=cwd, start_new_session=True, close_fds=True,
    )  # fmt: skip
    out, err, reason = _talk(proc, json.dumps(request).encode(), limits, start)
    result = _parse(out, n)
    result.wall_s, result.stderr = time.monotonic() - start, err.decode("utf-8", "replace")[-2000:]
    if reason is None and proc.returncode != 0:  # killed or exited early: say how, not just "no result"
        reason = _exit_reason(proc.returncode, limits)
    if reason is not None:
        result.reason = reason
        result.outputs = [None] * n
        result.errors = [reason] * n
    return result


def _talk(
    proc: subprocess.Popen, request: bytes, limits: Limits, start: float
) -> tuple[bytes, bytes, str | None]:
    """Send the request, read stdout/stderr up to the caps, kill the group at the deadline."""
    try:
        proc.stdin.write(request)
        proc.stdin.close()
    except BrokenPipeError:
        pass
    bufs = {proc.stdout: bytearray(), proc.stderr: bytearray()}
    sel = selectors.DefaultSelector()
    for f in bufs:
        sel.register(f, selectors.EVENT_READ)
    reason = None
    while sel.get_map():
        left = limits.wall_s - (time.monotonic() - start)
        if left <= 0:
            reason = f"wall-clock limit ({limits.wall_s:g} s)"
            break
        for key, _ in sel.select(timeout=left):
            chunk = os.read(key.fd, 65536)
            if not chunk:
                sel.unregister(key.fileobj)
                continue
            bufs[key.fileobj] += chunk
            if len(bufs[proc.stdout]) > limits.output_bytes:
                reason = f"output over {limits.output_bytes} bytes"
            bufs[proc.stderr][:] = bufs[proc.stderr][-65536:]  # keep the tail only
        if reason:
            break
    _kill(proc)
    sel.close()
    for f in bufs:
        f.close()
    return bytes(bufs[proc.stdout]), bytes(bufs[proc.stderr]), reason


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # the whole session: nothing it started survives
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def _exit_reason(code: int, limits: Limits) -> str:
    if code < 0:
        sig = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else str(-code)
        if sig in ("SIGXCPU", "SIGKILL"):
            return f"killed by {sig} (CPU limit {limits.cpu_s} s, or memory)"
        return f"crashed ({sig})"
    return f"exited with status {code} before writing a result"


def _parse(out: bytes, n: int) -> RunResult:
    """The child's result record: the last line of stdout, {"outputs", "errors", "network"}."""
    lines = out.strip().splitlines()
    rec: object = None
    try:
        rec = json.loads(lines[-1])
        outputs, errors = rec["outputs"], rec["errors"]
        ok = len(outputs) == len(errors) == n and all(o is None or isinstance(o, str) for o in outputs)
        ok = ok and all(e is None or isinstance(e, str) for e in errors)
    except (ValueError, KeyError, TypeError, IndexError):
        ok = False
    if not ok:
        return RunResult([None] * n, ["no result"] * n, reason="no result")
    fatal = rec.get("fatal") if isinstance(rec.get("fatal"), str) else None
    return RunResult(outputs, errors, fatal, str(rec.get("network", "")), rec.get("jailed") is True)
