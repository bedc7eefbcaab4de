"""Batched generation with a KV cache, shared by the `hf` teacher and evaluation.

Prompts come in as token ids (models.tokenize.encode_prompt, the same ids training saw)
and are left-padded by hand: decoder-only models continue from the last position, so
padding must sit on the left, with an attention mask (generate derives position ids from
it). Left-padded batched greedy decoding equals one-at-a-time decoding; a unit test
checks that.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import StoppingCriteria, StoppingCriteriaList

from reasondistill.models.tokenize import eos_ids


@dataclass
class Generation:
    text: str  # decoded new tokens, special tokens skipped, cut before `stop` if it occurred
    num_tokens: int  # decode steps this sequence used, including its EOS or stop token
    prompt_tokens: int
    finished: bool  # ended by EOS or `stop`, not by max_new_tokens


class _StopOnString(StoppingCriteria):
    """Per-row stop as soon as the newly generated text contains `stop` (any token split)."""

    def __init__(self, tokenizer, stop: str, prompt_len: int) -> None:
        self.tokenizer, self.stop, self.prompt_len = tokenizer, stop, prompt_len

    def __call__(self, input_ids: torch.LongTensor, scores, **kwargs) -> torch.BoolTensor:
        texts = self.tokenizer.batch_decode(input_ids[:, self.prompt_len :], skip_special_tokens=True)
        return torch.tensor([self.stop in t for t in texts], dtype=torch.bool, device=input_ids.device)


def default_device() -> str | None:
    """Where generation should run: the GPU when there is one (load_model leaves models on CPU)."""
    return "cuda" if torch.cuda.is_available() else None


def left_pad(prompts: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(input_ids, attention_mask), both [batch, max_len], padding on the left."""
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for i, p in enumerate(prompts):
        if p:
            ids[i, width - len(p) :] = torch.tensor(p, dtype=torch.long)
            mask[i, width - len(p) :] = 1
    return ids, mask


@torch.inference_mode()
def generate_batch(
    model,
    tokenizer,
    prompts: list[list[int]],
    *,
    max_new_tokens: int,
    temperature: float = 0.0,
    top_p: float = 1.0,
    num_return_sequences: int = 1,
    stop: str | None = None,
    seed: int | None = None,
) -> list[Generation]:
    """Generate for each prompt (token ids); returns len(prompts) * num_return_sequences results,
    the samples of prompt i at [i * n, (i + 1) * n).

    temperature 0 is greedy. With `stop`, a row ends once its new text contains `stop`; its
    text is cut before the first occurrence and only the tokens up to it are counted
    (label-first evaluation, arXiv 2406.14511). Sampling is seeded by `seed` without
    touching the global RNG state.
    """
    if not prompts:
        return []
    if temperature == 0 and num_return_sequences > 1:
        raise ValueError("greedy decoding (temperature 0) would give identical samples; set temperature > 0")
    eos = eos_ids(model, tokenizer)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos[0]
    n = num_return_sequences
    rows = [p for p in prompts for _ in range(n)]  # repeat instead of num_return_sequences: same order
    input_ids, mask = left_pad(rows, pad_id)
    input_ids, mask = input_ids.to(model.device), mask.to(model.device)
    width = input_ids.shape[1]
    knobs = {"do_sample": temperature > 0}
    if temperature > 0:
        knobs.update(temperature=temperature, top_p=top_p, top_k=0)
    criteria = StoppingCriteriaList([_StopOnString(tokenizer, stop, width)] if stop else [])
    # Every knob is explicit so a checkpoint's generation_config.json (top_k, repetition
    # penalty, ...) cannot silently change what the recipe asked for.
    with torch.random.fork_rng(devices=[model.device] if model.device.type == "cuda" else []):
        if seed is not None:
            torch.manual_seed(seed)
        out = model.generate(
            input_ids=input_ids,
            attention_mask=mask,
            max_new_tokens=max_new_tokens,
            min_new_tokens=0,
            num_beams=1,
            repetition_penalty=1.0,
            eos_token_id=eos,
            pad_token_id=pad_id,
            stopping_criteria=criteria,
            use_cache=True,
            **knobs,
        )
    new = out[:, width:].tolist()
    return [_finish(tokenizer, ids, eos, stop, len(r)) for ids, r in zip(new, rows, strict=True)]


def _finish(tokenizer, ids: list[int], eos: list[int], stop: str | None, prompt_tokens: int) -> Generation:
    """Find where this row really ended: at its first EOS or the token that completed `stop`.

    The padding after a finished row is not counted, and the pad id is not trusted as an end
    marker (a random tiny model may emit it).
    """
    end = next((i for i, t in enumerate(ids) if t in eos), None)
    finished = end is not None
    n = end + 1 if finished else len(ids)  # decode steps used, the EOS included
    ids = ids[:end] if finished else ids
    if stop is not None:
        text = tokenizer.decode(ids, skip_special_tokens=True)
        if stop in text:
            # Smallest prefix whose text contains the stop string (monotone: binary search).
            lo, hi = 1, len(ids)
            while lo < hi:
                mid = (lo + hi) // 2
                if stop in tokenizer.decode(ids[:mid], skip_special_tokens=True):
                    hi = mid
                else:
                    lo = mid + 1
            return Generation(text[: text.index(stop)], lo, prompt_tokens, True)
        return Generation(text, n, prompt_tokens, finished)
    return Generation(tokenizer.decode(ids, skip_special_tokens=True), n, prompt_tokens, finished)
