"""`hf` teacher: sample from a local Hugging Face causal LM (batched, KV cache).

Batches have fixed boundaries over the example list and each batch's sampling seed is
derived from the stage seed and the batch's first example index. A batch with any
(example, sample) missing from the store is regenerated whole and only the missing traces
are written, so a run resumed after a kill produces exactly the traces of an uninterrupted
run.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from reasondistill.config import ModelSource, StageContext
from reasondistill.records import Example
from reasondistill.teachers.base import TEACHERS, Teacher, TeacherConfig, Verify
from reasondistill.traces.store import TraceStore
from reasondistill.traces.templates import check_trained_template


class HFConfig(TeacherConfig):
    kind: Literal["hf"]
    model: ModelSource
    temperature: float = Field(1.0, ge=0, description="0 = greedy")
    top_p: float = Field(1.0, gt=0, le=1)
    max_new_tokens: int = Field(256, ge=1)
    batch_size: int = Field(32, ge=1, description="sequences per generate call (examples x n)")
    seed: int | None = None  # None: the stage seed

    @model_validator(mode="after")
    def _greedy_single(self):
        if self.temperature == 0 and self.n > 1:
            raise ValueError("temperature 0 (greedy) gives n identical samples; use n: 1 or temperature > 0")
        return self


def batch_seed(seed: int, first_index: int) -> int:
    """Sampling seed of the batch starting at example `first_index` (independent of resume)."""
    return seed * 1_000_003 + first_index


class HFTeacher(Teacher):
    Config = HFConfig
    any_prompt = True

    def __init__(self, cfg: HFConfig, ctx: StageContext | None = None, model=None, tokenizer=None) -> None:
        super().__init__(cfg, ctx)
        self.model, self.tokenizer = model, tokenizer  # tests inject these; otherwise loaded on use

    @property
    def name(self) -> str:
        m = self.cfg.model
        return f"hf:{m.stage or m.path or m.pretrained}"

    def _load(self) -> None:
        if self.model is None:
            from reasondistill.evaluate.generate import default_device
            from reasondistill.models.load import load_model

            if self.ctx is None:
                raise ValueError("HFTeacher needs a StageContext (or a model) to resolve its model")
            path = self.cfg.model.resolve(self.ctx)
            check_trained_template(path, self.cfg.template, f"hf teacher {self.name!r}")
            self.model, self.tokenizer = load_model(path, device=default_device())
            self.template.check_tokenizer(self.tokenizer)
        self.model.eval()

    def generate(self, examples: list[Example], store: TraceStore, verify: Verify) -> None:
        from reasondistill.evaluate.generate import generate_batch  # torch: imported when sampling
        from reasondistill.models.tokenize import encode_prompt

        cfg = self.cfg
        seed = cfg.seed if cfg.seed is not None else (self.ctx.cfg.seed if self.ctx else 0)
        per_batch = max(1, cfg.batch_size // cfg.n)  # examples per call; each contributes n rows
        for start in range(0, len(examples), per_batch):
            batch = examples[start : start + per_batch]
            if all(store.has(ex.id, s) for ex in batch for s in range(cfg.n)):
                continue
            self._load()
            prompts = [self.template.prompt(ex.question) for ex in batch]
            gens = generate_batch(
                self.model,
                self.tokenizer,
                [encode_prompt(self.tokenizer, p) for p in prompts],
                max_new_tokens=cfg.max_new_tokens,
                temperature=cfg.temperature,
                top_p=cfg.top_p,
                num_return_sequences=cfg.n,
                seed=batch_seed(seed, start),
            )
            traces = []
            for i, (ex, prompt) in enumerate(zip(batch, prompts, strict=True)):
                for s in range(cfg.n):
                    if store.has(ex.id, s):
                        continue
                    g = gens[i * cfg.n + s]
                    usage = {"prompt_tokens": g.prompt_tokens, "completion_tokens": g.num_tokens}
                    error = None if g.finished else f"truncated at max_new_tokens={cfg.max_new_tokens}"
                    traces.append(self.make_trace(ex, s, prompt, g.text, verify, usage=usage, error=error))
            store.append(traces)  # written as soon as the batch is done: a kill loses at most one batch


TEACHERS.register("hf", HFTeacher, description="sample from a local Hugging Face causal LM (batched, resumable)")
