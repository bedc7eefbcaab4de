"""InitModel: where a trained model's initial weights come from (a train stage's `model:`).

Exactly one of: a tiny model built from a spec (+ a tokenizer stage, since a tiny model has no
vocabulary of its own), another stage's model, a local path / hub id, or a catalog model pulled
from a package registry (`reasondistill models list`). Any but `tiny` can be depth-pruned on
load (`keep_layers`, models/prune.py): a student that shares its source's tokenizer, for
white-box KD. Import-light (no torch): recipes validate it at plan time; `load` imports the
model code.
"""

from __future__ import annotations

from pydantic import model_validator

from reasondistill.artifacts import Artifact, tokenizer_dir
from reasondistill.config import (
    ModelSource,
    Ref,
    StageContext,
    StrictModel,
    check_model_path,
    check_pretrained,
    exactly_one,
)
from reasondistill.models.prune import KeepLayers
from reasondistill.models.tiny import TinyModelSpec


class InitModel(StrictModel):
    """Where the initial weights come from: exactly one of tiny (+ tokenizer), stage, path, pretrained."""

    tiny: TinyModelSpec | None = None
    tokenizer: Ref(Artifact.TOKENIZER) | None = None  # required with `tiny`, only with it
    stage: Ref(Artifact.MODEL) | None = None  # continue from another stage's model
    path: str | None = None  # local directory or hub id
    pretrained: str | None = None  # a catalog model (`reasondistill models list`)
    # Keep only these decoder layers of the loaded model (`{every: 2}` or `[0, 2, ...]`): a
    # depth-pruned student with its source's tokenizer (arXiv 2407.14679, 2310.06694).
    keep_layers: KeepLayers | None = None

    @model_validator(mode="after")
    def _exactly_one(self):
        exactly_one(self, "tiny", "stage", "path", "pretrained", hint="`tiny` comes with `tokenizer`")
        if self.tiny is not None and self.keep_layers is not None:
            raise ValueError("`keep_layers` prunes a loaded model; a `tiny` model sets `tiny.num_layers`")
        if self.tiny is not None and self.tokenizer is None:
            raise ValueError("`tiny` needs `tokenizer: <a tokenizer stage>` (a tiny model has no vocabulary)")
        if self.tiny is None and self.tokenizer is not None:
            raise ValueError("`tokenizer` is only used with `tiny`; any other model brings its own")
        if self.path is not None:
            check_model_path(self.path)
        if self.pretrained is not None:
            check_pretrained(self.pretrained)
        return self

    def load(self, ctx: StageContext, seed: int):
        """(model, tokenizer) to start from; a tiny model's init is seeded with `seed`."""
        if self.tiny is not None:
            from transformers import AutoTokenizer

            from reasondistill.models.tiny import build_tiny_model

            tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir(ctx.path(self.tokenizer))))
            return build_tiny_model(self.tiny, tokenizer, seed=seed), tokenizer
        from reasondistill.models.load import load_model

        source = ModelSource(stage=self.stage, path=self.path, pretrained=self.pretrained)
        model, tokenizer = load_model(source.resolve(ctx))
        if self.keep_layers is not None:
            from reasondistill.models.prune import prune_layers

            model = prune_layers(model, self.keep_layers)
        return model, tokenizer


def tokenizer_origin(source, configs) -> tuple[str, str] | None:
    """Where a model's tokenizer comes from, as far as the plan tells: ("stage", tokenizer stage),
    ("path", dir or hub id), ("pretrained", name), or None when it cannot be known yet.

    `source`: an InitModel, a ModelSource or a stage name (a training / kd_cache stage);
    `configs(name)`: the validated configs of a recipe stage (the planner's view). Pruning
    (`keep_layers`) keeps the tokenizer, so a pruned model's origin is its source's."""
    if isinstance(source, str):  # a stage: follow its own model (training) or teacher (kd_cache)
        cfgs = configs(source)
        inner = [getattr(c, "model", None) or getattr(c, "teacher", None) for c in cfgs]
        origins = {tokenizer_origin(i, configs) for i in inner if i is not None and i is not source}
        return origins.pop() if len(origins) == 1 else None
    if getattr(source, "tiny", None) is not None:
        return ("stage", str(source.tokenizer))
    if source.stage is not None:
        return tokenizer_origin(str(source.stage), configs)
    if source.pretrained is not None:
        return ("pretrained", source.pretrained)
    return ("path", source.path)


def same_tokenizer(a: tuple[str, str] | None, b: tuple[str, str] | None) -> str | None:
    """Why two tokenizer origins are known to differ, or None (same, or not knowable at plan time)."""
    if a is None or b is None or a == b:
        return None
    if a[0] == b[0] == "stage":
        return f"the teacher's tokenizer comes from stage {a[1]!r}, the student's from {b[1]!r}: white-box KD needs one tokenizer"
    if a[0] == b[0] == "path":
        va, vb = _local_vocab(a[1]), _local_vocab(b[1])
        if va is not None and vb is not None and va != vb:
            return f"teacher {a[1]!r} and student {b[1]!r} have different vocabularies (tokenizer.json): white-box KD needs one tokenizer"
    return None


def _local_vocab(path: str) -> dict | None:
    """The vocabulary of a local model directory's tokenizer.json (no transformers import)."""
    import json
    from pathlib import Path

    f = Path(path) / "tokenizer.json"
    if not f.is_file():
        return None
    tok = json.loads(f.read_text(encoding="utf-8"))
    added = {t["content"]: t["id"] for t in tok.get("added_tokens", [])}
    return {**(tok.get("model") or {}).get("vocab", {}), **added}
