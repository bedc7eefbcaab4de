"""Explicit name -> unit registries: one registration idiom, one selector key, for every seam.

Every extension kind (stage kinds, tasks, teachers, templates, training objectives, rationale
transforms, key-token scorers, KD losses, ...) is one `Registry`. A unit registers with

    REGISTRY.register("name", Unit, paper="arXiv 2406.14511")     # or as a class decorator

and carries a one-line description (the first sentence of its docstring unless `description=`
is given) and, where it implements a paper, its reference. Recipes select a unit by name with the
key `kind` in every registry (`{kind: shuffle}`, `{kind: forward_kl}`, `{kind: chat}`), never by
import path (STYLE.md; mergekit's merge_methods/registry.py). `reasondistill list` prints them all.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar, Union, get_args

from pydantic import Field

from reasondistill.errors import ReasonDistillError

T = TypeVar("T")
_PAPER = re.compile(r"^arXiv \d{4}\.\d{4,5}$")
REGISTRIES: dict[str, Registry] = {}  # every registry, by the name `reasondistill list` prints


@dataclass(frozen=True)
class Entry(Generic[T]):
    name: str
    unit: T
    description: str
    paper: str | None  # "arXiv NNNN.NNNNN" of the method the unit implements


class Registry(Generic[T]):
    """A dict filled by explicit `register` calls; duplicate names are rejected.

    `config`: how to get a unit's pydantic config class (units that are their own config need
    none); with it, `config_union()` is the discriminated union on `kind` a recipe validates
    against, so adding a unit needs no change where it is selected."""

    def __init__(self, kind: str, title: str, config: Callable[[T], type] | None = None) -> None:
        self.kind, self.title = kind, title
        self._config = config or (lambda unit: unit)
        self._entries: dict[str, Entry[T]] = {}
        if title in REGISTRIES:
            raise ValueError(f"duplicate registry {title!r}")
        REGISTRIES[title] = self

    def register(self, name: str, unit: T | None = None, *, description: str | None = None, paper: str | None = None):
        """Register `unit` under `name`; usable as a decorator when `unit` is omitted."""

        def _add(u: T) -> T:
            if name in self._entries:
                raise ValueError(f"duplicate {self.kind} name {name!r}")
            doc = description or _summary(getattr(u, "__doc__", None) or "")
            if not doc:
                raise ValueError(f"{self.kind} {name!r} needs a one-line description (docstring or description=)")
            if paper is not None and not _PAPER.match(paper):
                raise ValueError(f"{self.kind} {name!r}: paper must look like 'arXiv 2406.14511', got {paper!r}")
            kinds = get_args(getattr(self._config(u), "model_fields", {}).get("kind", _NoKind).annotation)
            if kinds and kinds != (name,):
                raise ValueError(f"{self.kind} {name!r}: its config's `kind` must be Literal[{name!r}], got {kinds}")
            self._entries[name] = Entry(name, u, doc, paper)
            return u

        return _add(unit) if unit is not None else _add

    def get(self, name: str) -> T:
        return self.entry(name).unit

    def entry(self, name: str) -> Entry[T]:
        if name not in self._entries:
            raise ReasonDistillError(f"unknown {self.kind} {name!r}; allowed: {', '.join(self.names())}")
        return self._entries[name]

    def names(self) -> list[str]:
        return sorted(self._entries)

    def entries(self) -> list[Entry[T]]:
        return [self._entries[n] for n in self.names()]

    def items(self) -> list[tuple[str, T]]:
        return [(e.name, e.unit) for e in self.entries()]

    def config(self, name: str) -> type:
        return self._config(self.get(name))

    def config_union(self) -> Any:
        """Discriminated union (on `kind`) of every registered unit's config class."""
        configs = tuple(self._config(e.unit) for e in self.entries())
        if not configs:
            raise RuntimeError(f"no {self.kind} registered")
        if len(configs) == 1:
            return configs[0]
        return Annotated[Union[configs], Field(discriminator="kind")]  # noqa: UP007 (built at runtime)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


def _summary(doc: str) -> str:
    """The first sentence of a docstring's first paragraph, on one line."""
    paragraph = " ".join(doc.strip().split("\n\n")[0].split())
    end = paragraph.find(". ")
    return paragraph if end == -1 else paragraph[: end + 1]


class _NoKind:
    annotation = None
