"""Repeat blocks: a block of stages run N times (self-improvement: sample -> filter -> train ->
merge -> sample again), unrolled at plan time into ordinary hashed stages.

```yaml
stages:
  base: {kind: train, ...}
  improve:                       # a block, not a stage: it has `repeat` and no `kind`
    repeat: 3                    # iterations 0, 1, 2
    inputs: {model: base}        # what `model@prev` means in iteration 0
    stages:
      samples: {kind: generate, teacher: {kind: hf, model: {stage: model@prev}}, ...}
      kept: {kind: filter, traces: samples}            # this iteration's samples
      model: {kind: train, rows: kept, model: {stage: model@prev}}
      eval: {kind: evaluate, model: {stage: model}, ...}
  report: {kind: report, evals: [eval]}                # every iteration, in order (a curve)
```
Inside the block, `X` is this iteration's stage X and `X@prev` the previous iteration's (in
iteration 0: the stage `inputs.X` names). Outside the block, a reference to a block stage in a
list field collects every iteration, a single reference means the last one, and `X@2` names one.
Stage `X` of iteration i becomes stage `X@i`: its hash covers its config and its inputs' hashes
as any stage's, so raising `repeat` from 3 to 5 reuses iterations 0-2 and runs only 3 and 4.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from reasondistill.errors import RecipeError

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
PREV = "prev"


@dataclass
class Block:
    name: str
    repeat: int
    inputs: dict[str, str]
    members: list[str]


@dataclass
class Unrolled:
    """A recipe's stages with every block unrolled."""

    stages: dict[str, dict] = field(default_factory=dict)  # stage name ("model@2") -> raw config
    where: dict[str, str] = field(default_factory=dict)  # stage name -> its key in the recipe
    iteration: dict[str, tuple[str, int]] = field(default_factory=dict)  # "model@2" -> ("model", 2)
    blocks: dict[str, Block] = field(default_factory=dict)  # block name -> block
    member_of: dict[str, Block] = field(default_factory=dict)  # block stage name -> its block

    def resolve(self, owner: str, target: str, is_list: bool) -> list[str]:
        """The stage names a reference from stage `owner` to `target` means; RecipeError if none."""
        name, at, which = target.partition("@")
        inside = self.iteration.get(owner)
        if name in self.blocks:
            stages = ", ".join(self.blocks[name].members)
            raise RecipeError(f"{target!r} is a repeat block; name one of its stages ({stages})")
        block = self.member_of.get(name)
        if block is None:
            if at:
                raise RecipeError(f"{target!r}: `@` names an iteration of a stage inside a repeat block")
            return [target]
        if not at:
            if inside is not None and self.member_of.get(inside[0]) is block:
                return [f"{name}@{inside[1]}"]  # this iteration's
            last = block.repeat - 1
            return [f"{name}@{i}" for i in range(block.repeat)] if is_list else [f"{name}@{last}"]
        if which == PREV:
            if inside is None or self.member_of.get(inside[0]) is not block:
                raise RecipeError(f"{target!r}: `@prev` is only meaningful inside block {block.name!r}")
            if inside[1] > 0:
                return [f"{name}@{inside[1] - 1}"]
            if name not in block.inputs:
                raise RecipeError(
                    f"{target!r}: iteration 0 has no previous {name!r}; set stages.{block.name}.inputs.{name} "
                    "to the stage it starts from"
                )
            return [block.inputs[name]]
        if not which.isdigit() or int(which) >= block.repeat:
            raise RecipeError(f"{target!r}: block {block.name!r} has iterations 0..{block.repeat - 1}")
        return [target]


def unroll(stages: dict) -> Unrolled:
    """Unroll every block of a recipe's `stages` mapping (blocks are entries with `repeat`)."""
    out = Unrolled()
    for key, raw in stages.items():
        if isinstance(raw, dict) and "repeat" in raw:
            out.blocks[key] = _block(key, raw)
    for key, raw in stages.items():
        block = out.blocks.get(key)
        if block is None:
            out.stages[key], out.where[key] = raw, f"stages.{key}"
            continue
        for member in block.members:
            if member in stages or member in out.member_of:
                raise RecipeError(f"stages.{key}.stages.{member}: the name is used twice in the recipe")
            out.member_of[member] = block
        for i in range(block.repeat):
            for member in block.members:
                name = f"{member}@{i}"
                out.stages[name], out.where[name] = raw["stages"][member], f"stages.{key}.stages.{member}"
                out.iteration[name] = (member, i)
    for block in out.blocks.values():
        for member, source in block.inputs.items():
            if member not in block.members:
                raise RecipeError(f"stages.{block.name}.inputs.{member}: not a stage of the block")
            if source not in out.stages or source in out.iteration:
                raise RecipeError(f"stages.{block.name}.inputs.{member}: {source!r} is not a stage outside the block")
    return out


def _block(key: str, raw: dict) -> Block:
    unknown = set(raw) - {"repeat", "inputs", "stages"}
    if unknown:
        raise RecipeError(f"stages.{key}.{sorted(unknown)[0]}: unknown key; a repeat block has repeat, inputs, stages")
    repeat, inputs, members = raw.get("repeat"), raw.get("inputs") or {}, raw.get("stages")
    if not isinstance(repeat, int) or isinstance(repeat, bool) or repeat < 1:
        raise RecipeError(f"stages.{key}.repeat: a whole number of iterations >= 1")
    if not isinstance(members, dict) or not members:
        raise RecipeError(f"stages.{key}.stages: a mapping of the block's stages")
    if not isinstance(inputs, dict) or not all(isinstance(v, str) for v in inputs.values()):
        raise RecipeError(f"stages.{key}.inputs: a mapping block stage -> the outside stage iteration 0 reads")
    for member in members:
        if not _NAME.match(str(member)):
            raise RecipeError(f"stages.{key}.stages.{member}: use letters, digits, '_', '-', '.'")
    return Block(key, repeat, dict(inputs), list(members))
