"""Stream a Hugging Face checkpoint's safetensors tensor by tensor, and write one the same way.

Why not `safetensors.safe_open` + `save_file`: a merge touches every tensor of 2+ models once.
`safe_open` maps the files, and every page read stays resident until the file is closed, and
`save_file` needs the whole output in memory; the peak would be (inputs + 1) x the model size.
Here a tensor is read with one `pread` into its own buffer and dropped after use, and the output
header is computed up front from the inputs' headers (dtype and shape are known before any merge
work), so each merged tensor is written as soon as it exists: the peak is a few tensors.

The format (github.com/huggingface/safetensors): an 8-byte little-endian header length, a JSON
header {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}} padded with
spaces to a multiple of 8, then the raw little-endian tensor bytes.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path

import torch

from reasondistill.errors import ReasonDistillError

DTYPES = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}
NAMES = {v: k for k, v in DTYPES.items()}
INDEX = "model.safetensors.index.json"
SINGLE = "model.safetensors"


@dataclass(frozen=True)
class TensorInfo:
    file: Path
    dtype: str  # safetensors' name: F32, BF16, ...
    shape: tuple[int, ...]
    start: int  # absolute byte offset in `file`
    nbytes: int


def read_header(path: Path) -> tuple[dict, int]:
    """(the JSON header, offset of the data section) of one safetensors file."""
    with open(path, "rb") as f:
        raw = f.read(8)
        if len(raw) != 8:
            raise ReasonDistillError(f"{path}: not a safetensors file (shorter than 8 bytes)")
        (n,) = struct.unpack("<Q", raw)
        try:
            header = json.loads(f.read(n))
        except ValueError:
            raise ReasonDistillError(f"{path}: not a safetensors file (bad header)") from None
    return header, 8 + n


class Checkpoint:
    """The tensors of a model directory (model.safetensors, or shards listed in the index)."""

    def __init__(self, model_dir: Path) -> None:
        self.dir = Path(model_dir)
        self.tensors: dict[str, TensorInfo] = {}
        for path in self._files():
            header, data = read_header(path)
            for name, h in header.items():
                if name == "__metadata__":
                    continue
                if h["dtype"] not in DTYPES:
                    raise ReasonDistillError(f"{path}: tensor {name} has unsupported dtype {h['dtype']}")
                begin, end = h["data_offsets"]
                self.tensors[name] = TensorInfo(
                    path, h["dtype"], tuple(h["shape"]), data + begin, end - begin
                )

    def _files(self) -> list[Path]:
        if (self.dir / INDEX).is_file():
            index = json.loads((self.dir / INDEX).read_text(encoding="utf-8"))
            return [self.dir / f for f in dict.fromkeys(index["weight_map"].values())]
        if (self.dir / SINGLE).is_file():
            return [self.dir / SINGLE]
        found = sorted(p.name for p in self.dir.iterdir()) if self.dir.is_dir() else []
        raise ReasonDistillError(
            f"{self.dir}: no {SINGLE} or {INDEX} (merging reads safetensors checkpoints; "
            f"re-save with save_pretrained); found: {', '.join(found) or 'nothing'}"
        )

    def nbytes(self) -> int:
        return sum(t.nbytes for t in self.tensors.values())

    def read(self, name: str) -> torch.Tensor:
        """One tensor in its own memory (nothing stays mapped)."""
        info = self.tensors[name]
        buf = bytearray(info.nbytes)
        with open(info.file, "rb", buffering=0) as f:
            got = f.readinto(memoryview(buf)) if f.seek(info.start) == info.start else 0
        if got != info.nbytes:
            raise ReasonDistillError(f"{info.file}: tensor {name} is truncated")
        dtype = DTYPES[info.dtype]
        if not buf:
            return torch.empty(info.shape, dtype=dtype)
        return torch.frombuffer(buf, dtype=dtype).reshape(info.shape)


class StreamWriter:
    """Writes tensors in a fixed order into shards of at most `max_shard_bytes` (HF layout:
    model.safetensors, or model-0000k-of-0000n.safetensors + the index)."""

    def __init__(
        self, out_dir: Path, entries: list[tuple[str, str, tuple[int, ...]]], max_shard_bytes: int
    ) -> None:
        self.out_dir = Path(out_dir)
        sizes = [(name, dtype, shape, _nbytes(dtype, shape)) for name, dtype, shape in entries]
        shards: list[list] = [[]]
        for e in sizes:
            if shards[-1] and sum(x[3] for x in shards[-1]) + e[3] > max_shard_bytes:
                shards.append([])
            shards[-1].append(e)
        n = len(shards)
        self.files = [SINGLE] if n == 1 else [f"model-{i + 1:05d}-of-{n:05d}.safetensors" for i in range(n)]
        self.order = [(e[0], e[1], e[2], k) for k, shard in enumerate(shards) for e in shard]
        self.shards = shards
        self.pos = 0
        self.handle = None
        self.current = -1
        if n > 1:
            weight_map = {e[0]: self.files[k] for k, shard in enumerate(shards) for e in shard}
            total = sum(e[3] for e in sizes)
            index = {"metadata": {"total_size": total}, "weight_map": weight_map}
            (self.out_dir / INDEX).write_text(json.dumps(index, indent=2), encoding="utf-8")

    def _open(self, k: int) -> None:
        if self.handle is not None:
            self.handle.close()
        header, offset = {"__metadata__": {"format": "pt"}}, 0
        for name, dtype, shape, nbytes in self.shards[k]:
            header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + nbytes]}
            offset += nbytes
        raw = json.dumps(header, separators=(",", ":")).encode()
        raw += b" " * (-len(raw) % 8)  # the data section starts 8-byte aligned
        self.handle = open(self.out_dir / self.files[k], "wb")  # noqa: SIM115 (closed in _open/close)
        self.handle.write(struct.pack("<Q", len(raw)) + raw)
        self.current = k

    def write(self, name: str, tensor: torch.Tensor) -> None:
        """The next tensor of the planned order, with its planned dtype and shape."""
        want, dtype, shape, k = self.order[self.pos]
        if name != want or NAMES.get(tensor.dtype) != dtype or tuple(tensor.shape) != shape:
            raise ValueError(
                f"writer expected {want} {dtype} {shape}, got {name} {tensor.dtype} {tuple(tensor.shape)}"
            )
        if k != self.current:
            self._open(k)
        if tensor.numel():
            self.handle.write(
                memoryview(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy())
            )
        self.pos += 1

    def close(self) -> None:
        if self.pos != len(self.order):
            raise ValueError(f"writer closed after {self.pos} of {len(self.order)} tensors")
        if self.handle is not None:
            self.handle.close()
            self.handle = None


def _nbytes(dtype: str, shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n * torch.empty((), dtype=DTYPES[dtype]).element_size()
