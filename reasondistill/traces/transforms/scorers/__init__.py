"""Key-token importance scorers (registry SCORERS), for the `key_tokens` transform.

The paper's exact key-token scorer is not stated in what we could read (Wadhwa, Amir &
Wallace, arXiv 2406.14511), so the scorer is a recipe knob: `saliency` (gradient x input on
the teacher; the default when `scorer:` has no `kind`), `leave_one_out`, `tfidf`, `random`
(the control). Adding one: a file here with a config class + `SCORERS.register(...)`, and
its import below; `ScorerConfig` is built from the registry.
"""

from __future__ import annotations

from typing import Annotated, Any, Union

from pydantic import Discriminator, Tag

from reasondistill.traces.transforms.base import SCORERS
from reasondistill.traces.transforms.scorers import simple, teacher  # noqa: F401  (registration)


def _scorer_tag(v: Any) -> str | None:
    """The scorer's `kind`; a mapping without one is the default scorer, saliency."""
    if isinstance(v, dict):
        return v.get("kind", "saliency")
    return getattr(v, "kind", None)


ScorerConfig = Annotated[
    Union[tuple(Annotated[cls, Tag(name)] for name, cls in SCORERS.items())],  # noqa: UP007  (built at runtime)
    Discriminator(_scorer_tag),
]

__all__ = ["SCORERS", "ScorerConfig"]
