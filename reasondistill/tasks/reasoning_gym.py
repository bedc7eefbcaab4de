"""`reasoning_gym`: any reasoning-gym dataset (open-thought/reasoning-gym) as a task.

Items: reasoning-gym datasets of fixed `size` build item `idx` from `Random(seed + idx)`, and
some (acre) pre-generate all `size` items from the seed, so an item depends on `size` too.
We therefore cut each split into chunks of CHUNK items: item i is entry `i % CHUNK` of the
dataset created with size=CHUNK and a seed derived from (stage seed, split, i // CHUNK).

Verification departs from reasoning-gym's default `score_answer`, which gives partial credit
(len(oracle) / len(answer)) when the oracle is a substring: only a score of exactly 1.0 is
correct, and an answer that wraps the gold answer in extra words is wrong even where a
dataset's scorer accepts it. `score_answer` reads the entry's metadata, which JSON does not store faithfully
(tuples come back as lists, so arc_agi / rearc boards never compare equal). `verify`
therefore regenerates the original entry from the provenance in the example's metadata and
falls back to the stored JSON copy only when the regenerated question differs (a different
reasoning-gym version).
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import itertools
import json
from collections.abc import Iterator
from typing import Any

from pydantic import Field, ValidationInfo, field_validator

from reasondistill.errors import ReasonDistillError
from reasondistill.records import Example
from reasondistill.tasks.base import TASKS, Task, TaskConfig, item_seed

CHUNK = 500  # reasoning-gym's default dataset size


def _registry() -> dict[str, tuple[type, type]]:
    from reasoning_gym.factory import DATASETS  # importing reasoning_gym registers them all

    return DATASETS


@functools.lru_cache(maxsize=32)
def _dataset(name: str, cfg_json: str, seed: int) -> Any:
    """A reasoning-gym dataset of CHUNK items (cached: some load word lists or ARC files)."""
    from reasoning_gym import create_dataset

    return create_dataset(name, **json.loads(cfg_json), seed=seed, size=CHUNK)


@functools.lru_cache(maxsize=4096)
def _entry(name: str, cfg_json: str, seed: int, index: int) -> dict[str, Any]:
    return _dataset(name, cfg_json, seed)[index]


def _jsonable(x: Any) -> Any:
    return json.loads(json.dumps(x, default=str))


def _embeds_gold(answer: str, gold: str) -> bool:
    """The gold answer with extra words around it ("The answer is 83.", "83 or 84").

    Some reasoning-gym scorers give full credit to these (gsm_symbolic takes the first
    number, game_of_life_halting looks for the word); rejection sampling must not.
    Same-word variants ("1000.00" for "1000") are left to the dataset's own scorer.
    """
    a, g = answer.strip(), gold.strip()
    return a != g and g in a and len(a.split()) > len(g.split())


class ReasoningGymConfig(TaskConfig):
    dataset: str = Field(description="a reasoning-gym dataset name, e.g. chain_sum")
    config: dict[str, Any] = Field(
        default_factory=dict,
        validate_default=True,  # so an omitted config still checks the dataset has gold answers
        description="the dataset's config fields; seed and size are set by us",
    )

    @field_validator("dataset")
    @classmethod
    def _known(cls, v: str) -> str:
        names = sorted(_registry())
        if v not in names:
            near = difflib.get_close_matches(v, names, n=5) or names[:8]
            raise ValueError(
                f"unknown reasoning_gym dataset {v!r}; e.g. {', '.join(near)} ({len(names)} in all)"
            )
        return v

    @field_validator("config")
    @classmethod
    def _valid_for_dataset(cls, v: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        name = info.data.get("dataset")
        if name is None:  # the dataset name itself failed; that error is reported
            return v
        config_cls = _registry()[name][1]
        fields = [f.name for f in dataclasses.fields(config_cls) if f.name not in ("seed", "size")]
        for key in v:
            if key in ("seed", "size"):
                raise ValueError(f"{key!r} is set by reasondistill (from the stage seed); remove it")
            if key not in fields:
                raise ValueError(f"unknown key {key!r} for {name}; allowed: {', '.join(fields)}")
        try:
            entry = _entry(name, json.dumps(v, sort_keys=True), 0, 0)
        except Exception as e:  # reasoning-gym validates with bare asserts
            raise ValueError(f"rejected by reasoning_gym dataset {name}: {e or type(e).__name__}") from None
        if not isinstance(entry.get("answer"), str):
            raise ValueError(
                f"reasoning_gym dataset {name} has no single reference answer (answer is "
                f"{type(entry.get('answer')).__name__}; it scores with a checker), so it cannot supply gold answers"
            )
        return v


class ReasoningGymTask(Task):
    """Adapter: question/answer from the entry, its metadata kept for exact scoring."""

    name = "reasoning_gym"
    Config = ReasoningGymConfig

    @property
    def _cfg_json(self) -> str:
        return json.dumps(self.config.config, sort_keys=True)

    def difficulty(self) -> dict[str, Any]:
        return _jsonable(self.config.config)

    def example(self, split: str, index: int, seed: int) -> Example:
        chunk_seed = item_seed(seed, split, index // CHUNK) % 2**31  # some datasets seed numpy
        entry = _entry(self.config.dataset, self._cfg_json, chunk_seed, index % CHUNK)
        if not isinstance(entry.get("answer"), str):
            raise ReasonDistillError(
                f"task reasoning_gym: {self.config.dataset} item {index} of {split!r} has no string answer"
            )
        rationale = entry.get("rationale")
        return self.item(
            split,
            index,
            entry["question"],
            entry["answer"],
            rationale if isinstance(rationale, str) else None,
            {
                "source": f"reasoning_gym:{self.config.dataset}",
                "index": index,
                "seed": seed,
                "difficulty": self.difficulty(),
                "rg_dataset": self.config.dataset,
                "rg_seed": chunk_seed,
                "rg_index": index % CHUNK,
                "rg_metadata": _jsonable(entry.get("metadata", {})),
            },
        )

    def examples(self, split: str, n: int | None, seed: int) -> Iterator[Example]:
        for i in itertools.count() if n is None else range(n):
            yield self.example(split, i, seed)

    def _scoring_entry(self, example: Example) -> tuple[Any, dict[str, Any]]:
        """(dataset whose score_answer to use, the entry as generated)."""
        m = example.metadata
        name = m.get("rg_dataset", self.config.dataset)
        cfg_json = json.dumps(m.get("difficulty", self.config.config), sort_keys=True)
        if "rg_seed" in m and "rg_index" in m:
            try:
                entry = _entry(name, cfg_json, m["rg_seed"], m["rg_index"])
                if entry["question"] == example.question:
                    return _dataset(name, cfg_json, m["rg_seed"]), entry
            except Exception:  # fall back to the stored copy below
                pass
        stored = {
            "question": example.question,
            "answer": example.answer,
            "metadata": m.get("rg_metadata", {}),
        }
        return _dataset(name, cfg_json, 0), stored

    def verify(self, example: Example, answer: str | None) -> bool:
        if answer is None or not answer.strip() or _embeds_gold(answer, example.answer):
            return False
        ds, entry = self._scoring_entry(example)
        # Stripped too: extracted answers often carry a newline; gold answers may have
        # meaningful outer whitespace, so the raw string is tried first.
        for candidate in dict.fromkeys([answer, answer.strip()]):
            try:
                if ds.score_answer(candidate, entry) == 1.0:
                    return True
            except Exception:  # a malformed answer can crash a scorer: it is wrong
                continue
        return False


TASKS.register("reasoning_gym", ReasoningGymTask, description="any reasoning-gym dataset, scored exactly (no partial credit)")
