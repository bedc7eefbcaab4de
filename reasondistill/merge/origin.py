"""Where a model's weights come from, as far as a recipe's plan shows: so that a merge of models
that cannot fit (different shapes, different tokenizers) fails at plan time, not after hours.

An origin is ("tiny", spec, tokenizer stage) for a model trained from a tiny spec (followed
through `model: {stage: ...}` chains of train and merge stages), ("path", dir) for a local
directory, ("pretrained", name) for a catalog model, or None when the plan cannot tell. Reads
only small JSON files; no torch.
"""

from __future__ import annotations

import json
from pathlib import Path

Origin = tuple


def origin(source, configs, _depth: int = 0) -> Origin | None:
    """The origin of a ModelSource / InitModel / stage name; None when unknown or ambiguous."""
    if _depth > 50:
        return None
    if isinstance(source, str):
        found = {origin(_inner(c), configs, _depth + 1) for c in configs(source)}
        found.discard(None)
        return found.pop() if len(found) == 1 else None
    if source is None:
        return None
    tiny = getattr(source, "tiny", None)
    if tiny is not None:
        return ("tiny", json.dumps(tiny.model_dump(mode="json"), sort_keys=True), str(source.tokenizer))
    if getattr(source, "stage", None) is not None:
        return origin(str(source.stage), configs, _depth + 1)
    if getattr(source, "pretrained", None) is not None:
        return ("pretrained", source.pretrained)
    if getattr(source, "path", None) is not None:
        return ("path", source.path)
    return None


def _inner(cfg):
    """The model a stage's weights start from: a train stage's `model`, a merge's base or first model."""
    if cfg.kind == "train":
        return cfg.model
    if cfg.kind == "merge":
        return cfg.base if cfg.base is not None else cfg.models[0].model
    return None


def compare(a: tuple[str, Origin], b: tuple[str, Origin]) -> str | None:
    """Why two (key, origin) pairs cannot be merged, or None (same, or not knowable)."""
    (ka, oa), (_, ob) = a, b
    if oa[0] != ob[0]:
        return None
    if oa[0] == "tiny":
        if oa[1] != ob[1]:
            return f"a tiny model {_spec(ob[1])} cannot merge with {ka}'s {_spec(oa[1])}: architectures or shapes differ"
        if oa[2] != ob[2]:
            return f"its tokenizer comes from stage {ob[2]!r}, {ka}'s from {oa[2]!r}: merged models need one tokenizer"
    if oa[0] == "path":
        return _compare_dirs(ka, Path(oa[1]), Path(ob[1]))
    return None


def _spec(spec_json: str) -> str:
    s = json.loads(spec_json)
    return f"({s['arch']}, hidden {s['hidden_size']}, {s['num_layers']} layers)"


_SHAPE_KEYS = (
    "model_type",
    "hidden_size",
    "num_hidden_layers",
    "intermediate_size",
    "num_attention_heads",
    "num_key_value_heads",
    "vocab_size",
)


def _compare_dirs(key_a: str, a: Path, b: Path) -> str | None:
    from reasondistill.merge.engine import tokenizer_fingerprint

    ca, cb = _config(a), _config(b)
    if ca is None or cb is None:
        return None
    for k in _SHAPE_KEYS:
        if ca.get(k) != cb.get(k):
            return (
                f"{b} has {k}={cb.get(k)} but {key_a} ({a}) has {ca.get(k)}: architectures or shapes differ"
            )
    if tokenizer_fingerprint(a) != tokenizer_fingerprint(b):
        return f"{b} and {key_a} ({a}) have different tokenizers (tokenizer.json vocabularies differ)"
    return None


def _config(path: Path) -> dict | None:
    f = path / "config.json"
    return json.loads(f.read_text(encoding="utf-8")) if f.is_file() else None
