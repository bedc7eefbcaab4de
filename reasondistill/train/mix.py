"""A train stage's rows: one rows stage, or several mixed by weight.

```yaml
rows: student_rows                                    # one stage: every row once per epoch
rows: [{stage: gold, weight: 1.0}, {stage: synth, weight: 0.5}]
```
Semantics of `weight` w for a source of n rows (its first `max_rows`, when set): the source puts
round(w * n) rows (halves round up) into every epoch. Each of its rows appears floor of that / n
times, and the remainder is a seeded subset of distinct rows that appear once more. So w = 1 is
every row once (exactly what a plain `rows: stage` reads), w = 2 every row twice, w = 0.5 a
random half, w = 1.5 every row once plus a random half again. The subset is drawn once, from
(train seed, source position), and is the same in every epoch: the mix is a fixed, deterministic
multiset of rows, so a resumed run (whose checkpoint checks the row count and seed) trains on the
same one, and the length-grouped batch plan (train/batching.py) shuffles it like any row set.

Every source must hold the rows the objective needs (prompt/completion, or prompt/chosen/rejected
preference pairs); `read_mix` checks that before any work, with one message naming the stage.
This module stays import-light (no torch, numpy inside functions): stage configs use RowSource.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import Discriminator, Field, Tag

from reasondistill.artifacts import Artifact, read_preferences, read_rows
from reasondistill.config import Ref, StageContext, StrictModel
from reasondistill.errors import ReasonDistillError
from reasondistill.train.objectives.base import ROW_FIELDS, RowKind

RowsRef = Ref(Artifact.ROWS, Artifact.PREFERENCES)


class RowSource(StrictModel):
    """One rows stage of a mix and how often its rows appear per epoch."""

    stage: RowsRef
    weight: float = Field(
        1.0, gt=0, description="times each row appears per epoch; a fraction: a seeded subset"
    )


def _form(value: Any) -> str:
    # The tags read like pydantic's own union-member labels, so recipe errors drop them from the
    # key they print (recipe.format_validation_error): `stages.s.rows.0.weight`, not `....rows.list...`.
    return "list[RowSource]" if isinstance(value, list) else "Ref[rows]"


# A train stage's `rows:`: one stage name, or a list of sources. A tagged union, so a bad value
# is reported against the form it was written in only.
RowsField = Annotated[
    Annotated[list[RowSource], Tag("list[RowSource]")] | Annotated[RowsRef, Tag("Ref[rows]")],
    Discriminator(_form),
]


@dataclass(frozen=True)
class SourceRows:
    stage: str  # instance name of the rows stage
    weight: float
    n_rows: int  # rows read from it (its first max_rows)
    used: int  # rows it puts into every epoch: round(weight * n_rows)


@dataclass(frozen=True)
class TrainRows:
    """One epoch's training rows in mix order: row i is what objectives receive as index i."""

    rows: list[dict]
    origin: list[tuple[int, int]]  # per row: (source position, row index within that source)
    sources: tuple[SourceRows, ...]
    kind: RowKind

    @property
    def single(self) -> bool:
        """One source at weight 1: the rows are exactly that stage's rows, in its order."""
        return len(self.sources) == 1 and self.sources[0].used == self.sources[0].n_rows


def mix_indices(n_rows: int, weight: float, seed: int, position: int) -> list[int]:
    """Row indices (into one source) of one epoch, in order: the whole copies, then the subset."""
    import numpy as np

    copies, extra = divmod(int(weight * n_rows + 0.5), n_rows)
    # Its own stream, apart from the batch plan's [seed, epoch] ones.
    rng = np.random.default_rng([seed % 2**32, 0x6D6978, position])
    subset = np.sort(rng.choice(n_rows, size=extra, replace=False)).tolist() if extra else []
    return list(range(n_rows)) * copies + subset


def _row_kind(row: dict) -> RowKind:
    return "preference" if ("chosen" in row or "rejected" in row) else "completion"


def read_mix(
    ctx: StageContext,
    sources: list[RowSource],
    need: RowKind,
    objective: str,
    max_rows: int | None,
    seed: int,
) -> TrainRows:
    """Read and mix the sources' rows; every check (row kind, counts) happens here, before any work."""
    who = f"train stage {ctx.name!r}"
    rows, origin, meta = [], [], []
    for pos, src in enumerate(sources):
        where = ctx.path(src.stage)
        raw = read_rows(where, who, max_rows)
        for i, row in enumerate(raw):
            got = _row_kind(row)
            if got != need:
                raise ReasonDistillError(
                    f"{who}: objective {objective!r} trains on {ROW_FIELDS[need]} rows, but stage {src.stage!r} "
                    f"holds {ROW_FIELDS[got]} rows (row {i + 1}); every `rows` source must hold {ROW_FIELDS[need]} rows"
                )
        if need == "preference":  # validated pairs (chosen != rejected)
            raw = [r.model_dump() for r in read_preferences(where, who, max_rows)]
        picked = mix_indices(len(raw), src.weight, seed, pos)
        if not picked:
            raise ReasonDistillError(
                f"{who}: rows source {src.stage!r} at weight {src.weight} puts none of its {len(raw)} rows "
                "into an epoch (round(weight x rows) = 0): raise its weight"
            )
        rows.extend(raw[i] for i in picked)
        origin.extend((pos, i) for i in picked)
        meta.append(SourceRows(str(src.stage), src.weight, len(raw), len(picked)))
    return TrainRows(rows, origin, tuple(meta), need)
