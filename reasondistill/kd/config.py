"""The KD loss's recipe config, importable without torch (planning a recipe must not import it).

`KD_LOSS_OPTIONS` names every loss of kd/losses.py's KD_LOSSES with its own keyword options; a
contract test (tests/unit/test_kd_losses.py) checks it against the registry and the functions'
signatures, so the two cannot drift.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from reasondistill.config import StrictModel

KD_LOSS_OPTIONS: dict[str, tuple[str, ...]] = {
    "forward_kl": (),
    "reverse_kl": (),
    "jsd": ("beta",),
    "tv": (),
}


class KDLossConfig(StrictModel):
    """The KD objective: alpha * CE(gold tokens) + (1 - alpha) * KD loss `kind`."""

    kind: str = Field("forward_kl", description="a KD loss: forward_kl, reverse_kl, jsd, tv")
    temperature: float = Field(
        1.0, gt=0, description="softens teacher and student; the KD term is scaled by tau^2"
    )
    # None, not 0.5, by default: a dumped-and-reloaded config (the pipeline hashes and re-validates
    # every stage config) must not look as if beta had been set for a loss that ignores it.
    beta: float | None = Field(
        None, ge=0, le=1, description="jsd only (unset: 0.5): 0 = forward KL, 1 = reverse KL (TRL)"
    )
    alpha: float = Field(
        0.0, ge=0, le=1, description="weight of cross-entropy on gold tokens; 0 = KD only (arXiv 2511.05184)"
    )

    @model_validator(mode="after")
    def _known_and_used(self):
        if self.kind not in KD_LOSS_OPTIONS:
            raise ValueError(f"unknown kd loss {self.kind!r}; allowed: {', '.join(sorted(KD_LOSS_OPTIONS))}")
        # A loss option set for a loss that ignores it (beta with forward_kl) is a typo or a
        # misunderstanding; fail now rather than silently train something else.
        options = set(type(self).model_fields) - {"kind", "temperature", "alpha"}
        given = {o for o in options if getattr(self, o) is not None}
        unused = given - set(KD_LOSS_OPTIONS[self.kind])
        if unused:
            raise ValueError(f"{', '.join(sorted(unused))} does not apply to kd loss {self.kind!r}")
        return self

    def options(self) -> dict[str, float]:
        """Keyword options set for the selected loss, e.g. {'beta': 0.2} for jsd (unset ones: the
        loss function's own default)."""
        return {n: getattr(self, n) for n in KD_LOSS_OPTIONS[self.kind] if getattr(self, n) is not None}
