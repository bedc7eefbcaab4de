"""Rationale transforms for CoT-distillation ablations (Wadhwa, Amir & Wallace, arXiv 2406.14511).

A transform rewrites each example's rationale before the `format` stage renders it; a recipe
lists them in order, by kind:

    transforms:
      - {kind: shuffle, level: token, tokenizer: {stage: tokenizer}}
      - {kind: key_tokens, k: 0.3, scorer: {kind: saliency, model: {stage: teacher}}}
      - {kind: mask, fraction: 0.2}
      - {kind: truncate, fraction: 0.5}

Where the rationale goes (none / before / after the label) is the format stage's
`placement` (traces/format.py), not a transform: it is a property of the rendering, and it
composes with every transform here.

Registries: TRANSFORMS (kind -> config class with `apply`) and SCORERS (key-token importance
scorers). Adding one is a new file with a config class plus `TRANSFORMS.register(...)`, and an import
line below; `TransformConfig` (the discriminated union a recipe validates against) is built
from the registry. Scorers live in scorers/, a package of the same shape.
"""

from __future__ import annotations

from reasondistill.traces.transforms import key_tokens, mask, shuffle, truncate  # noqa: F401  (registration)
from reasondistill.traces.transforms.base import (
    SCORERS,
    TRANSFORMS,
    RationaleItem,
    RationaleTransform,
    TokenizerSource,
    TransformEnv,
)

TransformConfig = TRANSFORMS.config_union()


def apply_transforms(
    transforms: list[RationaleTransform], items: list[RationaleItem], env: TransformEnv
) -> list[str]:
    """Each item's rationale after every transform, in list order (each sees the previous one's output)."""
    texts = [it.rationale for it in items]
    for t in transforms:
        current = [RationaleItem(it.example_id, it.question, it.answer, r) for it, r in zip(items, texts, strict=True)]
        texts = t.apply(current, env)
        if len(texts) != len(items):
            raise RuntimeError(f"transform {t.kind!r} returned {len(texts)} rationales for {len(items)} items")
    return texts


__all__ = [
    "SCORERS",
    "TRANSFORMS",
    "RationaleItem",
    "RationaleTransform",
    "TokenizerSource",
    "TransformConfig",
    "TransformEnv",
    "apply_transforms",
]
