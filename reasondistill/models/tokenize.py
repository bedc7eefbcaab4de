"""How prompts and completions become token ids: one place, shared by training, KD caching,
generation, scoring and serving.

A prompt is text or chat messages (records.Prompt, TRL's two conventions):

- text: prompt and completion are tokenized separately and concatenated, never as one
  string, so the prompt's ids at training time are exactly the ids generation starts from
  (a joint tokenization can merge tokens across the boundary, e.g. BPE merging '\\n' +
  'Answer'). The completion gets the tokenizer's EOS, which teaches the model to stop.
- messages: rendered by the tokenizer's own chat template, TRL's way: the prompt with
  `add_generation_prompt=True`, then prompt + completion; the completion's ids are the
  suffix. That is only sound when the first is a prefix of the second (text and ids), which
  is checked: a template that breaks it fails here, not as a silently shifted loss mask.
  The template's end-of-turn token ends the completion, so it must be an EOS.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from reasondistill.errors import ReasonDistillError

Messages = list[dict[str, Any]]


def tokenizer_name(tokenizer) -> str:
    """How errors name a tokenizer: its path or hub id, else its class."""
    return getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__


def chat_text(tokenizer, messages: Messages, *, add_generation_prompt: bool) -> str:
    """`messages` rendered by the tokenizer's chat template; a clear error when it has none."""
    if not getattr(tokenizer, "chat_template", None):
        raise ReasonDistillError(
            f"tokenizer {tokenizer_name(tokenizer)!r} has no chat template, which chat-message prompts "
            "(template: chat or think) need: use template: {kind: plain}, a model that ships one, or "
            "a tokenizer stage with template: {kind: chat}"
        )
    return tokenizer.apply_chat_template(
        messages, add_generation_prompt=add_generation_prompt, tokenize=False
    )


def _ids(tokenizer, text: str) -> list[int]:
    # The chat template writes every special token itself (a BOS where the model wants one).
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def encode_prompt(tokenizer, prompt: str | Messages) -> list[int]:
    """Prompt ids: text with the tokenizer's own special-token convention (BOS for Llama, none
    for Qwen); messages through the chat template, ending with the assistant turn's opening."""
    if isinstance(prompt, str):
        return list(tokenizer(prompt, add_special_tokens=True)["input_ids"])
    return _ids(tokenizer, chat_text(tokenizer, prompt, add_generation_prompt=True))


def encode_completion(tokenizer, completion: str) -> list[int]:
    """Completion ids of a text prompt, followed by EOS, which is what teaches the model to stop."""
    ids = list(tokenizer(completion, add_special_tokens=False)["input_ids"])
    if tokenizer.eos_token_id is None:
        raise ValueError("tokenizer has no eos_token; set one before training")
    return ids + [tokenizer.eos_token_id]


def _chat_texts(tokenizer, prompt: Messages, completion: Messages) -> tuple[str, str]:
    """(prompt text with the generation prompt, prompt + completion text), the first a prefix."""
    head = chat_text(tokenizer, prompt, add_generation_prompt=True)
    full = chat_text(tokenizer, prompt + completion, add_generation_prompt=False)
    name = tokenizer_name(tokenizer)
    if not full.startswith(head):
        raise ReasonDistillError(
            f"the chat template of tokenizer {name!r} does not render the prompt (with its generation "
            "prompt) as a prefix of prompt + completion, so the completion's tokens cannot be located"
        )
    for m in completion:
        if str(m.get("content", "")) not in full[len(head) :]:
            # DeepSeek-R1's template, for one, drops "<think>...</think>" from assistant turns.
            raise ReasonDistillError(
                f"the chat template of tokenizer {name!r} rewrites the assistant's content (it would "
                f"not train on what the template renders), e.g. {str(m.get('content'))[:60]!r}"
            )
    return head, full


def _chat_pair(tokenizer, prompt: Messages, completion: Messages, offsets: bool = False):
    """(prompt ids, the encoding of prompt + completion, its text, where the completion starts in
    it), with the prefix property checked on text and on tokens."""
    head, full = _chat_texts(tokenizer, prompt, completion)
    p = _ids(tokenizer, head)
    enc = tokenizer(full, add_special_tokens=False, return_offsets_mapping=offsets)
    if list(enc["input_ids"][: len(p)]) != p:
        raise ReasonDistillError(
            f"tokenizer {tokenizer_name(tokenizer)!r}: the tokens of prompt + completion do not start "
            "with the prompt's tokens (the chat template's generation prompt merges with the completion)"
        )
    return p, enc, full, len(head)


def encode_pair(tokenizer, prompt: str | Messages, completion: str | Messages) -> tuple[list[int], list[int]]:
    """(prompt ids, completion ids) of a TRL prompt/completion row, text or messages.

    Raises ValueError for a row of the wrong shape, ReasonDistillError for a tokenizer that
    cannot encode it (no chat template, a template without the prefix property or EOS)."""
    if isinstance(prompt, str) and isinstance(completion, str):
        return encode_prompt(tokenizer, prompt), encode_completion(tokenizer, completion)
    if not (_is_messages(prompt) and _is_messages(completion)):
        raise ValueError("needs string 'prompt' and 'completion' fields, or chat messages in both")
    p, enc, _, _ = _chat_pair(tokenizer, prompt, completion)
    c = list(enc["input_ids"][len(p) :])
    if tokenizer.eos_token_id not in c:
        raise ReasonDistillError(
            f"tokenizer {tokenizer_name(tokenizer)!r}: its chat template ends the assistant turn without "
            f"its eos_token {tokenizer.eos_token!r}, so a model trained on it would never stop"
        )
    return p, c


def encode_with_spans(
    tokenizer, prompts: Sequence[str | Messages], texts: Sequence[str]
) -> list[tuple[list[int], list[int], list[tuple[int, int]]]]:
    """For each (prompt, completion text): (prompt ids, the text's ids as training sees them
    after the prompt, each id's character span in the text), stopping at the end of the text
    (no EOS / end of turn). For scoring pieces of a completion with a model.

    A text is the completion (text prompts) or the assistant's content (messages). Needs a
    fast tokenizer (offsets)."""
    out: list[tuple[list[int], list[int], list[tuple[int, int]]]] = []
    batch = [t for p, t in zip(prompts, texts, strict=True) if isinstance(p, str)]  # one call: fast
    encs = tokenizer(batch, add_special_tokens=False, return_offsets_mapping=True) if batch else None
    plain = zip(encs["input_ids"], encs["offset_mapping"], strict=True) if encs else iter(())
    cached: dict[str, list[int]] = {}  # a text prompt's ids (many rows share one in leave-one-out)
    for prompt, text in zip(prompts, texts, strict=True):
        if isinstance(prompt, str):
            if prompt not in cached:
                cached[prompt] = encode_prompt(tokenizer, prompt)
            ids, offs = next(plain)
            out.append((cached[prompt], list(ids), [tuple(o) for o in offs]))
            continue
        p, enc, full, head = _chat_pair(tokenizer, prompt, [{"role": "assistant", "content": text}], offsets=True)
        start = full.index(text, head)  # the assistant's content (present: checked by _chat_texts)
        end = start + len(text)
        ids, spans = [], []
        for i, (s, e) in zip(enc["input_ids"][len(p) :], enc["offset_mapping"][len(p) :], strict=True):
            if s >= end:
                break
            ids.append(i)
            spans.append((max(s - start, 0), min(e, end) - start))
        out.append((p, ids, spans))
    return out


def eos_ids(model, tokenizer) -> list[int]:
    """Every id that ends generation: the tokenizer's EOS and the model's generation_config's
    (Qwen lists two; chat models often add their end-of-turn token there)."""
    ids = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
    gen_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids.update([gen_eos] if isinstance(gen_eos, int) else (gen_eos or []))
    if not ids:
        raise ValueError("tokenizer has no eos_token and the model's generation_config names none")
    return sorted(ids)


def _is_messages(x: Any) -> bool:
    return (
        isinstance(x, Sequence) and not isinstance(x, str) and all(isinstance(m, dict) for m in x) and bool(x)
    )
