"""How prompts and completions become token ids: one place, shared by training and generation.

Prompt and completion are tokenized separately and concatenated, never as one string, so
the prompt's ids at training time are exactly the ids generation starts from (a joint
tokenization can merge tokens across the boundary, e.g. BPE merging '\n' + 'Answer').
"""

from __future__ import annotations


def encode_prompt(tokenizer, prompt: str) -> list[int]:
    """Prompt ids with the tokenizer's own special-token convention (BOS for Llama, none for Qwen)."""
    return list(tokenizer(prompt, add_special_tokens=True)["input_ids"])


def encode_completion(tokenizer, completion: str) -> list[int]:
    """Completion ids followed by EOS, which is what teaches the model to stop."""
    ids = list(tokenizer(completion, add_special_tokens=False)["input_ids"])
    if tokenizer.eos_token_id is None:
        raise ValueError("tokenizer has no eos_token; set one before training")
    return ids + [tokenizer.eos_token_id]
