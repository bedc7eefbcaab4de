"""Explicit name -> unit registries (STYLE.md: recipes refer to units by name, never by import path)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Generic, TypeVar

from reasondistill.errors import ReasonDistillError

T = TypeVar("T")


class Registry(Generic[T]):
    """A dict filled by explicit `register` calls; duplicate names are rejected."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._units: dict[str, T] = {}

    def register(self, name: str, unit: T | None = None):
        """Register `unit` under `name`; usable as a decorator when `unit` is omitted."""

        def _add(u: T) -> T:
            if name in self._units:
                raise ValueError(f"duplicate {self.kind} name {name!r}")
            self._units[name] = u
            return u

        return _add(unit) if unit is not None else _add

    def get(self, name: str) -> T:
        if name not in self._units:
            raise ReasonDistillError(f"unknown {self.kind} {name!r}; allowed: {', '.join(self.names())}")
        return self._units[name]

    def names(self) -> list[str]:
        return sorted(self._units)

    def __contains__(self, name: object) -> bool:
        return name in self._units

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def items(self) -> list[tuple[str, T]]:
        return [(n, self._units[n]) for n in self.names()]
