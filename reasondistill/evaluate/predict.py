"""Predict-and-score one split: greedy (or sampled) generation, answer extraction, verdicts.

Label-first mode (arXiv 2406.14511, Sec. 4) stops each generation at the end of the answer
line (`ANSWER_STOP`): a student trained with the rationale *after* the label is scored with
no test-time reasoning, and its generated-token count shows the saving.

Rows are appended per batch to a partial file so an interrupted evaluation resumes; batch
boundaries are fixed over the split, so a resumed run regenerates exactly the batches it
lost.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from reasondistill.evaluate.generate import generate_batch
from reasondistill.models.tokenize import encode_prompt
from reasondistill.records import Example, JsonlAppender, read_jsonl
from reasondistill.traces.format import ANSWER_STOP, extract_answer, render_prompt


def predict_split(
    model,
    tokenizer,
    examples: list[Example],
    verify: Callable[[Example, str], bool],
    *,
    split: str,
    partial_path: str | Path,
    batch_size: int = 64,
    max_new_tokens: int = 64,
    label_first: bool = False,
    temperature: float = 0.0,
    seed: int = 0,
) -> list[dict]:
    """Prediction rows for `examples`, in their order, resuming from `partial_path`.

    Row: {example_id, split, prediction, answer, gold, correct, generated_tokens}.
    """
    partial_path = Path(partial_path)
    done = {r["example_id"]: r for r in read_jsonl(partial_path)} if partial_path.exists() else {}
    with JsonlAppender(partial_path) as out:
        for start in range(0, len(examples), batch_size):
            batch = examples[start : start + batch_size]
            if all(ex.id in done for ex in batch):
                continue
            gens = generate_batch(
                model,
                tokenizer,
                [encode_prompt(tokenizer, render_prompt(ex.question)) for ex in batch],
                max_new_tokens=max_new_tokens,
                temperature=temperature,
                stop=ANSWER_STOP if label_first else None,
                seed=seed * 1_000_003 + start,
            )
            for ex, g in zip(batch, gens, strict=True):
                if ex.id in done:
                    continue
                answer = extract_answer(g.text)
                row = {
                    "example_id": ex.id,
                    "split": split,
                    "prediction": g.text,
                    "answer": answer,
                    "gold": ex.answer,
                    "correct": answer is not None and bool(verify(ex, answer)),
                    "generated_tokens": g.num_tokens,
                }
                out.write(row)
                done[ex.id] = row
    return [done[ex.id] for ex in examples]
