"""The `tokenizer` and `sft` stage kinds: config validation and runs on tiny inputs."""

from __future__ import annotations

import json

import pytest
import torch
from pydantic import ValidationError
from transformers import AutoModelForCausalLM, AutoTokenizer

from reasondistill.errors import ReasonDistillError
from reasondistill.records import Example, write_jsonl_atomic
from reasondistill.stages import STAGES, StageContext
from reasondistill.stages.sft import SFTStage, SFTStageConfig
from reasondistill.stages.tokenizer import TokenizerConfig, TokenizerStage

TINY = {"tiny": {"arch": "qwen2", "hidden_size": 32, "num_layers": 2, "num_heads": 4}, "tokenizer": "tok"}
TRAIN = {
    "max_steps": 4,
    "per_device_batch_size": 4,
    "warmup_steps": 0,
    "save_every": 2,
    "progress_bar": False,
}


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)  # see test_models.py
    yield
    torch.set_num_threads(n)


def examples(split: str, n: int) -> list[Example]:
    return [
        Example(
            id=f"{split}-{i}",
            task="add",
            question=f"What is {i}+{i + 1}?",
            answer=str(2 * i + 1),
            rationale=f"{i}+{i + 1}={2 * i + 1}",
            split=split,
            metadata={"index": i},
        )  # fmt: skip
        for i in range(n)
    ]


@pytest.fixture
def dirs(tmp_path):
    d = {n: tmp_path / n for n in ("data", "tok", "rows", "student", "student2")}
    d["data"].mkdir()
    write_jsonl_atomic(d["data"] / "train.jsonl", examples("train", 20))
    write_jsonl_atomic(d["data"] / "test.jsonl", examples("test", 5))
    d["rows"].mkdir()
    rows = [{"prompt": f"Question: {e.question}\n", "completion": f"Reasoning: {e.rationale}\nAnswer: {e.answer}",
             "example_id": e.id} for e in examples("train", 20)]  # fmt: skip
    write_jsonl_atomic(d["rows"] / "rows.jsonl", rows)
    return d


def ctx(name: str, cfg, dirs) -> StageContext:
    dirs[name].mkdir(exist_ok=True)
    return StageContext(name, cfg, dirs[name], {}, dirs)


def sft_cfg(**kw) -> SFTStageConfig:
    return SFTStageConfig.model_validate(
        {"kind": "sft", "rows": "rows", "model": TINY, "train": TRAIN, "seed": 1, **kw}
    )


def test_registered():
    assert STAGES.get("sft") is SFTStage and STAGES.get("tokenizer") is TokenizerStage
    assert SFTStage.distributed and not TokenizerStage.distributed


@pytest.mark.parametrize(
    "model, message",
    [
        ({"tiny": {"arch": "llama"}}, "`tiny` needs `tokenizer"),
        ({}, "exactly one of `tiny`"),
        ({"path": "/x", "stage": "s"}, "got stage, path"),
        ({"path": "/x", "tokenizer": "tok"}, "only used with `tiny`"),
        ({"tiny": {"arch": "gpt9"}, "tokenizer": "tok"}, "'llama' or 'qwen2'"),
    ],
)
def test_model_source_validation(model, message):
    with pytest.raises(ValidationError, match=message):
        SFTStageConfig.model_validate({"kind": "sft", "rows": "rows", "model": model})


def test_other_validation():
    with pytest.raises(ValidationError, match="exceeds model.tiny.max_position_embeddings"):
        sft_cfg(train={"max_length": 1024})
    with pytest.raises(ValidationError, match="Extra inputs"):
        sft_cfg(train={"learning_rate": 1e-3})
    assert sft_cfg(lora={"r": 4}).lora.target_modules == "all-linear"


def test_tokenizer_stage(dirs):
    cfg = TokenizerConfig(kind="tokenizer", data="data", vocab_size=120)
    summary = TokenizerStage().run(ctx("tok", cfg, dirs))
    tok = AutoTokenizer.from_pretrained(dirs["tok"] / "tokenizer")
    assert summary["vocab_size"] == len(tok) and summary["texts"] == 75
    text = "Question: What is 12+13?\nReasoning: 12+13=25\nAnswer: 25"
    assert tok.decode(tok(text)["input_ids"], skip_special_tokens=True) == text
    assert not (dirs["tok"] / "tokenizer.tmp").exists()
    empty = TokenizerConfig(kind="tokenizer", data="rows")
    with pytest.raises(ReasonDistillError, match="no <split>.jsonl"):
        TokenizerStage().run(ctx("tok", empty.model_copy(update={"data": "student"}), dirs))


def test_sft_stage_tiny_then_continue_then_lora(dirs):
    TokenizerStage().run(ctx("tok", TokenizerConfig(kind="tokenizer", data="data"), dirs))
    summary = SFTStage().run(ctx("student", sft_cfg(max_rows=16), dirs))
    assert summary["steps"] == 4 and summary["rows"] == 16
    model = AutoModelForCausalLM.from_pretrained(dirs["student"] / "model")
    assert model.config.model_type == "qwen2"
    # continue from the first student's weights, with LoRA; the stage seed seeds the data order
    cont = sft_cfg(model={"stage": "student"}, lora={"r": 4, "alpha": 8})
    summary = SFTStage().run(ctx("student2", cont, dirs))
    assert summary["trainable_params"] < summary["params"]
    assert (dirs["student2"] / "adapter" / "adapter_config.json").exists()
    state = json.loads((dirs["student2"] / "train_state.json").read_text())
    assert state["steps"] == 4


def test_sft_stage_input_errors(dirs):
    with pytest.raises(ReasonDistillError, match="max_rows=50 but .*rows.jsonl has only 20 rows"):
        SFTStage().run(ctx("student", sft_cfg(max_rows=50), dirs))
    with pytest.raises(ReasonDistillError, match="holds no rows.jsonl"):
        SFTStage().run(ctx("student", sft_cfg(rows="data"), dirs))
    with pytest.raises(ReasonDistillError, match="has neither tokenizer/ nor model/"):
        SFTStage().run(ctx("student", sft_cfg(), dirs))
    with pytest.raises(ReasonDistillError, match="does not exist"):
        SFTStage().run(ctx("student", sft_cfg(model={"path": str(dirs["data"] / "nope")}), dirs))
