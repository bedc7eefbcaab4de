"""Merge model directories tensor by tensor with mergekit, into a plain Hugging Face directory.

`merge_models` checks every input first (same architecture, same tensor names and shapes, same
tokenizer, same prompt-template record, no stray PEFT adapter) and raises one ReasonDistillError
before any merge work. It then streams: read tensor k of every input (merge/checkpoint.py),
merge it with `mergekit.merge_methods.merge_tensors` in fp32, write it, while the next tensor is
read and the previous one written in two helper threads (file I/O and torch kernels release the
GIL). The random drops of DARE are seeded per tensor from (seed, tensor name), so the result does
not depend on the order, the sharding or the device of the merge.

LoRA: a `train` stage with `lora:` saves its model/ already merged into the base weights
(train/save.py), so merging sees plain weights; a directory that holds only an adapter is refused.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from reasondistill.errors import ReasonDistillError
from reasondistill.merge.methods import MergekitCall, MergeMethod, Weighted

# Files of a model directory that are not copied from the reference input: the weights.
_WEIGHTS = (".safetensors", ".bin", ".pt", ".pth", ".gguf")
_SKIP = {"model.safetensors.index.json", "pytorch_model.bin.index.json", "adapter_config.json"}


@dataclass(frozen=True)
class Input:
    label: str  # "base", "models[0]", ... (what errors name)
    path: Path
    weight: float = 1.0
    density: float = 1.0


def describe(inp: Input) -> dict:
    """What compatibility is judged on: architecture, tensors (name -> dtype, shape), tokenizer."""
    from reasondistill.merge.checkpoint import Checkpoint

    cfg_path = inp.path / "config.json"
    if not cfg_path.is_file():
        raise ReasonDistillError(f"merge: {inp.label} {inp.path} is not a model directory (no config.json)")
    if (inp.path / "adapter_config.json").is_file():
        raise ReasonDistillError(
            f"merge: {inp.label} {inp.path} holds a PEFT adapter; merge the adapter into its base first "
            "(a train stage's model/ already is)"
        )
    cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    return {
        "arch": (cfg.get("model_type"), tuple(cfg.get("architectures") or ())),
        "checkpoint": Checkpoint(inp.path),
        "tokenizer": tokenizer_fingerprint(inp.path),
        "template": _template(inp.path),
    }


def tokenizer_fingerprint(path: Path) -> str | None:
    """sha256 of the vocabulary and added tokens of tokenizer.json (None when there is none)."""
    f = Path(path) / "tokenizer.json"
    if not f.is_file():
        return None
    tok = json.loads(f.read_text(encoding="utf-8"))
    vocab = (tok.get("model") or {}).get("vocab")
    added = sorted((t["id"], t["content"]) for t in tok.get("added_tokens", []))
    return hashlib.sha256(json.dumps([vocab, added], sort_keys=True).encode()).hexdigest()


def _template(path: Path) -> str | None:
    from reasondistill.traces.templates.base import read_template_record

    record = read_template_record(path)
    return None if record is None else json.dumps(record, sort_keys=True)


def check_compatible(inputs: list[Input]) -> list[dict]:
    """The inputs' descriptions; one ReasonDistillError naming the first difference found."""
    infos = [describe(i) for i in inputs]
    ref, r = inputs[0], infos[0]
    for inp, info in zip(inputs[1:], infos[1:], strict=True):
        pair = f"{ref.label} ({ref.path}) and {inp.label} ({inp.path})"
        if info["arch"] != r["arch"]:
            raise ReasonDistillError(
                f"merge: {pair} have different architectures: {_arch(r['arch'])} vs {_arch(info['arch'])}"
            )
        a, b = r["checkpoint"].tensors, info["checkpoint"].tensors
        if set(a) != set(b):
            only = sorted(set(a) ^ set(b))[:3]
            raise ReasonDistillError(f"merge: {pair} have different tensors (e.g. {', '.join(only)})")
        for name in a:
            if a[name].shape != b[name].shape:
                raise ReasonDistillError(
                    f"merge: {pair} have different shapes: {name} is {list(a[name].shape)} vs {list(b[name].shape)}"
                )
        if info["tokenizer"] != r["tokenizer"]:
            raise ReasonDistillError(
                f"merge: {pair} have different tokenizers (tokenizer.json vocabularies differ)"
            )
        if info["template"] is not None and r["template"] is not None and info["template"] != r["template"]:
            raise ReasonDistillError(
                f"merge: {pair} were trained with different prompt templates: {r['template']} vs {info['template']}"
            )
    return infos


def _arch(arch: tuple) -> str:
    return f"{arch[0]} ({', '.join(arch[1]) or 'no architectures'})"


def merge_models(
    base: Input | None,
    models: list[Input],
    method: MergeMethod,
    out_dir: Path,
    *,
    seed: int = 0,
    dtype: str = "auto",
    device: str = "cpu",
    max_shard_bytes: int = 5 * 2**30,
) -> dict:
    """Merge `models` (against `base`) into out_dir (a new Hugging Face directory, written via
    out_dir.tmp and renamed last). Returns {"mergekit": call, "tensors": n, "bytes": n}."""
    weighted = [Weighted(m.weight, m.density) for m in models]
    problems = method.problems(weighted, base is not None)
    if problems:
        raise ReasonDistillError(f"merge: {problems[0]}")
    call = method.call(weighted, base is not None)
    inputs = ([base] if base is not None and call.with_base else []) + models
    infos = check_compatible(([base] if base is not None else []) + models)
    if base is not None and not call.with_base:
        infos = infos[1:]
    out_dir = Path(out_dir)
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        stats = _stream(
            inputs, infos, call, tmp, seed=seed, dtype=dtype, device=device, max_shard_bytes=max_shard_bytes
        )
        reference = models[0].path  # config, tokenizer and template of the fine-tuned model
        _copy_side_files(reference, tmp, None if dtype == "auto" else dtype)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # never leave a half-written model directory
        raise
    shutil.rmtree(out_dir, ignore_errors=True)
    os.replace(tmp, out_dir)
    return {"mergekit": call.__dict__, **stats}


def _stream(inputs: list[Input], infos: list[dict], call: MergekitCall, out: Path, **kw) -> dict:
    import torch

    from reasondistill.merge.checkpoint import DTYPES, NAMES, StreamWriter

    ckpts = [info["checkpoint"] for info in infos]
    names = list(ckpts[0].tensors)
    out_dtype = None if kw["dtype"] == "auto" else getattr(torch, kw["dtype"])

    def dtype_of(name: str) -> str:
        own = ckpts[0].tensors[name].dtype
        floating = DTYPES[own].is_floating_point
        return NAMES[out_dtype] if out_dtype is not None and floating else own

    writer = StreamWriter(
        out, [(n, dtype_of(n), ckpts[0].tensors[n].shape) for n in names], kw["max_shard_bytes"]
    )
    ids = [i.label for i in inputs]
    base_index = 0 if call.base_is_reference and call.with_base else None

    def read(name: str) -> list:
        return [c.read(name) for c in ckpts]

    def merge_one(name: str, tensors: list) -> torch.Tensor:
        from mergekit.merge_methods import merge_tensors

        if not tensors[0].is_floating_point():
            if any(not torch.equal(tensors[0], t) for t in tensors[1:]):
                raise ReasonDistillError(f"merge: non-float tensor {name} differs between the inputs")
            return tensors[0]
        torch.manual_seed(tensor_seed(kw["seed"], name))  # DARE's drops: per tensor
        tensors = [t.to(kw["device"]) for t in tensors]
        merged = merge_tensors(
            tensors,
            call.method,
            parameters=call.parameters,
            ids=ids,
            base_index=base_index,
            name=name,
            dtype=torch.float32,
            out_dtype=DTYPES[dtype_of(name)],
        )
        return merged.cpu()

    with torch.random.fork_rng(devices=[]), torch.no_grad(), ThreadPoolExecutor(2) as pool:
        reading = pool.submit(read, names[0])
        writing = None
        for k, name in enumerate(names):
            tensors = reading.result()
            if k + 1 < len(names):
                reading = pool.submit(read, names[k + 1])
            merged = merge_one(name, tensors)
            del tensors
            if writing is not None:
                writing.result()
            writing = pool.submit(writer.write, name, merged)
        writing.result()
    writer.close()
    return {"tensors": len(names), "bytes": sum(c.nbytes() for c in ckpts[:1])}


def tensor_seed(seed: int, name: str) -> int:
    """The RNG seed of one tensor's random drops: stable across runs and Python versions."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{name}".encode()).digest()[:7], "big")


def _copy_side_files(reference: Path, out: Path, dtype: str | None) -> None:
    """Everything but the weights (config, generation config, tokenizer, chat and prompt templates)."""
    for f in sorted(Path(reference).iterdir()):
        if f.is_file() and not f.name.endswith(_WEIGHTS) and f.name not in _SKIP:
            shutil.copy2(f, out / f.name)
    if dtype is not None:
        cfg = json.loads((out / "config.json").read_text(encoding="utf-8"))
        cfg["dtype"] = dtype
        cfg.pop("torch_dtype", None)
        (out / "config.json").write_text(json.dumps(cfg, indent=2) + "\n", encoding="utf-8")
