"""Shared parts of rationale transforms: registries, seeding, and word / token segmentation.

Wadhwa, Amir & Wallace (EMNLP 2024, arXiv 2406.14511) ablate what a rationale must contain
to help a distilled student: its tokens shuffled, only its key tokens, parts masked or cut.
Every such transform here works on *pieces* of the rationale:

- `level: word`  pieces are whitespace-separated words; they are joined back with one
  space (so a transformed word-level rationale is a single line).
- `level: token` pieces are the ids of a tokenizer (`tokenizer:`, usually the student's),
  encoded without special tokens; they are turned back into text with
  `tokenizer.decode(ids)`. With a byte-level BPE a reordered id sequence can split a
  multi-byte character, which decodes to U+FFFD: the student sees what the ids say.

Each transform draws its randomness from `random.Random(derive_seed(seed, name, example_id))`,
with `seed` its own `seed:` or, when unset, the format stage's seed: every example gets its
own stream, and a rerun (or one example alone) reproduces it exactly.
"""

from __future__ import annotations

import hashlib
import math
import random
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import Field, model_validator

from reasondistill.artifacts import Artifact, tokenizer_dir
from reasondistill.config import ModelSource, Ref, StageContext, StrictModel, check_pretrained, exactly_one
from reasondistill.errors import ReasonDistillError
from reasondistill.registry import Registry
from reasondistill.traces.format import ANSWER_PREFIX

Level = Literal["word", "token"]
_WORD = re.compile(r"\S+")

# A registered config class *is* the unit (its `apply` / `score` does the work).
TRANSFORMS: Registry[type[RationaleTransform]] = Registry("transform", "rationale transforms")
SCORERS: Registry[type[ImportanceScorer]] = Registry("key-token scorer", "key-token scorers")


def derive_seed(seed: int, *parts: object) -> int:
    """A 64-bit seed from `seed` and e.g. (transform name, example id); stable across runs and
    Python versions (sha256, not the salted built-in `hash`)."""
    digest = hashlib.sha256(repr((seed, *map(str, parts))).encode()).digest()
    return int.from_bytes(digest[:8], "big")


def n_keep(k: int | float, n: int) -> int:
    """How many of `n` pieces a count (`k: 5`, capped at n) or fraction (`k: 0.3`, rounded half up) keeps."""
    if isinstance(k, float):
        return min(n, math.floor(k * n + 0.5))
    return min(n, k)


@dataclass
class RationaleItem:
    """What a transform sees of one example: the (current) rationale and its context."""

    example_id: str
    question: str  # scorers render it with their teacher's prompt template
    answer: str
    rationale: str


@dataclass
class Pieces:
    """A rationale cut into pieces: `units` are words (str) or token ids (int); `spans` their
    character offsets in `text`."""

    text: str
    units: list[Any]
    spans: list[tuple[int, int]]
    tokenizer: Any = None  # set at token level

    def __len__(self) -> int:
        return len(self.units)

    def piece_text(self, i: int) -> str:
        s, e = self.spans[i]
        return self.text[s:e]

    def join(self, units: list[Any]) -> str:
        """Text of a unit sequence: words joined by one space, or the tokenizer's decode of ids."""
        if self.tokenizer is None:
            return safe_rationale(" ".join(units))
        # Special tokens kept: a mask id must come out as the mask token's text.
        text = self.tokenizer.decode(units, skip_special_tokens=False, clean_up_tokenization_spaces=False)
        return safe_rationale(text)


def segment(text: str, level: Level, tokenizer: Any = None) -> Pieces:
    """Cut `text` into word or token pieces (token level needs a fast tokenizer, for offsets)."""
    if level == "word":
        matches = list(_WORD.finditer(text))
        return Pieces(text, [m.group() for m in matches], [m.span() for m in matches])
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    return Pieces(text, list(enc["input_ids"]), [tuple(o) for o in enc["offset_mapping"]], tokenizer)


def safe_rationale(text: str) -> str:
    """Break a line that a reordering made start with "Answer:", which the answer extractor
    would read as the label (traces/format.py); a space before it is enough."""
    return text.replace("\n" + ANSWER_PREFIX, "\n " + ANSWER_PREFIX)


class TokenizerSource(StrictModel):
    """A tokenizer: a `tokenizer` stage (its out_dir/tokenizer), a training stage (out_dir/model),
    a local path / hub id, or a catalog model's (`pretrained`: a student not trained yet)."""

    stage: Ref(Artifact.TOKENIZER, Artifact.MODEL) | None = None
    path: str | None = None
    pretrained: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self):
        hint = "a tokenizer or training stage, a local path / hub id, or a catalog model"
        exactly_one(self, "stage", "path", "pretrained", hint=hint)
        if self.pretrained is not None:
            check_pretrained(self.pretrained)
        return self

    def resolve(self, ctx: StageContext | None) -> str:
        if self.path is not None:
            return self.path
        if self.pretrained is not None:
            from reasondistill.models.pull import resolve_pretrained  # pulls on first use

            return resolve_pretrained(self.pretrained)
        if ctx is None:
            raise ReasonDistillError(f"tokenizer {{stage: {self.stage}}} needs a running stage to resolve it")
        return str(tokenizer_dir(ctx.path(self.stage)))


@dataclass
class TransformEnv:
    """What transforms need from the running stage: its seed, its inputs, a logger; loaded
    tokenizers and teacher models are cached here, so a list of transforms loads each once."""

    seed: int
    ctx: StageContext | None = None
    cache: dict[str, Any] = field(default_factory=dict)

    def rng(self, own_seed: int | None, name: str, example_id: str) -> random.Random:
        return random.Random(derive_seed(self.seed if own_seed is None else own_seed, name, example_id))

    def tokenizer(self, source: TokenizerSource):
        path = source.resolve(self.ctx)
        if ("tok", path) not in self.cache:
            from transformers import AutoTokenizer

            try:
                tok = AutoTokenizer.from_pretrained(path)
            except (OSError, ValueError) as e:
                raise ReasonDistillError(f"transform: cannot load tokenizer {path!r}: {e}") from None
            if not tok.is_fast:
                raise ReasonDistillError(f"transform: tokenizer {path!r} is not a fast tokenizer (needs offsets)")
            self.cache[("tok", path)] = tok
        return self.cache[("tok", path)]

    def teacher(self, source: ModelSource):
        """(model, tokenizer) in eval mode, for scorers that read the teacher's likelihoods."""
        path = source.resolve(self.ctx)
        if ("model", path) not in self.cache:
            from reasondistill.evaluate.generate import default_device
            from reasondistill.models.load import load_model

            model, tok = load_model(path, device=default_device())
            self.cache[("model", path)] = (model.eval(), tok)
        return self.cache[("model", path)]


class RationaleTransform(StrictModel):
    """Base of transform configs: a registered config *is* the unit (`apply` does the work)."""

    seed: int | None = Field(None, description="None: the format stage's seed; always mixed with the example id")

    def apply(self, items: list[RationaleItem], env: TransformEnv) -> list[str]:
        """The transformed rationale of every item, in order."""
        raise NotImplementedError

    def rng(self, env: TransformEnv, example_id: str) -> random.Random:
        return env.rng(self.seed, self.kind, example_id)  # type: ignore[attr-defined]


class Segmented(RationaleTransform):
    """A transform over word or tokenizer-token pieces."""

    level: Level = "word"
    tokenizer: TokenizerSource | None = Field(None, description="required with level: token (the student's)")

    @model_validator(mode="after")
    def _tokenizer_matches_level(self):
        if self.level == "token" and self.tokenizer is None:
            raise ValueError("level: token needs `tokenizer: {stage: <tokenizer stage>}` or `{path: ...}`")
        if self.level == "word" and self.tokenizer is not None:
            raise ValueError("`tokenizer` is only used with level: token")
        return self

    def segment_all(self, items: list[RationaleItem], env: TransformEnv) -> list[Pieces]:
        tok = env.tokenizer(self.tokenizer) if self.level == "token" else None
        return [segment(it.rationale, self.level, tok) for it in items]


class ImportanceScorer(StrictModel):
    """Base of key-token scorers: one importance score per piece (higher = keep first)."""

    def score(
        self, items: list[RationaleItem], pieces: list[Pieces], env: TransformEnv, seed: int | None
    ) -> list[list[float]]:
        raise NotImplementedError
