"""The pretrained path: depth pruning (models/prune.py) on tiny models, then the real
SmolLM2-135M-Instruct (pulled once per session, tests/conftest.py): chat rows round-trip through
its tokenizer, LoRA on it, a pruned student that plain transformers loads, and generation as a
teacher in process and through `reasondistill serve`. Real-model tests stay at a few tokens."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

from reasondistill.errors import ReasonDistillError
from reasondistill.models.prune import KeepLayers, prune_layers
from reasondistill.models.source import InitModel, same_tokenizer, tokenizer_origin

REAL = "smollm2-135m-instruct"
ROOT = Path(__file__).resolve().parents[2]


def _llama(n_layers: int, seed: int = 0) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=300, hidden_size=32, intermediate_size=64, num_hidden_layers=n_layers,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)  # fmt: skip
    return LlamaForCausalLM(cfg).eval()


# -- pruning, on tiny models --------------------------------------------------------------------


def test_keep_layers_spec():
    assert KeepLayers(every=2).indices(5) == [0, 2, 4]
    assert KeepLayers(every=2, offset=1).indices(5) == [1, 3]
    assert KeepLayers.model_validate([3, 0]).indices(4) == [0, 3]  # a list is shorthand for `layers`
    with pytest.raises(ReasonDistillError, match="does not fit a model with 4 layers"):
        KeepLayers(layers=[0, 4]).indices(4)
    for bad in ({}, {"every": 2, "layers": [0]}, {"layers": [1, 1]}, {"layers": [0], "offset": 1}):
        with pytest.raises(ValueError):
            KeepLayers.model_validate(bad)
    with pytest.raises(ValueError, match="keep_layers"):
        InitModel.model_validate({"tiny": {}, "tokenizer": "tok", "keep_layers": {"every": 2}})
    init = InitModel.model_validate({"pretrained": REAL, "keep_layers": [0, 29]})
    assert init.keep_layers.layers == [0, 29]


def test_pruned_model_saves_loads_and_generates_like_the_kept_layers(tmp_path):
    model = _llama(4)
    ref = {k: v.clone() for k, v in model.state_dict().items()}
    prune_layers(model, KeepLayers(layers=[0, 3]))
    assert model.config.num_hidden_layers == 2 and len(model.model.layers) == 2
    assert [layer.self_attn.layer_idx for layer in model.model.layers] == [0, 1]
    # kept layers keep their weights under new numbers; embeddings, norm and head are untouched
    sd = model.state_dict()
    assert torch.equal(sd["model.layers.1.mlp.up_proj.weight"], ref["model.layers.3.mlp.up_proj.weight"])
    assert torch.equal(sd["model.embed_tokens.weight"], ref["model.embed_tokens.weight"])
    assert torch.equal(sd["model.norm.weight"], ref["model.norm.weight"])
    model.save_pretrained(tmp_path)
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    ids = torch.randint(3, 300, (2, 9))
    with torch.no_grad():
        torch.testing.assert_close(loaded(ids).logits, model(ids).logits, rtol=0, atol=0)
        # The KV cache is indexed by layer_idx: greedy decoding with the cache equals without it.
        kw = {"max_new_tokens": 6, "do_sample": False, "pad_token_id": 0}
        torch.testing.assert_close(loaded.generate(ids, **kw), loaded.generate(ids, use_cache=False, **kw))


def test_keeping_every_layer_changes_nothing():
    model, ref = _llama(3), _llama(3)
    prune_layers(model, KeepLayers(every=1))
    ids = torch.randint(3, 300, (1, 7))
    with torch.no_grad():
        torch.testing.assert_close(model(ids).logits, ref(ids).logits, rtol=0, atol=0)


def test_per_layer_config_fields_follow_the_kept_layers(tmp_path):
    from transformers import Qwen2Config, Qwen2ForCausalLM

    cfg = Qwen2Config(vocab_size=300, hidden_size=32, intermediate_size=64, num_hidden_layers=4, num_attention_heads=4,
                      num_key_value_heads=2, use_sliding_window=True, max_window_layers=2, sliding_window=8)  # fmt: skip
    model = Qwen2ForCausalLM(cfg)
    assert model.config.layer_types == ["full_attention"] * 2 + ["sliding_attention"] * 2
    prune_layers(model, [1, 2])
    assert model.config.layer_types == ["full_attention", "sliding_attention"]
    model.save_pretrained(tmp_path)
    assert AutoModelForCausalLM.from_pretrained(tmp_path).config.layer_types == model.config.layer_types


def test_a_pruned_student_of_the_teachers_model_shares_its_tokenizer_at_plan_time():
    from reasondistill.pipeline import plan
    from reasondistill.recipe import load_recipe

    # the recipe's own KD pair: teacher = a train stage on the pulled model, student = its pruned cut
    recipe, _ = load_recipe(ROOT / "recipes" / "whitebox_kd_smollm2.yaml")
    names = [i.name for i in plan(recipe)]  # RecipeError if the KD check saw two tokenizers
    assert "student_kd[cot=with,method=kd,seed=0]" in names
    student = InitModel.model_validate({"pretrained": REAL, "keep_layers": {"every": 2}})
    teacher_stage = InitModel.model_validate({"pretrained": REAL})
    origin = tokenizer_origin(student, lambda name: [])
    assert origin == tokenizer_origin(teacher_stage, lambda name: []) == ("pretrained", REAL)
    assert same_tokenizer(origin, ("pretrained", REAL)) is None


# -- the real SmolLM2-135M-Instruct -------------------------------------------------------------


@pytest.fixture(scope="module")
def real(real_model):
    from reasondistill.models.load import load_model

    model, tok = load_model(str(real_model.path))
    return real_model.path, model.eval(), tok


@pytest.mark.parametrize("system", [None, "Add the numbers."])
def test_chat_rows_round_trip_through_smollm2s_template(real, system):
    from reasondistill.models.tokenize import encode_pair
    from reasondistill.traces.templates import build_template
    from reasondistill.traces.templates.chat import ChatConfig

    _, _, tok = real
    template = build_template(ChatConfig(system=system))
    question, answer, rationale = "6+7+5+1", "19", "6+7=13, 13+5=18, 18+1=19"
    prompt = template.prompt(question)
    assert template.question_of(prompt) == question
    p_ids = template.encode_prompt(tok, question)
    head = tok.decode(p_ids)
    assert head.endswith("<|im_start|>assistant\n") and (system or "named SmolLM") in head
    for placement in ("none", "before", "after"):
        completion = template.completion(answer, rationale, placement)
        p, c = encode_pair(tok, prompt, completion)
        assert p == p_ids  # training and generation start from the same ids
        assert c[-2:] == tok("<|im_end|>\n", add_special_tokens=False)["input_ids"]
        text = tok.decode(c[:-2])
        assert text == completion[0]["content"]
        assert template.parse(text) == ((rationale if placement != "none" else None), answer)


def test_lora_on_smollm2_trains_adapters_only_and_merges_into_a_plain_model(real, tmp_path):
    from reasondistill.models.load import load_model
    from reasondistill.models.lora import LoraSpec, apply_lora
    from reasondistill.train.config import TrainConfig
    from reasondistill.train.trainer import train_model

    path, base, _ = real
    model, tok = load_model(str(path))
    lora = apply_lora(model, LoraSpec(r=4, alpha=8), seed=0)
    trainable = [n for n, p in lora.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    rows = [{"prompt": [{"role": "user", "content": f"{i}+{i}"}],
             "completion": [{"role": "assistant", "content": f"Answer: {2 * i}"}]} for i in range(4)]  # fmt: skip
    cfg = TrainConfig(
        max_steps=2, per_device_batch_size=2, lr=1e-2, warmup_steps=0, save_every=0, progress_bar=False
    )
    train_model(lora, tok, rows, cfg, tmp_path)
    assert (tmp_path / "adapter" / "adapter_config.json").is_file()
    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "model").eval()  # no PEFT needed
    assert not any("lora" in k for k in merged.state_dict())
    w = "model.layers.0.self_attn.q_proj.weight"
    assert not torch.equal(merged.state_dict()[w], base.state_dict()[w])  # the adapters were folded in
    key = "model.embed_tokens.weight"  # not a LoRA target: unchanged
    assert torch.equal(merged.state_dict()[key], base.state_dict()[key])


def test_pruned_smollm2_student_loads_in_plain_transformers(real, tmp_path):
    path, base, tok = real
    init = InitModel.model_validate({"pretrained": REAL, "keep_layers": {"every": 2}})
    student, s_tok = init.load(ctx=None, seed=0)
    assert student.config.num_hidden_layers == 15 and s_tok.get_vocab() == tok.get_vocab()
    assert sum(p.numel() for p in student.parameters()) < 0.65 * sum(p.numel() for p in base.parameters())
    student.save_pretrained(tmp_path)
    s_tok.save_pretrained(tmp_path)
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    assert AutoTokenizer.from_pretrained(tmp_path).get_vocab() == tok.get_vocab()
    ids = tok.apply_chat_template([{"role": "user", "content": "2+3"}], add_generation_prompt=True,
                                  return_tensors="pt", return_dict=True)["input_ids"]  # fmt: skip
    with torch.no_grad():
        torch.testing.assert_close(loaded(ids).logits, student.eval()(ids).logits, rtol=0, atol=0)
        kw = {"max_new_tokens": 4, "do_sample": False}
        torch.testing.assert_close(loaded.generate(ids, **kw), loaded.generate(ids, use_cache=False, **kw))


def test_smollm2_as_a_teacher_in_process_and_through_serve(real, tmp_path):
    """The hf teacher and the openai teacher against `reasondistill serve` of the same pulled
    model write the same greedy traces (one request at a time: no padding differences)."""
    from reasondistill.records import Example
    from reasondistill.teachers.hf import HFConfig, HFTeacher
    from reasondistill.teachers.openai.config import OpenAIConfig
    from reasondistill.teachers.openai.serve import served_model
    from reasondistill.teachers.openai.teacher import OpenAITeacher
    from reasondistill.traces.store import TraceStore

    path, model, tok = real
    exs = [Example(id=f"q{i}", task="t", question=q, answer=a, split="s")
           for i, (q, a) in enumerate([("What is 2+3?", "5"), ("Name a color.", "red")])]  # fmt: skip
    verify = lambda ex, ans: ans == ex.answer  # noqa: E731
    chat = {"kind": "chat", "system": "Answer briefly."}
    hf = HFConfig(
        kind="hf", model={"path": str(path)}, template=chat, temperature=0, max_new_tokens=10, batch_size=1
    )
    with TraceStore(tmp_path / "hf" / "traces.jsonl") as store:
        HFTeacher(hf, model=model, tokenizer=tok).generate(exs, store, verify)
        local = store.read()
    with served_model(str(path), tmp_path / "serve", max_batch_size=1) as url:
        cfg = OpenAIConfig(kind="openai", base_url=url, model=str(path), template=chat, temperature=0,
                           max_tokens=10, concurrency=1)  # fmt: skip
        with TraceStore(tmp_path / "served" / "traces.jsonl") as store:
            OpenAITeacher(cfg).generate(exs, store, verify)
            served = store.read()
    assert [t.prompt for t in served] == [t.prompt for t in local]
    assert local[0].prompt == [
        {"role": "system", "content": "Answer briefly."},
        {"role": "user", "content": "What is 2+3?"},
    ]
    assert [t.completion for t in served] == [t.completion for t in local]
    assert all(t.completion.strip() for t in local)
