"""`plain`: the toolkit's own text format, for models trained from scratch or base models.

    prompt      Question: {question}\\n
    completion  Reasoning: {rationale}\\nAnswer: {answer}      (and the other placements)

The renderer and its inverse are traces/format.py (arXiv 2406.14511's three placements);
generation of a "none" or "after" completion can stop at the end of the answer line.
"""

from __future__ import annotations

from typing import Literal

from reasondistill.records import Prompt
from reasondistill.traces.format import (
    ANSWER_STOP,
    REASONING_PREFIX,
    render_completion,
    render_prompt,
    split_completion,
)
from reasondistill.traces.templates.base import TEMPLATES, Template, TemplateConfig

_HEAD, _TAIL = render_prompt("\x00").split("\x00")  # "Question: ", "\n"


class PlainConfig(TemplateConfig):
    kind: Literal["plain"] = "plain"


class PlainTemplate(Template):
    Config = PlainConfig
    stop = ANSWER_STOP
    rationale_open = REASONING_PREFIX + " "
    fixed_text = "Question: \nReasoning: \nAnswer: \n"

    def prompt(self, question: str) -> Prompt:
        return render_prompt(question)

    def question_of(self, prompt: Prompt) -> str:
        if not (isinstance(prompt, str) and prompt.startswith(_HEAD) and prompt.endswith(_TAIL)):
            raise ValueError(f"not a plain prompt ({_HEAD!r}...{_TAIL!r}): {str(prompt)[:80]!r}")
        return prompt[len(_HEAD) : len(prompt) - len(_TAIL)]

    def render(self, answer: str, rationale: str | None, placement: str) -> str:
        self.check_placement(placement)
        return render_completion(answer, rationale, placement)

    def parse(self, text: str) -> tuple[str | None, str | None]:
        return split_completion(text)


TEMPLATES.register(
    "plain", PlainTemplate, description="'Question: ...' / 'Reasoning: ...' / 'Answer: ...' text"
)
