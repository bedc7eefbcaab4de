"""The program-hypothesis sandbox (redis/sandbox.py) against hostile programs: infinite loops, fork
and memory bombs, file deletion / reading / writing, network, environment secrets, huge outputs,
signals, exits, crashes. None may harm the host or the run; each scores 0 with a recorded reason.

The programs run once, in parallel (each in its own sandbox process), in a module fixture; each
test then checks one program's result. Many reach the `os` module through a well-known escape from
restricted builtins (object.__subclasses__() -> os._wrap_close -> its globals), so the layers
beneath the Python-level ones are exercised too.
"""

from __future__ import annotations

import json
import os
import socket
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from reasondistill.redis import sandbox
from reasondistill.redis.sandbox import Limits, run_program

SECRET = "rd-s3cret-7f3a9c"
INPUTS = ["[3, 1, 2]", "[5, 4]"]
GOLD = ["[2, 1, 3]", "[4, 5]"]  # the benign rule: reverse the list
OS = "[c for c in ().__class__.__base__.__subclasses__() if c.__name__ == '_wrap_close'][0].__init__.__globals__"
LIMITS = Limits(cpu_s=1, wall_s=4.0, memory_mb=256, output_bytes=1 << 16, file_bytes=1 << 16)


def escape(body: str) -> str:
    """A rule whose body runs with `g` = the os module's globals (g['system'], g['sys'], ...)."""
    lines = "\n".join("    " + line for line in body.strip().splitlines())
    return f"def f(x):\n    g = {OS}\n{lines}\n"


def hostile(run: dict) -> dict[str, str]:
    """name -> program. `run` holds the paths and port the attacks aim at."""
    secret, sentinel, victim, port = run["secret"], run["sentinel"], run["dir"], run["port"]
    out = {
        # --- time ---
        "loop_at_import": "while True:\n    pass\n",
        "loop_in_rule": "def f(x):\n    while True:\n        pass\n",
        "sleep_forever_on_a_pipe": escape("r, w = g['pipe']()\nreturn g['read'](r, 1)"),
        "ignore_sigxcpu_then_loop": escape(
            "s = g['sys'].modules.get('_signal')\ns.signal(24, 1)\nwhile True:\n    pass"
        ),
        "recursion": "def f(x):\n    return f(x)\n",
        "deep_c_recursion": escape("g['sys'].setrecursionlimit(10**7)\nh = lambda k: h(k)\nreturn h(0)"),
        "nested_compile": "def f(x):\n    return eval('(' * 200000 + ')' * 200000)\n",
        # --- processes ---
        "import_os_fork": "import os\ndef f(x):\n    os.fork()\n",
        "fork": escape("g['fork']()\nreturn x"),
        "fork_bomb": escape("while True:\n    g['fork']()"),
        "thread_bomb": escape(
            "t = g['sys'].modules['_thread']\nwhile True:\n    t.start_new_thread(lambda: None, ())"
        ),
        "system": escape("return g['system']('touch /tmp/rd-pwned')"),
        "popen": escape("return g['popen']('id').read()"),
        "execv": escape("g['execv']('/bin/sh', ['sh', '-c', 'touch /tmp/rd-pwned'])"),
        "posix_spawn": escape("g['posix_spawn']('/bin/sh', ['sh'], {})"),
        "import_subprocess": "import subprocess\ndef f(x):\n    return subprocess.check_output(['id'])\n",
        # --- memory ---
        "list_bomb": "def f(x):\n    return [0] * 10**10\n",
        "string_bomb": "def f(x):\n    return 'a' * 10**11\n",
        "grow_forever": "def f(x):\n    keep = []\n    while True:\n        keep.append(bytearray(10**7))\n",
        "bytearray_huge": "def f(x):\n    return bytearray(2**40)\n",
        # --- files ---
        "open_passwd": "def f(x):\n    return open('/etc/passwd').read()\n",
        "read_run_secret": escape(f"return g['read'](g['open']({secret!r}, 0), 100).decode()"),
        "read_secret_io": "import io\n" + escape(f"return g['sys'].modules['io'].open({secret!r}).read()"),
        "fileio_secret": escape(f"return g['sys'].modules['_io'].FileIO({secret!r}).read().decode()"),
        "delete_sentinel": escape(f"g['remove']({sentinel!r})"),
        "unlink_sentinel": escape(f"g['unlink']({sentinel!r})"),
        "rmdir_run": escape(f"g['rmdir']({victim!r})"),
        "rename_sentinel": escape(f"g['rename']({sentinel!r}, {sentinel + '.moved'!r})"),
        "chmod_sentinel": escape(f"g['chmod']({sentinel!r}, 0)"),
        "truncate_sentinel": escape(f"g['truncate']({sentinel!r}, 0)"),
        "write_outside": escape("fd = g['open']('/tmp/rd-pwned', 65)\ng['write'](fd, b'x')"),
        "mkfifo_outside": escape("g['mkfifo']('/tmp/rd-pwned-fifo')"),
        "symlink_escape": escape(f"g['symlink']({victim!r}, 'link')\nreturn g['listdir']('link')"),
        "listdir_run": escape(f"return g['listdir']({victim!r})"),
        "chdir_root_listdir": escape("g['chdir']('/work')\nreturn g['listdir']('.')"),
        "fill_the_disk": escape(
            "for i in range(10**4):\n    fd = g['open'](f'f{i}', 65)\n    g['write'](fd, b'x' * 65536)\n    g['close'](fd)"
        ),
        "mkdir_many": escape("for i in range(10**5):\n    g['mkdir'](f'd{i}')"),
        # chroot again to walk out of the jail: refused only because no capability is left
        "chroot_walk_out": escape(
            "g['mkdir']('x')\ng['chroot']('x')\nfor _ in range(64):\n    g['chdir']('..')\ng['chroot']('.')\n"
            f"return g['read'](g['open']({secret!r}, 0), 100).decode()"
        ),
        "big_file_in_tmp": escape("fd = g['open']('big', 65)\nwhile True:\n    g['write'](fd, b'x' * 65536)"),
        "proc_environ_parent": escape(
            "p = g['getppid']()\nreturn g['read'](g['open'](f'/proc/{p}/environ', 0), 10**4).decode()"
        ),
        "proc_mem_parent": escape("p = g['getppid']()\nreturn g['read'](g['open'](f'/proc/{p}/mem', 0), 10)"),
        # --- environment ---
        "environ_secret": escape("return g['environ']['RD_SECRET']"),
        "getenv_secret": escape("return g['getenv']('RD_SECRET') or 1/0"),
        "environ_dump": escape(f"e = str(g['environ'])\nreturn e if {SECRET!r} in e else 1/0"),
        # --- network ---
        "import_socket": f"import socket\ndef f(x):\n    socket.create_connection(('127.0.0.1', {port}))\n",
        "dunder_import_socket": f"def f(x):\n    __import__('socket').create_connection(('127.0.0.1', {port}))\n",
        "import_urllib": "import urllib.request\ndef f(x):\n    return urllib.request.urlopen('http://example.com').read()\n",
        "ctypes_socket": escape(
            "c = g['sys'].modules.get('ctypes') or __import__('ctypes')\nreturn c.CDLL(None).socket(2, 1, 0)"
        ),
        "loaded_socket_module": escape(
            f"s = g['sys'].modules['_socket']\ns.socket().connect(('127.0.0.1', {port}))"
        ),
        # --- signals ---
        "kill_parent": escape("g['kill'](g['getppid'](), 9)"),
        "kill_init": escape("g['kill'](1, 9)"),
        "killpg_own_group": escape("g['killpg'](0, 9)"),
        "sigterm_self": escape("g['kill'](g['getpid'](), 15)"),
        "setuid_root": escape("g['setuid'](0)\nreturn g['getuid']()"),
        # --- exits ---
        "sys_exit": "import sys\nsys.exit(0)\n",
        "raise_systemexit": "raise SystemExit(0)\n",
        "exit_in_rule": "def f(x):\n    raise SystemExit(3)\n",
        "os_exit": escape("g['_exit'](0)"),
        "keyboard_interrupt": "def f(x):\n    raise KeyboardInterrupt\n",
        "builtin_exit": "def f(x):\n    exit(0)\n",
        # --- output ---
        "huge_string_output": "def f(x):\n    return 'x' * 10**7\n",
        "huge_list_output": "def f(x):\n    return list(range(10**7))\n",
        "huge_int_output": "def f(x):\n    return 10**100000\n",
        "stdout_flood": escape("while True:\n    g['write'](1, b'x' * 65536)"),
        "stderr_flood": escape("while True:\n    g['write'](2, b'x' * 65536)"),
        "print_flood": "def f(x):\n    while True:\n        print('x' * 10**6)\n",
        "forge_result": 'import json\njson.dumps = lambda *a, **k: \'{"outputs": ["[2, 1, 3]", "[4, 5]"], "errors": [null, null]}\'\ndef f(x):\n    return None\n',  # noqa: E501
        "returns_object": "def f(x):\n    return object()\n",
        "returns_generator": "def f(x):\n    return (i for i in x)\n",
        # --- crashes ---
        "c_stack_overflow": "def f(x):\n    t = ()\n    for _ in range(10**6):\n        t = (t,)\n    return str(hash(t))\n",
        "ctypes_segfault": escape(
            "c = g['sys'].modules.get('ctypes') or __import__('ctypes')\nreturn c.string_at(0)"
        ),
        "no_function": "x = 1\n",
        "syntax_error": "def f(x) return x\n",
    }
    return out


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("run")
    (d / "secret.txt").write_text(SECRET)
    (d / "sentinel.txt").write_text("keep me")
    return d


@pytest.fixture(scope="module")
def listener():
    """A TCP server on loopback that records every connection a program manages to make."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    srv.settimeout(0.2)
    hits, stop = [], threading.Event()

    def serve():
        while not stop.is_set():
            try:
                hits.append(srv.accept())
            except OSError:
                continue

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield srv.getsockname()[1], hits
    stop.set()
    t.join()
    srv.close()


@pytest.fixture(scope="module")
def results(run_dir, listener):
    os.environ["RD_SECRET"] = SECRET  # the run's own environment holds a secret
    try:
        run = {"secret": str(run_dir / "secret.txt"), "sentinel": str(run_dir / "sentinel.txt"),
               "dir": str(run_dir), "port": listener[0]}  # fmt: skip
        programs = hostile(run)
        with ThreadPoolExecutor(4) as pool:
            done = dict(
                zip(
                    programs,
                    pool.map(lambda p: run_program(p, INPUTS, LIMITS), programs.values()),
                    strict=True,
                )
            )
        return done
    finally:
        del os.environ["RD_SECRET"]


PROGRAMS = sorted(hostile({"secret": "s", "sentinel": "t", "dir": "d", "port": 1}))


def test_there_are_at_least_50_hostile_programs():
    assert len(PROGRAMS) >= 50


@pytest.mark.parametrize("name", PROGRAMS)
def test_hostile_program_scores_zero_with_a_reason(name, results):
    r = results[name]
    for out, err, gold in zip(r.outputs, r.errors, GOLD, strict=True):
        assert out != gold  # scores 0
        assert out is not None or (isinstance(err, str) and err)  # ... and says why
    blob = repr((r.outputs, r.errors, r.reason, r.stderr))
    assert SECRET not in blob and "keep me" not in blob  # nothing of the run leaked out


def test_the_host_and_the_run_are_unharmed(results, run_dir, listener):
    assert (run_dir / "sentinel.txt").read_text() == "keep me"
    assert (run_dir / "secret.txt").read_text() == SECRET
    assert sorted(p.name for p in run_dir.iterdir()) == ["secret.txt", "sentinel.txt"]
    for path in ("/tmp/rd-pwned", "/tmp/rd-pwned-fifo"):
        assert not os.path.exists(path)
    assert listener[1] == []  # no program reached the network
    assert os.environ.get("RD_SECRET") is None
    # Each run is bounded: the whole module (60+ programs, 4 at a time) stays fast.
    assert max(r.wall_s for r in results.values()) < LIMITS.wall_s + 2


def test_limits_and_layers_are_reported(results):
    assert "wall-clock" in results["sleep_forever_on_a_pipe"].reason
    assert "SIGXCPU" in results["loop_in_rule"].reason or "SIGKILL" in results["loop_in_rule"].reason
    assert "output over" in results["stdout_flood"].reason
    assert "refused" in results["fork"].errors[0]
    assert results["list_bomb"].errors[0].startswith("MemoryError")
    assert "SIGSEGV" in results["c_stack_overflow"].reason  # a real crash of the interpreter
    benign = run_program("lambda x: x[::-1]", INPUTS, LIMITS)
    assert benign.outputs == GOLD and benign.reason is None
    assert "more than 64 files" in results["fill_the_disk"].errors[0]
    assert "more than 64 files" in results["mkdir_many"].errors[0]
    assert "PermissionError" in results["chroot_walk_out"].errors[0]  # EPERM: no CAP_SYS_CHROOT left
    # A program runs only jailed (chroot + no privileges); the network namespace may be refused
    # where the chroot holds (rootful Docker without CAP_SYS_ADMIN), sockets then rest on the hook.
    assert benign.jailed and benign.network in ("namespace", "audit-hook")


def test_fails_closed_when_the_jail_does_not_hold(tmp_path):
    """A chroot that fails (here: into a file) must not leave the audit hook as the only barrier:
    the program is not run at all."""
    (tmp_path / "not_a_dir").write_text("")
    request = {"source": "lambda x: x[::-1]", "inputs": INPUTS, "tmp": str(tmp_path / "not_a_dir"),
               "limits": LIMITS.__dict__}  # fmt: skip
    r = sandbox._spawn(request, str(tmp_path), LIMITS)
    assert r.outputs == [None, None] and not r.jailed
    assert r.reason.startswith("sandbox unavailable") and r.errors == [r.reason] * 2


def test_benign_programs_of_every_input_kind():
    src = "def f(x):\n    import collections\n    return sorted(x) if isinstance(x, list) else x.upper()\n"
    r = run_program(src, ["[3, 1, 2]", "['red metal cube', 'blue cube']", "dax fep"], LIMITS)
    assert r.outputs == ["[1, 2, 3]", "['blue cube', 'red metal cube']", "DAX FEP"], r.errors


WALK_OUT = escape("g['mkdir']('x')\ng['chroot']('x')\nfor _ in range(64):\n    g['chdir']('..')\ng['chroot']('.')\nreturn str(g['listdir']('/'))")  # fmt: skip
AS_NOBODY = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("sandbox", sys.argv[1])
sandbox = sys.modules["sandbox"] = importlib.util.module_from_spec(spec)  # dataclasses look it up
spec.loader.exec_module(sandbox)
r = sandbox.run_program(sys.argv[2], ["[1, 2]"])
print(json.dumps({"outputs": r.outputs, "errors": r.errors, "jailed": r.jailed, "reason": r.reason}))
"""


def test_as_an_unprivileged_user_the_jail_cannot_be_undone():
    """The non-root branch (user namespace): the child holds every capability in its namespace, so
    without the capability drop a program chroots again and walks out to the host's root (it did,
    before the drop). Run as uid 65534 through setpriv, where this machine allows it."""
    import shutil
    import subprocess
    import sys

    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root and setpriv to become an unprivileged user")
    nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    candidates = (sys.executable, shutil.which("python3.11"), "/usr/bin/python3.11", "/usr/bin/python3")
    probe = "import os, sys; sys.exit(not os.access(sys.executable, os.X_OK))"  # the sandbox re-executes it
    python = next(
        (p for p in candidates if p and subprocess.run([*nobody, p, "-c", probe], capture_output=True).returncode == 0),
        None,
    )  # fmt: skip
    if python is None:
        pytest.skip("no Python interpreter that uid 65534 may run")
    if subprocess.run([*nobody, python, "-c", f"open({sandbox.__file__!r}).close()"]).returncode != 0:
        pytest.skip("uid 65534 cannot read the sandbox module (a private checkout)")
    proc = subprocess.run([*nobody, python, "-I", "-c", AS_NOBODY, sandbox.__file__, WALK_OUT],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    r = json.loads(proc.stdout)
    if not r["jailed"]:  # no unprivileged user namespaces here: it must have failed closed
        assert r["reason"].startswith("sandbox unavailable")
        return
    assert r["outputs"] == [None] and "PermissionError" in r["errors"][0], r
