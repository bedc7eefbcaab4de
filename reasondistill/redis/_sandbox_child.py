"""The sandboxed side of redis/sandbox.py: run as `python -I -S -B _sandbox_child.py`.

Reads one JSON request on stdin, locks itself down (network namespace, chroot into the temporary
directory, privileges, rlimits, audit hook, restricted builtins; see sandbox.py for why each), then
runs the hypothesis on every input (only if the jail held: it fails closed) and writes ONE JSON line on stdout. Standard library only, and everything it needs is imported
before the lock-down: afterwards even a lazy import of the standard library is refused.
"""

import ast
import builtins
import ctypes
import ctypes.util
import io
import json
import os
import resource
import sys

ALLOWED = ("math", "re", "itertools", "functools", "collections", "string", "operator", "heapq", "bisect",
           "statistics", "copy", "json", "fractions", "decimal", "random")  # fmt: skip
for _name in ALLOWED:
    __import__(_name)
DENY_PREFIXES = ("os.", "subprocess.", "socket.", "ctypes.", "mmap.", "resource.", "shutil.", "pty.", "fcntl.",
                 "signal.", "sys._current_frames", "winreg", "_winapi", "webbrowser", "urllib.", "http.",
                 "ftplib.", "smtplib.", "telnetlib.", "imaplib.", "poplib.", "nntplib.", "glob.", "tempfile.",
                 "syslog.", "sqlite3.", "pathlib.")  # fmt: skip
PATH_EVENTS = {"os.listdir", "os.scandir", "os.mkdir", "os.remove", "os.rmdir", "os.rename", "os.chmod",
               "os.chown", "os.truncate", "os.symlink", "os.link", "os.utime", "os.chdir", "os.chflags",
               "os.walk", "os.fwalk", "os.lockf"}  # fmt: skip
CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWNET = 0x00020000, 0x10000000, 0x40000000


class _CapHeader(ctypes.Structure):  # capget(2) / capset(2), _LINUX_CAPABILITY_VERSION_3
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


def drop_capabilities(libc) -> bool:
    """Empty every capability set and forbid regaining any (no_new_privs). In a user namespace the
    child holds all capabilities, CAP_SYS_CHROOT included, with which a program could chroot
    again and walk out of the jail (chroot raises no audit event): they must go before it runs."""
    if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
        return False
    header, data = _CapHeader(0x20080522, 0), (_CapData * 2)()
    return libc.capset(ctypes.byref(header), data) == 0


def isolate(tmp: str) -> tuple[str, bool]:
    """A new network namespace (only a down loopback in it), then chroot into the temporary
    directory, then no privileges: as root uid/gid nobody (which empties the capability sets), as
    another user (inside a user namespace) every capability dropped. Returns (how the network is
    cut, jailed): jailed only when the chroot held AND nothing can undo it."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    root = os.geteuid() == 0
    # As another user, a user namespace grants the capabilities the other two steps need.
    flags = CLONE_NEWNET if root else CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWNET
    network = "namespace" if libc.unshare(flags) == 0 else "audit-hook"
    try:
        os.chroot(tmp)
        os.chdir("/")
        jailed = True
    except OSError:
        jailed = False
    if root:
        os.setgroups([])
        os.setgid(65534)
        os.setuid(65534)
    jailed = drop_capabilities(libc) and jailed  # as nobody: already empty, this confirms it
    return network, jailed


def set_limits(lim: dict) -> None:
    cpu = int(lim["cpu_s"])
    mem = int(lim["memory_mb"]) << 20
    for res, value in ((resource.RLIMIT_CPU, (cpu, cpu + 1)), (resource.RLIMIT_AS, (mem, mem)),
                       (resource.RLIMIT_FSIZE, (lim["file_bytes"], lim["file_bytes"])),
                       (resource.RLIMIT_NOFILE, (32, 32)), (resource.RLIMIT_CORE, (0, 0)),
                       (resource.RLIMIT_NPROC, (0, 0))):  # fmt: skip
        resource.setrlimit(res, value)


WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
MAX_WRITES = 64  # files opened for writing + directories made: with RLIMIT_FSIZE, a disk budget


def make_hook(tmp: str):
    root = os.path.realpath(tmp).rstrip(os.sep) + os.sep  # "/" inside the chroot
    writes = [0]  # RLIMIT_FSIZE caps one file, not how many: count them (no filling /tmp)

    def count_write() -> None:
        writes[0] += 1
        if writes[0] > MAX_WRITES:
            raise PermissionError(f"sandbox: more than {MAX_WRITES} files written refused")

    def inside(path) -> bool:
        if isinstance(path, int):  # an open descriptor: only ours exist (stdin is closed)
            return path > 2
        if isinstance(path, bytes):
            path = path.decode("utf-8", "replace")
        return isinstance(path, str) and os.path.realpath(os.path.join(root, path)).startswith(root)

    def hook(event: str, args: tuple) -> None:
        if event == "import":
            if args[0].split(".")[0] not in ALLOWED:
                raise PermissionError(f"sandbox: import of {args[0]!r} refused")
        elif event == "open":
            if not inside(args[0]):
                raise PermissionError(
                    f"sandbox: open of {args[0]!r} refused (outside the temporary directory)"
                )
            mode, flags = args[1], args[2]  # io.open: ("w", flags); os.open: (None, flags)
            by_mode = isinstance(mode, str) and bool(set(mode) & set("wax+"))
            if by_mode or (isinstance(flags, int) and flags & WRITE_FLAGS):
                count_write()
        elif event in PATH_EVENTS:
            if event == "os.mkdir":
                count_write()
            if not all(inside(a) for a in args[:2] if isinstance(a, str | bytes)):
                raise PermissionError(f"sandbox: {event} outside the temporary directory refused")
        elif event.startswith(DENY_PREFIXES) or event in ("subprocess.Popen", "sys.setrecursionlimit"):
            raise PermissionError(f"sandbox: {event} refused")

    return hook


def safe_builtins() -> dict:
    """The builtins a rule needs: no open/input/exit/breakpoint, imports from ALLOWED only."""
    allowed = dict(vars(builtins))
    for name in ("open", "input", "exit", "quit", "breakpoint", "help", "copyright", "credits", "license"):
        allowed.pop(name, None)

    def guarded_import(name, globals=None, locals=None, fromlist=(), level=0):
        if level or name.split(".")[0] not in ALLOWED:
            raise ImportError(f"sandbox: import of {name!r} refused")
        return builtins.__import__(name, globals, locals, fromlist, level)

    allowed["__import__"] = guarded_import
    return allowed


def load_rule(source: str):
    """The callable a hypothesis defines: `f` (or rule / transform / solve), or a lambda expression."""
    env = {"__builtins__": safe_builtins(), "__name__": "hypothesis"}
    text = source.strip()
    if text.startswith("lambda"):
        return eval(compile(text, "<hypothesis>", "eval"), env)  # noqa: S307  (inside the sandbox)
    exec(compile(text, "<hypothesis>", "exec"), env)  # noqa: S102
    for name in ("f", "rule", "transform", "solve"):
        if callable(env.get(name)):
            return env[name]
    raise NameError("the program defines no function f (or rule / transform / solve)")


def as_value(text: str):
    """A task input as Python data: a list literal becomes a list, anything else stays text."""
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return text
    return value if isinstance(value, list) else text


def as_text(value, cap: int) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | list | tuple):
        raise TypeError(f"the rule returned a {type(value).__name__}, not a list or text")
    text = value if isinstance(value, str) else str(list(value) if isinstance(value, tuple) else value)
    if len(text) > cap:
        raise ValueError(f"output of {len(text)} characters (limit {cap})")
    return text


def main() -> None:
    # References taken before any untrusted code runs: a program can rebind module attributes.
    out, dumps, exit_now, sink = os.fdopen(os.dup(1), "w"), json.dumps, os._exit, io.StringIO
    request = json.loads(sys.stdin.buffer.read())
    os.close(0)
    network, jailed = isolate(request["tmp"])
    set_limits(request["limits"])
    sys.stdout = sys.stderr = sink()  # the program's own prints go nowhere
    sys.addaudithook(make_hook("/" if jailed else request["tmp"]))
    for name in ("ctypes", "ctypes.util", "resource"):  # not reachable by name any more
        sys.modules.pop(name, None)
    cap = max(1, request["limits"]["output_bytes"] // max(1, len(request["inputs"])) // 2)
    outputs, errors, fatal, rule = [], [], None, None
    if not jailed:  # fail closed: unjailed, the audit hook alone guards files, and misses some calls
        fatal = "sandbox unavailable: could not chroot into the temporary directory and drop privileges"
    else:
        try:
            rule = load_rule(request["source"])
        except BaseException as e:  # noqa: BLE001  (SystemExit, MemoryError, ... all score 0)
            fatal = f"does not load: {type(e).__name__}: {str(e)[:200]}"
    for text in request["inputs"]:
        if rule is None:
            outputs.append(None)
            errors.append(fatal)
            continue
        try:
            outputs.append(as_text(rule(as_value(text)), cap))
            errors.append(None)
        except BaseException as e:  # noqa: BLE001
            outputs.append(None)
            errors.append(f"{type(e).__name__}: {str(e)[:200]}")
        sys.stdout = sys.stderr = sink()  # a program may have replaced them
    record = {"outputs": outputs, "errors": errors, "fatal": fatal, "network": network, "jailed": jailed}
    out.write(dumps(record) + "\n")
    out.flush()
    exit_now(0)  # no interpreter teardown: atexit handlers the program registered never run


if __name__ == "__main__":
    main()
