"""Predict-and-score one split: greedy (or sampled) generation, answer extraction, verdicts.

Prompts are rendered and answers parsed by the prompt template the model was trained with
(traces/templates). Label-first mode (arXiv 2406.14511, Sec. 4) stops each generation at the
template's stop string, the end of the answer line: a student trained with the rationale
*after* the label is scored with no test-time reasoning, and its generated-token count shows
the saving.

Rows are appended per batch to a partial file so an interrupted evaluation resumes; batch
boundaries are fixed over the split, so a resumed run regenerates exactly the batches it
lost.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from reasondistill.evaluate.generate import generate_batch
from reasondistill.progress import item_bar
from reasondistill.records import Example, JsonlAppender, read_jsonl
from reasondistill.traces.templates import Template
from reasondistill.traces.templates.plain import PlainTemplate


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
    template: Template | None = None,
) -> list[dict]:
    """Prediction rows for `examples`, in their order, resuming from `partial_path`.

    Row: {example_id, split, prediction, answer, gold, correct, generated_tokens}.
    `template`: None is plain.
    """
    template = template or PlainTemplate()
    if label_first and template.stop is None:
        raise ValueError(f"template {template.kind!r} has no label-first form")
    template.check_tokenizer(tokenizer)
    partial_path = Path(partial_path)
    # The partial file is this function's own, resumable: a torn last row is a killed write.
    done = {r["example_id"]: r for r in read_jsonl(partial_path, torn_tail_ok=True)} if partial_path.exists() else {}
    already = sum(ex.id in done for ex in examples)
    bar = item_bar(len(examples), f"evaluate {split}", "example", initial=already)
    with JsonlAppender(partial_path) as out, bar:
        for start in range(0, len(examples), batch_size):
            batch = examples[start : start + batch_size]
            if all(ex.id in done for ex in batch):
                continue
            gens = generate_batch(
                model,
                tokenizer,
                [template.encode_prompt(tokenizer, ex.question) for ex in batch],
                max_new_tokens=max_new_tokens,
                temperature=temperature,
                stop=template.stop if label_first else None,
                seed=seed * 1_000_003 + start,
            )
            for ex, g in zip(batch, gens, strict=True):
                if ex.id in done:
                    continue
                answer = template.parse(g.text)[1]
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
                bar.update(1)
    return [done[ex.id] for ex in examples]
