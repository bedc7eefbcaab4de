"""`tokenizer` stage: train a small BPE tokenizer on a data stage's text (no network).

Output: out_dir/tokenizer (save_pretrained; AutoTokenizer.from_pretrained loads it),
written atomically. See models/tokenizer.py for the tokenizer's design. `template` is the
prompt template the models using it will be trained with: its fixed strings are merged, and
a chat template (chat, think) gives the tokenizer a ChatML chat template and its tokens.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from pydantic import Field

from reasondistill.artifacts import TOKENIZER_DIR, Artifact
from reasondistill.config import Ref
from reasondistill.errors import ReasonDistillError
from reasondistill.records import read_jsonl
from reasondistill.stages.base import STAGES, Stage, StageConfig, StageContext
from reasondistill.traces.templates import TemplateConfig, build_template, template_field


class TokenizerConfig(StageConfig):
    kind: Literal["tokenizer"]
    data: Ref(Artifact.EXAMPLES)  # every <split>.jsonl of it is read
    vocab_size: int = Field(128, ge=16, description="target size; at least the ~102-symbol alphabet")
    model_max_length: int = Field(2048, ge=16)
    template: TemplateConfig = template_field(
        "the prompt template it will encode (chat, think: a ChatML tokenizer)"
    )


def example_texts(data_dir: Path) -> Iterator[str]:
    """Question, rationale and answer of every example in the data stage's split files.

    All splits are read (vocabulary only: which character pairs get merged)."""
    files = sorted(p for p in data_dir.glob("*.jsonl") if p.name.count(".") == 1)  # <split>.jsonl only
    if not files:
        raise ReasonDistillError(f"tokenizer: no <split>.jsonl files in {data_dir}")
    for f in files:
        for row in read_jsonl(f):
            for key in ("question", "rationale", "answer"):
                if row.get(key):
                    yield str(row[key])


class TokenizerStage(Stage):
    Config = TokenizerConfig
    produces = frozenset({Artifact.TOKENIZER})

    def run(self, ctx: StageContext) -> dict:
        from reasondistill.models.tokenizer import train_tokenizer  # lazy: imports transformers

        cfg: TokenizerConfig = ctx.cfg
        texts = list(example_texts(ctx.path(cfg.data)))
        if not texts:
            raise ReasonDistillError(f"tokenizer: the data stage {cfg.data!r} has no example text")
        template = build_template(cfg.template)
        # The template's fixed strings first, so their merges exist even if the examples' own
        # text never contains them.
        tok = train_tokenizer(
            [template.fixed_text, *texts], cfg.vocab_size, cfg.model_max_length, chat=template.chat
        )
        final, tmp = ctx.out_dir / TOKENIZER_DIR, ctx.out_dir / f"{TOKENIZER_DIR}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tok.save_pretrained(str(tmp))
        shutil.rmtree(final, ignore_errors=True)  # only a finished earlier attempt leaves one
        os.replace(tmp, final)
        return {"vocab_size": len(tok), "texts": len(texts)}


STAGES.register("tokenizer", TokenizerStage, description="train a small BPE tokenizer on a data stage's text (no network)")
