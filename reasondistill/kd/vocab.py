"""Start-up check that a teacher/student pair can do white-box KD (token-level logit matching).

Token-level KD compares the teacher's and the student's distributions id by id, so both must
mean the same token by the same id. Models of one family often share the tokenizer but pad
their embedding matrices differently (e.g. 151936 vs 152064 rows): the padded rows are not
tokens, so logits are sliced to the real vocabulary. Anything else fails here, with one message
naming both vocabularies, instead of as a shape error (or silent garbage) mid-training.
"""

from __future__ import annotations

from reasondistill.errors import ReasonDistillError

# Tokenized by both tokenizers: same vocabulary but different merges / normalisation /
# pre-tokenisation would make the teacher score token sequences it never produces.
_PROBES = (
    "Question: what is 12 + 7?\nReasoning: 12 plus 7 is 19.\nAnswer: 19",
    "  Wait, let me check: reverse 'abc' -> 'cba'. Now I see!\t{x: [1, 2, 3]}",
)


def _id_to_token(vocab: dict[str, int]) -> dict[int, str]:
    return {i: t for t, i in vocab.items()}


def _first_differences(teacher: dict[str, int], student: dict[str, int], n: int = 5) -> str:
    t_by_id, s_by_id = _id_to_token(teacher), _id_to_token(student)
    diffs = []
    for i in sorted(set(t_by_id) | set(s_by_id)):
        if t_by_id.get(i) != s_by_id.get(i):
            diffs.append(f"id {i}: teacher {t_by_id.get(i)!r} vs student {s_by_id.get(i)!r}")
            if len(diffs) == n:
                break
    return "; ".join(diffs)


def check_vocab_compat(
    teacher_tokenizer, student_tokenizer, teacher_vocab_rows: int, student_vocab_rows: int
) -> int:
    """The real vocabulary size V to slice both models' logits to (`logits[..., :V]`).

    teacher_tokenizer / student_tokenizer: HF tokenizers (get_vocab(), encode(), len()).
    *_vocab_rows: rows of each model's output embedding (logits.shape[-1]), which may exceed
    the tokenizer's size by padding. Raises ReasonDistillError unless both tokenizers map the
    same tokens to the same ids (added tokens included), tokenize text identically, and both
    embedding matrices have a row for every id.
    """
    t_vocab, s_vocab = teacher_tokenizer.get_vocab(), student_tokenizer.get_vocab()
    t_size, s_size = len(teacher_tokenizer), len(student_tokenizer)
    described = (
        f"teacher vocabulary: {t_size} tokens, {teacher_vocab_rows} logit rows; "
        f"student vocabulary: {s_size} tokens, {student_vocab_rows} logit rows"
    )
    if t_vocab != s_vocab or t_size != s_size:
        raise ReasonDistillError(
            "white-box KD needs the teacher and the student to share one tokenizer, but their "
            f"vocabularies differ ({described}); first differences: {_first_differences(t_vocab, s_vocab)}"
        )
    for text in _PROBES:
        t_ids = teacher_tokenizer.encode(text, add_special_tokens=False)
        s_ids = student_tokenizer.encode(text, add_special_tokens=False)
        if t_ids != s_ids:
            raise ReasonDistillError(
                f"teacher and student tokenizers have the same vocabulary ({described}) but tokenize "
                f"{text!r} differently: teacher {t_ids[:12]}... vs student {s_ids[:12]}...; white-box KD "
                "needs one tokenizer"
            )
    # Ids may be sparse in principle; the logits must cover the largest one.
    real = max(t_size, max(t_vocab.values(), default=-1) + 1)
    for who, rows in (("teacher", teacher_vocab_rows), ("student", student_vocab_rows)):
        if rows < real:
            raise ReasonDistillError(
                f"the {who} model has {rows} logit rows but its tokenizer has ids up to {real - 1} "
                f"({described}): tokenizer and model do not belong together"
            )
    return real
