"""`chat`: the model tokenizer's own chat template, system / user / assistant turns.

Rows are TRL's conversational prompt/completion: the prompt is `[system?, user]` with the
question as the user's content, the completion one assistant turn whose content is the
`plain` completion text ("Reasoning: ...\\nAnswer: ..."), so every placement and label-first
evaluation work as in `plain`. The tokenizer renders the turns (models/tokenize.py), so an
instruction-tuned model is prompted the way it was tuned, and the toolkit's tokenizer stage
gives tiny models a ChatML template (models/tokenizer.py).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from reasondistill.models.tokenize import chat_text
from reasondistill.records import Prompt
from reasondistill.traces.format import ANSWER_STOP, REASONING_PREFIX, render_completion, split_completion
from reasondistill.traces.templates.base import TEMPLATES, Template, TemplateConfig


class ChatConfig(TemplateConfig):
    kind: Literal["chat"] = "chat"
    system: str | None = Field(
        None, description="a system message before the question (None: no system turn)"
    )


class ChatTemplate(Template):
    """Chat messages rendered by the tokenizer's chat template; the answer text as in plain."""

    Config = ChatConfig
    stop = ANSWER_STOP
    rationale_open = REASONING_PREFIX + " "
    fixed_text = "Reasoning: \nAnswer: \n"
    chat = True

    def prompt(self, question: str) -> Prompt:
        system = getattr(self.cfg, "system", None)
        head = [{"role": "system", "content": system}] if system is not None else []
        return head + [{"role": "user", "content": question}]

    def question_of(self, prompt: Prompt) -> str:
        """The user's content of a `[system?, user]` prompt (any system message)."""
        turns = prompt if isinstance(prompt, list) else []
        roles = [m.get("role") if isinstance(m, dict) else None for m in turns]
        if roles not in (["user"], ["system", "user"]) or not isinstance(turns[-1].get("content"), str):
            raise ValueError(
                f"not a single-question chat prompt ([system?, user] with text): {str(prompt)[:80]!r}"
            )
        return turns[-1]["content"]

    def render(self, answer: str, rationale: str | None, placement: str) -> str:
        self.check_placement(placement)
        return render_completion(answer, rationale, placement)

    def parse(self, text: str) -> tuple[str | None, str | None]:
        return split_completion(text)

    def completion(self, answer: str, rationale: str | None, placement: str) -> Prompt:
        return [{"role": "assistant", "content": self.render(answer, rationale, placement)}]

    def check_tokenizer(self, tokenizer) -> None:
        chat_text(tokenizer, self.prompt("?"), add_generation_prompt=True)  # raises without a chat template


TEMPLATES.register("chat", ChatTemplate)
