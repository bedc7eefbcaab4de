"""Typed artifacts: what a stage writes, under which file names, and how a later stage reads it.

A stage kind declares the artifacts it `produces`; a reference field declares the artifacts it
`accepts` (`Ref(Artifact.ROWS)` in config.py), and the planner refuses a reference to a stage
that produces none of them before any work starts. Every file name of a stage directory lives
here, beside its reader, so stages never spell `"rows.jsonl"` themselves.

This module is part of the bottom layer (records, errors): it imports no stage and no torch.
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Any

from reasondistill.errors import ReasonDistillError
from reasondistill.records import Example, PreferenceRow, Trace, read_jsonl, read_records


class Artifact(StrEnum):
    """An artifact kind. The value is what errors and `reasondistill list` print."""

    EXAMPLES = "examples"  # <split>.jsonl of Example + task.json (a data stage)
    TOKENIZER = "tokenizer"  # tokenizer/ (save_pretrained)
    ROWS = "rows"  # rows.jsonl of TRL prompt/completion rows (text or chat messages)
    PREFERENCES = "preferences"  # rows.jsonl of TRL prompt/chosen/rejected rows
    TRACES = "traces"  # traces.jsonl of Trace
    MODEL = "model"  # model/ (a Hugging Face directory) (+ adapter/ for LoRA)
    LOGIT_CACHE = "logit_cache"  # cache/ + tokenizer/ + kd_cache.json
    METRICS = "metrics"  # metrics.json in the shared shape (see `read_metrics`)
    REPORT = "report"  # results.json / results.md / PNG charts


# File and directory names inside a stage directory.
TASK_FILE = "task.json"
ROWS_FILE = "rows.jsonl"
TRACES_FILE = "traces.jsonl"
MODEL_DIR = "model"
ADAPTER_DIR = "adapter"
TOKENIZER_DIR = "tokenizer"
CACHE_DIR = "cache"
CACHE_META = "kd_cache.json"
METRICS_FILE = "metrics.json"
PREDICTIONS_FILE = "predictions.jsonl"
RESULTS_FILE = "results.json"


def examples_file(stage_dir: Path, split: str) -> Path:
    return Path(stage_dir) / f"{split}.jsonl"


def read_examples(stage_dir: Path, split: str, limit: int | None = None) -> list[Example]:
    """The first `limit` examples (None: all) of `split`; an unknown split lists the present ones."""
    path = examples_file(stage_dir, split)
    if not path.is_file():
        present = sorted(p.stem for p in Path(stage_dir).glob("*.jsonl"))
        raise ReasonDistillError(
            f"no split {split!r} in {stage_dir}; available: {', '.join(present) or 'none'}"
        )
    return read_records(path, Example, limit=limit)


def read_rows(stage_dir: Path, who: str, limit: int | None = None) -> list[dict]:
    """Training rows (prompt/completion or prompt/chosen/rejected) of a stage, first `limit`.

    `who` names the reading stage in errors ("train stage 'student'")."""
    path = Path(stage_dir) / ROWS_FILE
    if not path.is_file():
        raise ReasonDistillError(f"{who}: {stage_dir} holds no {ROWS_FILE}")
    rows = list(read_jsonl(path))
    if limit is not None:
        if len(rows) < limit:
            raise ReasonDistillError(f"{who}: max_rows={limit} but {path} has only {len(rows)} rows")
        rows = rows[:limit]
    if not rows:
        raise ReasonDistillError(f"{who}: {path} has no rows")
    return rows


def read_preferences(stage_dir: Path, who: str, limit: int | None = None) -> list[PreferenceRow]:
    """Preference rows of a stage, validated (chosen != rejected), first `limit`."""
    out = []
    for i, row in enumerate(read_rows(stage_dir, who, limit)):
        try:
            out.append(PreferenceRow.model_validate(row))
        except ValueError as e:
            raise ReasonDistillError(f"{who}: {Path(stage_dir) / ROWS_FILE} row {i + 1}: {e}") from None
    return out


def traces_file(stage_dir: Path) -> Path:
    return Path(stage_dir) / TRACES_FILE


def read_traces(stage_dir: Path) -> list[Trace]:
    path = traces_file(stage_dir)
    if not path.is_file():
        raise ReasonDistillError(f"{stage_dir} holds no {TRACES_FILE}")
    return read_records(path, Trace)


def model_dir(stage_dir: Path) -> Path:
    """The Hugging Face directory a training (or merge) stage wrote."""
    return Path(stage_dir) / MODEL_DIR


def tokenizer_dir(stage_dir: Path) -> Path:
    """A stage's tokenizer: tokenizer/ (tokenizer and kd_cache stages) or else its model/."""
    for sub in (TOKENIZER_DIR, MODEL_DIR):
        if (Path(stage_dir) / sub).is_dir():
            return Path(stage_dir) / sub
    raise ReasonDistillError(f"{stage_dir} has neither {TOKENIZER_DIR}/ nor {MODEL_DIR}/")


def read_metrics(stage_dir: Path) -> dict[str, dict[str, Any]]:
    """The shared metrics shape: {group: {metric: value, ...}}.

    A group is a split (evaluate: {"test_id": {"accuracy": .., "ci_low": .., "ci_high": .., "n": ..}})
    or any named row of an analysis table. A metric `m` may come with `m_ci_low`/`m_ci_high`
    (or, for `accuracy`, `ci_low`/`ci_high`); reports tabulate, contrast and plot any of them.
    """
    path = Path(stage_dir) / METRICS_FILE
    if not path.is_file():
        raise ReasonDistillError(f"{stage_dir} holds no {METRICS_FILE}")
    return json.loads(path.read_text(encoding="utf-8"))
