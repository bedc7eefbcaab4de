"""One contract test over every registry (registry.py): names, descriptions, papers, `kind`
selectors, and the artifact types of stage kinds and their reference fields."""

from __future__ import annotations

import importlib
import inspect

import pytest
from pydantic import BaseModel

from reasondistill.cli import _REGISTRY_MODULES
from reasondistill.config import StageRef
from reasondistill.registry import REGISTRIES, Registry

for _module in _REGISTRY_MODULES:
    importlib.import_module(_module)

ALL = [(title, e) for title, reg in REGISTRIES.items() for e in reg.entries()]


def test_every_registry_is_listed_and_not_empty():
    assert {"stage kinds", "tasks", "teachers", "rationale transforms", "key-token scorers", "kd losses"} <= set(
        REGISTRIES
    )
    assert all(reg.names() for reg in REGISTRIES.values())


@pytest.mark.parametrize("title, entry", ALL, ids=[f"{t}:{e.name}" for t, e in ALL])
def test_entry_contract(title, entry):
    reg = REGISTRIES[title]
    assert entry.description and "\n" not in entry.description and len(entry.description) < 160
    assert entry.paper is None or entry.paper.startswith("arXiv ")
    config = reg.config(entry.name)
    if title == "tasks":
        return  # tasks are selected by `task:`; their Config holds the task's knobs
    if title == "kd losses":  # functions; their recipe config is kd/config.py's KDLossConfig
        from reasondistill.kd.config import KD_LOSS_OPTIONS
        from reasondistill.kd.losses import loss_options

        assert tuple(loss_options(entry.unit)) == KD_LOSS_OPTIONS[entry.name]
        return
    assert issubclass(config, BaseModel)
    kind = config.model_fields["kind"]
    assert kind.annotation.__args__ == (entry.name,)  # the selector: `kind: <name>` in a recipe


def test_kd_loss_options_name_every_registered_loss():
    from reasondistill.kd.config import KD_LOSS_OPTIONS
    from reasondistill.kd.losses import KD_LOSSES

    assert sorted(KD_LOSS_OPTIONS) == KD_LOSSES.names()


def _refs(model: type[BaseModel], seen=None):
    """Every StageRef type reachable from a config class's fields."""
    seen = set() if seen is None else seen
    if model in seen:
        return
    seen.add(model)
    for f in model.model_fields.values():
        stack = [f.annotation]
        while stack:
            tp = stack.pop()
            if inspect.isclass(tp) and issubclass(tp, StageRef):
                yield tp
            elif inspect.isclass(tp) and issubclass(tp, BaseModel):
                yield from _refs(tp, seen)
            stack.extend(getattr(tp, "__args__", ()) or ())


def test_stage_kinds_declare_artifacts_and_refs_accept_producible_ones():
    stages = REGISTRIES["stage kinds"]
    produced = set().union(*(cls.produces for _, cls in stages.items()))
    for name, cls in stages.items():
        assert cls.produces, f"stage kind {name} declares no artifact"
        for ref in _refs(cls.Config):
            assert ref.accepts, f"{name}: an untyped reference field"
            assert ref.accepts & produced, f"{name}: accepts {ref.accepts}, which no stage kind produces"


def test_registry_rejects_duplicates_bad_papers_and_missing_descriptions():
    reg = Registry("widget", "widgets (test)")
    try:

        class Good:
            """A widget."""

        reg.register("good", Good, paper="arXiv 2406.14511")
        with pytest.raises(ValueError, match="duplicate widget name 'good'"):
            reg.register("good", Good)
        with pytest.raises(ValueError, match="paper must look like"):
            reg.register("bad_paper", Good, paper="2406.14511")
        with pytest.raises(ValueError, match="needs a one-line description"):
            reg.register("undocumented", type("Undocumented", (), {}))
        assert reg.entry("good").description == "A widget." and reg.entry("good").paper == "arXiv 2406.14511"
    finally:
        del REGISTRIES["widgets (test)"]
