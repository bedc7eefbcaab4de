"""Merge methods: mergekit's, as configurations of one generalized task-arithmetic unit.

Every method but `linear` works on task vectors against a base model theta_0,
delta_i = theta_i - theta_0, and returns theta_0 + scale * combine(w_i, sparsify(delta_i)):

| kind            | sparsify delta_i (keep `density`)       | combine               | paper            |
|-----------------|------------------------------------------|-----------------------|------------------|
| task_arithmetic | none                                     | weighted sum          | arXiv 2212.04089 |
| ties            | top-|delta| (magnitude)                   | sign election (TIES)  | arXiv 2306.01708 |
| dare_linear     | random drop, survivors x 1/density       | weighted sum          | arXiv 2311.03099 |
| dare_ties       | random drop, survivors x 1/density       | sign election         | arXiv 2311.03099 |
| breadcrumbs     | drop the top `gamma` and the smallest    | weighted sum          | arXiv 2312.06795 |
`linear` is a weighted average of whole models (model soups, arXiv 2203.05482); a `base`
given to it is one more input, weighted by `base_weight`. IMM (arXiv 2503.02103) is
`dare_linear` of one model at weight 0.5, density 0.8: theta_0 + 0.5 * DARE_0.2(theta_t - theta_0).

mergekit 0.1.5 does the tensor math (merge/engine.py calls `merge_tensors` per tensor); this
module only turns a recipe's knobs into mergekit's parameters, guarding two of its traps:
- DARE's rescale. mergekit's `rescale: true` multiplies the kept entries so the L1 norm of
  the delta is preserved, not by DARE's exact 1/density; E[result] then differs from delta.
  `rescale: exact` (our default) gives mergekit `rescale: false` and folds 1/density into the
  model's weight (or into `lambda`, for dare_ties with normalisation); `rescale: l1` is
  mergekit's, on request.
- Normalisation with one model. TIES divides the merged delta by the summed weight of the
  models that agree in sign; with one model that is its own weight, so `weight: 0.5` silently
  becomes 1. `normalize` therefore defaults to off with a single input and is refused there.

Import-light (pydantic only): recipes validate against these configs at plan time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from pydantic import Field

from reasondistill.config import StrictModel
from reasondistill.registry import Registry

MERGE_METHODS: Registry[type[MergeMethod]] = Registry("merge method", "merge methods")


@dataclass(frozen=True)
class Weighted:
    """One input's knobs as the stage gives them (weight, density)."""

    weight: float
    density: float


@dataclass(frozen=True)
class MergekitCall:
    """What merge/engine.py passes to `mergekit.merge_methods.merge_tensors` for every tensor."""

    method: str  # mergekit's method name
    with_base: bool  # the base is an input (as ids[0]); for task-vector methods it is the base
    base_is_reference: bool  # base_index=0 (task vectors are taken against it)
    parameters: dict[str, Any]  # per-input values are lists in input order (non-base inputs)


class MergeMethod(StrictModel):
    """Base of every merge method's config: the recipe's `method: {kind: ..., ...}`."""

    kind: str
    normalize: bool | None = Field(
        None,
        description="divide the merged delta by the summed weights; None: mergekit's default, "
        "off with a single model (it would cancel that model's weight)",
    )
    mergekit: ClassVar[str]
    sparsifies: ClassVar[bool] = False  # uses each model's `density`
    consensus: ClassVar[bool] = False  # TIES sign election
    default_normalize: ClassVar[bool] = False  # mergekit's default for the method
    needs_base: ClassVar[bool] = True

    def resolved_normalize(self, n_inputs: int) -> bool:
        if self.normalize is not None:
            return self.normalize
        return self.default_normalize and n_inputs > 1

    def problems(self, models: list[Weighted], has_base: bool) -> list[str]:
        """What is wrong with these inputs for this method (plan time; [] when fine)."""
        out = []
        if self.needs_base and not has_base:
            out.append(f"method {self.kind} merges task vectors: give `base` (theta_0)")
        if not self.sparsifies and any(m.density != 1.0 for m in models):
            out.append(f"density is used by ties, dare_linear, dare_ties and breadcrumbs, not by {self.kind}")
        inputs = self.weights(models, has_base)
        if self.normalize and len(inputs) == 1:
            out.append(
                "normalize with a single model divides its update by its own weight, so `weight` has no "
                "effect; set normalize: false (the default with one model)"
            )
        if self.resolved_normalize(len(inputs)) and abs(sum(inputs)) < 1e-12:
            out.append(f"the weights sum to 0 ({inputs}), which normalize divides by")
        return out

    def weights(self, models: list[Weighted], has_base: bool) -> list[float]:
        """The weights normalisation sums over."""
        return [m.weight for m in models]

    def call(self, models: list[Weighted], has_base: bool) -> MergekitCall:
        normalize = self.resolved_normalize(len(self.weights(models, has_base)))
        return MergekitCall(
            self.mergekit,
            with_base=True,
            base_is_reference=True,
            parameters={"weight": [m.weight for m in models], "normalize": normalize, **self.extra(models)},
        )

    def extra(self, models: list[Weighted]) -> dict[str, Any]:
        return {"density": [m.density for m in models]} if self.sparsifies else {}


class _Scaled(MergeMethod):
    scale: float = Field(1.0, description="multiplies the merged task vector (mergekit's `lambda`)")

    def call(self, models: list[Weighted], has_base: bool) -> MergekitCall:
        c = super().call(models, has_base)
        return MergekitCall(
            c.method, c.with_base, c.base_is_reference, {**c.parameters, "lambda": self.scale}
        )


@MERGE_METHODS.register("linear", paper="arXiv 2203.05482")
class Linear(MergeMethod):
    """Weighted average of whole models (model soups); a given `base` is one more input."""

    kind: Literal["linear"]
    base_weight: float = Field(1.0, description="the base's weight in the average, when a base is given")
    mergekit: ClassVar[str] = "linear"
    default_normalize: ClassVar[bool] = True
    needs_base: ClassVar[bool] = False

    def weights(self, models: list[Weighted], has_base: bool) -> list[float]:
        return ([self.base_weight] if has_base else []) + [m.weight for m in models]

    def call(self, models: list[Weighted], has_base: bool) -> MergekitCall:
        weights = self.weights(models, has_base)
        # Inputs are equals for linear (mergekit ignores a base), so the base goes in as ids[0].
        params = {"weight": weights, "normalize": self.resolved_normalize(len(weights))}
        return MergekitCall("linear", with_base=has_base, base_is_reference=False, parameters=params)


@MERGE_METHODS.register("task_arithmetic", paper="arXiv 2212.04089")
class TaskArithmetic(_Scaled):
    """theta_0 + scale * sum_i w_i (theta_i - theta_0) (task vectors added)."""

    kind: Literal["task_arithmetic"]
    mergekit: ClassVar[str] = "task_arithmetic"


@MERGE_METHODS.register("ties", paper="arXiv 2306.01708")
class Ties(_Scaled):
    """TIES: trim each task vector to its top-`density` magnitudes, elect signs, average the agreeing."""

    kind: Literal["ties"]
    mergekit: ClassVar[str] = "ties"
    sparsifies: ClassVar[bool] = True
    consensus: ClassVar[bool] = True
    default_normalize: ClassVar[bool] = True


class _Dare(_Scaled):
    rescale: Literal["exact", "l1", "none"] = Field(
        "exact",
        description="survivors x 1/density (DARE), mergekit's L1-norm-preserving rescale, or none",
    )
    sparsifies: ClassVar[bool] = True

    def problems(self, models: list[Weighted], has_base: bool) -> list[str]:
        out = super().problems(models, has_base)
        fold = self.rescale == "exact" and self.consensus and self.resolved_normalize(len(models))
        if fold and len({m.density for m in models}) > 1:
            out.append(
                "dare_ties with normalize and rescale: exact needs one density for every model "
                "(the 1/density factor is applied to the merged vector)"
            )
        return out

    def call(self, models: list[Weighted], has_base: bool) -> MergekitCall:
        c = super().call(models, has_base)
        p = {**c.parameters, "rescale": self.rescale == "l1"}
        if self.rescale == "exact":
            w = [m.weight for m in models]
            if not p["normalize"]:
                p["weight"] = [wi / m.density for wi, m in zip(w, models, strict=True)]
            elif not self.consensus:
                # sum_i w_i m_i delta_i / d_i / sum_i w_i, with normalisation done here: mergekit
                # would otherwise divide by the folded weights and cancel the 1/density.
                total = sum(w)
                p["weight"] = [wi / (m.density * total) for wi, m in zip(w, models, strict=True)]
                p["normalize"] = False
            else:
                # TIES' per-entry divisor sums the agreeing weights; with one density d for all
                # models the 1/d factors out of every entry, so it scales the merged vector.
                p["lambda"] = self.scale / models[0].density
        return MergekitCall(c.method, c.with_base, c.base_is_reference, p)


@MERGE_METHODS.register("dare_linear", paper="arXiv 2311.03099")
class DareLinear(_Dare):
    """DARE: drop each task-vector entry with probability 1 - density, rescale survivors, add."""

    kind: Literal["dare_linear"]
    mergekit: ClassVar[str] = "dare_linear"


@MERGE_METHODS.register("dare_ties", paper="arXiv 2311.03099")
class DareTies(_Dare):
    """DARE drops and rescaling, then TIES sign election."""

    kind: Literal["dare_ties"]
    mergekit: ClassVar[str] = "dare_ties"
    consensus: ClassVar[bool] = True


@MERGE_METHODS.register("breadcrumbs", paper="arXiv 2312.06795")
class Breadcrumbs(_Scaled):
    """Model breadcrumbs: drop the largest `gamma` and the smallest entries of each task vector, add."""

    kind: Literal["breadcrumbs"]
    gamma: float = Field(0.01, ge=0, lt=1, description="fraction of largest-magnitude entries removed")
    mergekit: ClassVar[str] = "breadcrumbs"
    sparsifies: ClassVar[bool] = True

    def extra(self, models: list[Weighted]) -> dict[str, Any]:
        return {**super().extra(models), "gamma": [self.gamma] * len(models)}
