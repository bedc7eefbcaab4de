"""Where a result came from: what each stage.json and plan file records about an invocation.

Recorded once per invocation (`invocation()`): the command line, the recipe file, the package
version, the versions of the libraries that decide numerics (read from installed metadata:
nothing is imported), and the git commit of the recipe's repository when it is in one (with
a `dirty` flag when it has uncommitted changes). Each stage.json adds its inputs' directories
and hashes and its start and end times.
"""

from __future__ import annotations

import datetime
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import reasondistill

LIBRARIES = ("torch", "transformers", "accelerate", "peft", "trl", "tokenizers", "datasets")


def now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def library_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_state(path: Path) -> dict | None:
    """{commit, dirty} of the git repository holding `path`, or None outside one (or without git)."""
    where = path if path.is_dir() else path.parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(where), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        )
        if commit.returncode != 0:
            return None
        status = subprocess.run(
            ["git", "-C", str(where), "status", "--porcelain"], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return {"commit": commit.stdout.strip(), "dirty": bool(status.stdout.strip())}


def invocation(recipe_path: str | Path | None, argv: list[str] | None = None) -> dict:
    """What every stage run by this process records about how it was started."""
    path = Path(recipe_path).resolve() if recipe_path else None
    return {
        "command": list(sys.argv if argv is None else argv),
        "recipe": str(path) if path else None,
        "git": git_state(path) if path else None,
        "reasondistill": reasondistill.__version__,
        "python": sys.version.split()[0],
        "libraries": library_versions(),
    }
