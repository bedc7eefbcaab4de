"""Tiny, offline model + tokenizer fixtures for generation tests (no hub, no models/ package).

A byte-level BPE tokenizer trained on a few lines (so any string round-trips) with a
Llama-style BOS post-processor, and a 2-layer random Llama sized to its vocabulary.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from reasondistill.records import Example

CORPUS = [
    "Question: what is 2 + 3?\nReasoning: 2 plus 3 is 5\nAnswer: 5",
    "Question: reverse abc\nAnswer: cba\nReasoning: read it backwards",
    "Question: sort 3 1 2\nReasoning: smallest first\nAnswer: 1 2 3",
] * 20


def tiny_tokenizer() -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=["<pad>", "<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS, trainer)
    bos = tok.token_to_id("<s>")
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", bos)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>")


def tiny_model(tokenizer, seed: int = 0) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return LlamaForCausalLM(cfg).eval()


def examples(n: int, split: str = "test") -> list[Example]:
    return [
        Example(
            id=f"ex{i}",
            task="toy",
            question=f"what is {i} + {i}?" + " pad" * (i % 3),  # varied lengths exercise left padding
            answer=str(2 * i),
            rationale=f"{i} plus {i} is {2 * i}",
            split=split,
        )
        for i in range(n)
    ]


def fake_verify(example: Example, answer: str) -> bool:
    return answer == example.answer


@contextmanager
def single_thread():
    """Tiny models are overhead-bound: one intra-op thread is faster, and immune to a busy core."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


def memorized_model(
    tokenizer, pairs: list[tuple[str, str]], steps: int = 100, seed: int = 0
) -> LlamaForCausalLM:
    """A tiny model overfit on (prompt, completion) pairs (about 1 s), so greedy output is known."""
    from reasondistill.models.tokenize import encode_completion, encode_prompt

    model = tiny_model(tokenizer, seed).train()
    seqs, labels = [], []
    for p, c in pairs:
        pi, ci = encode_prompt(tokenizer, p), encode_completion(tokenizer, c)
        seqs.append(pi + ci)
        labels.append([-100] * len(pi) + ci)
    width = max(map(len, seqs))
    ids = torch.tensor([s + [tokenizer.pad_token_id] * (width - len(s)) for s in seqs])
    lab = torch.tensor([s + [-100] * (width - len(s)) for s in labels])
    mask = (torch.arange(width) < torch.tensor([len(s) for s in seqs])[:, None]).long()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    with single_thread():
        for _ in range(steps):
            loss = model(input_ids=ids, attention_mask=mask, labels=lab).loss
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()
