"""`think`: reasoning-model style, the rationale in a `<think>` block, then the answer.

DeepSeek-R1 (DeepSeek-AI, arXiv 2501.12948) writes its reasoning between `<think>` and
`</think>`, then the answer; its open distillations and Qwen3 (arXiv 2505.09388) write the
assistant turn as

    <think>\\n{rationale}\\n</think>\\n\\n{answer}

and Qwen3 marks "no reasoning" with an empty block, `<think>\\n\\n</think>\\n\\n{answer}`,
which is placement "none" here. The block sits inside the chat template's assistant turn
(prompt as in `chat`). Departures, and why: the answer is the whole text after the block,
one line (the toolkit's verifiers take a bare answer, where R1 writes a free-form summary);
placement "after" is refused, since a reasoning model's answer follows its reasoning by
construction, so there is no label-first evaluation either. `parse` also reads text whose
opening `<think>` was part of the prompt (R1's chat template ends its generation prompt with
it), and `assistant_text` rebuilds the block from a server's separate reasoning field.
"""

from __future__ import annotations

from typing import Literal

from reasondistill.errors import ReasonDistillError
from reasondistill.models.tokenize import tokenizer_name
from reasondistill.traces.format import check_answer
from reasondistill.traces.templates.base import TEMPLATES
from reasondistill.traces.templates.chat import ChatConfig, ChatTemplate

OPEN, CLOSE = "<think>", "</think>"


class ThinkConfig(ChatConfig):
    kind: Literal["think"] = "think"  # and chat's `system`


class ThinkTemplate(ChatTemplate):
    """Reasoning in a <think> block, then the answer, inside the chat template (DeepSeek-R1 style)."""

    Config = ThinkConfig
    placements = ("none", "before")
    stop = None
    rationale_open = OPEN + "\n"
    fixed_text = ""  # the tags are single tokens of a chat tokenizer (models/tokenizer.py)

    def render(self, answer: str, rationale: str | None, placement: str) -> str:
        self.check_placement(placement)
        check_answer(answer)
        if placement == "none":
            return f"{OPEN}\n\n{CLOSE}\n\n{answer}"
        if rationale is None:
            raise ValueError("placement 'before' needs a rationale, got None")
        if rationale == "":
            raise ValueError("an empty rationale would read as placement none's empty think block")
        if CLOSE in rationale:
            raise ValueError(f"rationale must not contain {CLOSE!r}")
        return f"{OPEN}\n{rationale}\n{CLOSE}\n\n{answer}"

    def layout(self, answer: str, rationale: str) -> tuple[str, int, int]:
        if rationale == "":  # a scorer's variant with every piece dropped: the empty block
            text = self.render(answer, None, "none")
            return text, len(self.rationale_open), len(text) - len(answer)
        return super().layout(answer, rationale)

    def parse(self, text: str) -> tuple[str | None, str | None]:
        body = text.removeprefix(OPEN)
        if CLOSE not in body:
            return None, None  # still thinking when generation stopped: no answer
        thought, _, rest = body.partition(CLOSE)
        rationale = thought.removeprefix("\n").removesuffix("\n")
        return (rationale or None), (rest.strip() or None)

    def assistant_text(self, content: str, reasoning: str | None) -> str:
        if reasoning is None or CLOSE in content:
            return content
        return f"{OPEN}\n{reasoning.strip(chr(10))}\n{CLOSE}\n\n{content.lstrip()}"

    def check_tokenizer(self, tokenizer) -> None:
        super().check_tokenizer(tokenizer)
        probe = f"{OPEN}x{CLOSE}"
        ids = tokenizer(probe, add_special_tokens=False)["input_ids"]
        if tokenizer.decode(ids, skip_special_tokens=True) != probe:
            raise ReasonDistillError(
                f"tokenizer {tokenizer_name(tokenizer)!r} drops {OPEN!r} / {CLOSE!r} when decoding "
                "(special tokens?), so generated reasoning could not be parsed"
            )


TEMPLATES.register("think", ThinkTemplate, paper="arXiv 2501.12948")
