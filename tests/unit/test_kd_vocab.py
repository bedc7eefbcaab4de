"""Teacher/student vocabulary compatibility for white-box KD (reasondistill/kd/vocab.py)."""

from __future__ import annotations

import pytest
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from reasondistill.errors import ReasonDistillError
from reasondistill.kd import check_vocab_compat
from tests.unit.helpers_tiny import tiny_tokenizer

WORDS = ["[UNK]", "question", "answer", "wait", "let", "me", "check", "12", "7", "19", ":", "+", "?", "."]


def word_tokenizer(words=WORDS, lowercase=False, extra_special=()) -> PreTrainedTokenizerFast:
    """A word-level tokenizer built locally (no hub)."""
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    if lowercase:
        tok.normalizer = normalizers.Lowercase()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]")
    if extra_special:
        fast.add_special_tokens({"additional_special_tokens": list(extra_special)})
    return fast


def test_same_tokenizer_with_padded_embedding_rows_slices_to_real_vocab():
    # Like 151936 vs 152064 rows in one model family: both >= len(tokenizer).
    assert check_vocab_compat(word_tokenizer(), word_tokenizer(), 16, 24) == len(WORDS)
    bpe = tiny_tokenizer()
    assert check_vocab_compat(bpe, tiny_tokenizer(), len(bpe), len(bpe) + 64) == len(bpe)


def test_different_vocabularies_fail_with_one_message_naming_both():
    swapped = WORDS.copy()
    swapped[1], swapped[2] = swapped[2], swapped[1]
    with pytest.raises(ReasonDistillError) as e:
        check_vocab_compat(word_tokenizer(), word_tokenizer(swapped), 16, 16)
    msg = str(e.value)
    assert "teacher vocabulary: 14 tokens, 16 logit rows" in msg and "student vocabulary: 14 tokens" in msg
    assert "id 1: teacher 'question' vs student 'answer'" in msg
    assert "\n" not in msg


def test_added_tokens_count():
    with pytest.raises(ReasonDistillError, match="student vocabulary: 15 tokens") as e:
        check_vocab_compat(word_tokenizer(), word_tokenizer(extra_special=["<think>"]), 16, 16)
    assert "id 14: teacher None vs student '<think>'" in str(e.value)


def test_same_vocabulary_different_tokenization_fails():
    with pytest.raises(ReasonDistillError, match="tokenize .* differently"):
        check_vocab_compat(word_tokenizer(), word_tokenizer(lowercase=True), 16, 16)


@pytest.mark.parametrize(("teacher_rows", "student_rows", "who"), [(10, 16, "teacher"), (16, 13, "student")])
def test_tokenizer_longer_than_embedding_fails(teacher_rows, student_rows, who):
    with pytest.raises(
        ReasonDistillError, match=f"the {who} model has .* logit rows but its tokenizer has ids up to 13"
    ):
        check_vocab_compat(word_tokenizer(), word_tokenizer(), teacher_rows, student_rows)
