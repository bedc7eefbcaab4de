"""TEACHERS (kind -> Teacher class) and the config union the `generate` stage validates against."""

from __future__ import annotations

from typing import Annotated, Any, Union

from pydantic import Field

from reasondistill.registry import Registry

TEACHERS: Registry[Any] = Registry("teacher")  # kind -> Teacher subclass (with a `Config`)


def teacher_config_type() -> Any:
    """Discriminated union (on `kind`) of every registered teacher config.

    An unknown kind fails validation with one line naming the allowed kinds.
    """
    configs = tuple(cls.Config for _, cls in TEACHERS.items())
    if not configs:
        raise RuntimeError("no teacher kinds registered; import reasondistill.teachers.kinds first")
    if len(configs) == 1:
        return configs[0]
    return Annotated[Union[configs], Field(discriminator="kind")]  # noqa: UP007 (built at runtime)
