"""Prompt templates (`template: {kind: plain | chat | think}`): a renderer and its exact inverse.

    base.py   the Template seam, the TEMPLATES registry, the trained-template record
    plain.py  "Question: ..." / "Reasoning: ..." / "Answer: ..." text (traces/format.py)
    chat.py   the tokenizer's chat template: [system?, user] prompt, one assistant turn
    think.py  the rationale in a <think> block inside the chat template (arXiv 2501.12948)

Importing this package registers every template: add one with a file and an import line here.
"""

from pydantic import Field

from reasondistill.traces.templates import chat, plain, think  # noqa: F401  (imported for registration)
from reasondistill.traces.templates.base import (
    TEMPLATE_FILE,
    TEMPLATES,
    Template,
    build_template,
    check_trained_template,
    question_from,
    read_template_record,
    rows_template,
    write_template_record,
)

# `template: {kind: ...}` validates against every registered template's config.
TemplateConfig = TEMPLATES.config_union()


def template_field(description: str = "prompt template (plain, chat, think)"):
    """The `template:` field of a config: default plain, the toolkit's text format."""
    return Field(default_factory=plain.PlainConfig, description=description)


__all__ = [
    "TEMPLATES",
    "TEMPLATE_FILE",
    "Template",
    "TemplateConfig",
    "build_template",
    "check_trained_template",
    "question_from",
    "read_template_record",
    "rows_template",
    "template_field",
    "write_template_record",
]
