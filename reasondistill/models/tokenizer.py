"""Train a small BPE tokenizer locally (no network), suited to procedural reasoning text.

Choices, and why:
- Character-level BPE with an `<unk>` rather than byte-level: byte-level BPE starts from
  256 byte tokens, more than the 128-token vocabularies tiny students use. The alphabet is
  printable ASCII plus tab/newline plus every character of the training text, so ASCII
  text always round-trips; a character never seen in training becomes `<unk>`.
- Pre-tokenization isolates every digit (so "68" is "6","8": numbers are read digit by
  digit, as in arithmetic-reasoning work), every punctuation mark and every whitespace
  character; a word keeps one leading space (" Answer"). BPE merges never cross these
  pieces, so "23+45=68, 68+12=80" is 2|3|+|4|5|=|6|8|,| |6|8|+|1|2|=|8|0.
- No normalizer and a `Fuse` decoder (plain concatenation), and transformers' clean-up of
  spaces before punctuation disabled: decode(encode(x)) == x exactly, spaces and newlines
  included. The evaluation parses decoded text line by line.
- The post-processor prepends `<s>` when add_special_tokens=True (what `encode_prompt`
  relies on); `<mask>` is reserved for rationale masking.
- `chat=True` (chat and think prompt templates) adds a ChatML chat template, the format of
  SmolLM2-Instruct and Qwen2.5 (`<|im_start|>role\ncontent<|im_end|>\n`), without their
  default system message (a constant ~20-token prefix a tiny model would pay on every row):
  `<|im_start|>` and `<|im_end|>` become special tokens, `<|im_end|>` the EOS (so generation
  stops at the end of the assistant turn), and `<think>` / `</think>` plain added tokens (one id
  each, kept when decoding), after BPE training (the last 4 ids). A plain-template run trains
  without them, so its tokenizer, and the tiny model sized to it, are unchanged.
"""

from __future__ import annotations

import string
from collections.abc import Iterable

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

PAD, BOS, EOS, UNK, MASK = "<pad>", "<s>", "</s>", "<unk>", "<mask>"
SPECIAL_TOKENS = [PAD, BOS, EOS, UNK, MASK]  # ids 0..4 in this order
# A word with at most one leading space | one digit | one whitespace char | one other char.
_PIECES = Regex(r" ?\p{L}+|\p{N}|\s|[^\s\p{L}\p{N}]")
_ALPHABET = sorted(set(string.printable) - set("\x0b\x0c\r"))

IM_START, IM_END, THINK, END_THINK = "<|im_start|>", "<|im_end|>", "<think>", "</think>"
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
_CHATML_TEXT = "system\nuser\nassistant\n"  # the role names, so BPE merges them


def train_tokenizer(
    texts: Iterable[str], vocab_size: int, model_max_length: int = 2048, chat: bool = False
) -> PreTrainedTokenizerFast:
    """Train a BPE tokenizer on `texts`. The vocabulary is at least the alphabet plus the 5
    special tokens (about 102 ids), even when `vocab_size` asks for fewer; `chat` adds the
    ChatML template and its 4 tokens on top."""
    if chat:
        texts = [_CHATML_TEXT, *texts]
    tok = Tokenizer(models.BPE(unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(_PIECES, behavior="isolated"),
            pre_tokenizers.Digits(individual_digits=True),  # explicit, though _PIECES already does it
        ]
    )
    tok.decoder = decoders.Fuse()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, initial_alphabet=_ALPHABET, show_progress=False
    )
    tok.train_from_iterator(texts, trainer)
    if chat:
        tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in (IM_START, IM_END)])
        tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in (THINK, END_THINK)])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS,
        eos_token=IM_END if chat else EOS,
        pad_token=PAD,
        unk_token=UNK,
        mask_token=MASK,
        add_bos_token=True,  # transformers builds the "<s> $A" post-processor and saves the flag
        model_max_length=model_max_length,
        clean_up_tokenization_spaces=False,
        padding_side="right",
        **({"chat_template": CHATML_TEMPLATE} if chat else {}),
    )
