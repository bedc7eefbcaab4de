"""The prompt-template seam: a renderer and its exact inverse.

A template says how a question becomes a prompt (`prompt` / `question_of`) and how a
(rationale, answer) pair becomes the text the model writes (`render` / `parse`), for each
rationale placement it supports (arXiv 2406.14511: none / before / after the label). Every
stage that renders or parses text goes through one: format (training rows), teachers
(generate), evaluate, transforms' teacher scorers; the KD cache and training tokenize the
rows it wrote (models/tokenize.py). Because `parse` inverts `render` exactly, evaluation
parses what training taught, and because `question_of` inverts `prompt`, a format stage can
re-render traces written under another template.

Training rows follow TRL: a text prompt and completion, or chat messages (a prompt of
system? + user turns, a completion of one assistant turn whose content is `render`'s text).

A model records the template it was trained on (TEMPLATE_FILE: the format stage writes it
beside its rows, a training stage copies it into its model directory with `rows_template` and
`write_template_record`); stages that prompt a model check theirs against it
(`check_trained_template`) before generating anything, since a model prompted in another format
than it learned answers garbage, not an error. A model without a record (a hub model) is not
checked: its template is the recipe's word.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, ClassVar

from reasondistill.config import StrictModel
from reasondistill.errors import ReasonDistillError
from reasondistill.models.tokenize import encode_prompt
from reasondistill.records import Prompt
from reasondistill.registry import Registry
from reasondistill.traces.format import PLACEMENTS

TEMPLATE_FILE = "prompt_template.json"  # the template a rows stage / model directory was made with


class TemplateConfig(StrictModel):
    """Base of template configs; each template's `Config` narrows `kind` to its name."""

    kind: str


class Template:
    """Base of templates. Subclasses set `Config` and implement prompt, question_of, render, parse."""

    Config: ClassVar[type[TemplateConfig]]
    placements: ClassVar[tuple[str, ...]] = PLACEMENTS  # rationale placements it can render
    # Label-first evaluation (arXiv 2406.14511, Sec. 4) stops generation at this string, just
    # after the answer; None: the template has no label-first form.
    stop: ClassVar[str | None] = None
    # What precedes the rationale in placement "before" (used to locate it, `layout`).
    rationale_open: ClassVar[str] = ""
    # The template's fixed strings, for a tokenizer trained to encode them (stages/tokenizer.py).
    fixed_text: ClassVar[str] = ""
    chat: ClassVar[bool] = False  # prompts are chat messages: the tokenizer needs a chat template

    def __init__(self, cfg: TemplateConfig | None = None) -> None:
        self.cfg = cfg if cfg is not None else self.Config()

    @property
    def kind(self) -> str:
        return self.cfg.kind

    # -- the four functions every template defines ------------------------------------------
    def prompt(self, question: str) -> Prompt:
        """The prompt of `question`: text, or chat messages."""
        raise NotImplementedError

    def question_of(self, prompt: Prompt) -> str:
        """The question of a prompt `prompt(question)` made; ValueError for any other prompt."""
        raise NotImplementedError

    def render(self, answer: str, rationale: str | None, placement: str) -> str:
        """The text the model writes (a completion, or an assistant turn's content); raises
        ValueError for inputs that would not round-trip."""
        raise NotImplementedError

    def parse(self, text: str) -> tuple[str | None, str | None]:
        """(rationale, answer) of generated text; inverts `render` for every supported placement."""
        raise NotImplementedError

    # -- derived ------------------------------------------------------------------------------
    def completion(self, answer: str, rationale: str | None, placement: str) -> Prompt:
        """A training row's completion: `render`'s text (text templates)."""
        return self.render(answer, rationale, placement)

    def check_placement(self, placement: str) -> None:
        if placement not in self.placements:
            raise ValueError(
                f"template {self.kind!r} renders placements {', '.join(self.placements)}, not {placement!r}"
            )

    def layout(self, answer: str, rationale: str) -> tuple[str, int, int]:
        """(text of placement "before", where the rationale starts in it, where the answer starts).

        For scorers that read a teacher's likelihood of the answer given the rationale."""
        text = self.render(answer, rationale, "before")
        r0, a0 = len(self.rationale_open), len(text) - len(answer)
        if text[r0 : r0 + len(rationale)] != rationale or text[a0:] != answer:
            raise AssertionError(f"template {self.kind!r}: layout does not match render")  # a template bug
        return text, r0, a0

    def assistant_text(self, content: str, reasoning: str | None) -> str:
        """The generated text of a chat reply whose server split reasoning off into its own field
        (vLLM's reasoning parsers). Templates without a reasoning block keep the content."""
        return content

    def check_tokenizer(self, tokenizer) -> None:
        """Fail early, naming the tokenizer, if it cannot encode this template's prompts."""

    def encode_prompt(self, tokenizer, question: str) -> list[int]:
        """Token ids of `prompt(question)`, exactly as training tokenized the prompt."""
        return encode_prompt(tokenizer, self.prompt(question))


TEMPLATES: Registry[type[Template]] = Registry("template", "prompt templates", config=lambda t: t.Config)


def build_template(cfg: TemplateConfig) -> Template:
    """The Template for a validated config (its `kind` selects the registered class)."""
    return TEMPLATES.get(cfg.kind)(cfg)


def question_from(prompt: Prompt) -> str:
    """The question of a prompt written under any registered template (a trace's prompt)."""
    for _, cls in TEMPLATES.items():
        try:
            return cls().question_of(prompt)
        except ValueError:
            continue
    raise ValueError(
        f"no prompt template ({', '.join(TEMPLATES.names())}) made this prompt: {str(prompt)[:80]!r}"
    )


# -- which template a model was trained on ------------------------------------------------
def write_template_record(directory: Path, record: TemplateConfig | dict[str, Any]) -> None:
    """Record a template in `directory` (a rows stage, or a model directory). Atomic, and safe to
    call from every rank of a distributed run (each writes the same content via its own temp file)."""
    if isinstance(record, TemplateConfig):
        record = record.model_dump(mode="json")
    path = Path(directory) / TEMPLATE_FILE
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)


def read_template_record(directory: str | Path) -> dict[str, Any] | None:
    """The template recorded in `directory`, or None (no record: a hub model, an older run)."""
    path = Path(directory) / TEMPLATE_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def rows_template(rows_dirs: list[Path], who: str) -> dict[str, Any] | None:
    """The template the rows of `rows_dirs` were rendered with (for a training stage to record in
    its model directory); rows of different templates in one model are refused."""
    records = {
        json.dumps(r, sort_keys=True): r for d in rows_dirs if (r := read_template_record(d)) is not None
    }
    if len(records) > 1:
        raise ReasonDistillError(
            f"{who}: its rows were rendered with different templates: {list(records.values())}"
        )
    return next(iter(records.values()), None)


def check_trained_template(model_path: str, cfg: TemplateConfig, who: str) -> None:
    """Refuse to prompt a model under another template than the one it recorded being trained on."""
    trained = read_template_record(model_path) if Path(model_path).is_dir() else None
    if trained is not None and trained != cfg.model_dump(mode="json"):
        raise ReasonDistillError(
            f"{who}: the model {model_path} was trained with template {trained} but this stage uses "
            f"{cfg.model_dump(mode='json')}; set the same `template:` on both"
        )
