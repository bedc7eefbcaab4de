"""A stage directory's lock and its verified outputs.

Lock: a run holds `<stage dir>/.lock` (an OS advisory lock, `flock`) while it runs the stage,
so a second run of the same stage fails at once naming the holder's pid instead of writing into
the same files. The OS drops the lock when its process dies, so a killed run leaves no lock a
later run must clean up: the file may remain, the lock does not.

Verified outputs: the completion marker records every output file's size and sha256. A rerun
checks every size (a stat per file) and, with `--verify`, every hash; a finished stage whose
files changed is never used silently (`DamagedStage` names the stage and the file).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from pathlib import Path

from reasondistill.errors import ReasonDistillError

LOCK = ".lock"
NOT_OUTPUTS = {LOCK, "_COMPLETE"}


class StageBusy(ReasonDistillError):
    """Another process is running this stage."""


class DamagedStage(ReasonDistillError):
    """A finished stage's output files differ from what its marker recorded."""


class StageLock:
    """Exclusive, non-blocking lock on a stage directory (created if needed)."""

    def __init__(self, stage_dir: Path, name: str) -> None:
        self.dir, self.name, self._fd = Path(stage_dir), name, None

    def __enter__(self) -> StageLock:
        self.dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.dir / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise StageBusy(
                f"stage {self.name} is being run by another process (pid {holder}, lock {self.dir / LOCK}); "
                "wait for it to finish, or stop it, then run again"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def output_files(stage_dir: Path) -> list[Path]:
    """Every regular file under the stage directory except the lock and the marker, sorted."""
    root = Path(stage_dir)
    return sorted(p for p in root.rglob("*") if p.is_file() and p.relative_to(root).as_posix() not in NOT_OUTPUTS)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def record_outputs(stage_dir: Path) -> dict[str, dict]:
    """{relative path: {size, sha256}} of every output file, for the completion marker."""
    root = Path(stage_dir)
    return {p.relative_to(root).as_posix(): {"size": p.stat().st_size, "sha256": sha256(p)} for p in output_files(root)}


def check_outputs(stage_dir: Path, name: str, recorded: dict[str, dict] | None, full: bool) -> None:
    """Raise DamagedStage if a recorded file is missing, has another size or (full) another hash.

    Markers written before outputs were recorded (`recorded` None) are trusted as they were."""
    if recorded is None:
        return
    root = Path(stage_dir)
    for rel, want in recorded.items():
        path = root / rel
        problem = None
        if not path.is_file():
            problem = "is missing"
        elif path.stat().st_size != want["size"]:
            problem = f"has {path.stat().st_size} bytes, {want['size']} when the stage completed"
        elif full and sha256(path) != want["sha256"]:
            problem = "has other contents (sha256) than when the stage completed"
        if problem:
            raise DamagedStage(
                f"stage {name}: output {rel} {problem}; delete {root} to run the stage again"
            )
