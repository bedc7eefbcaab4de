"""models/: tokenizer training, tiny-model factory, loading, LoRA."""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError
from transformers import AutoModelForCausalLM, AutoTokenizer

from reasondistill.errors import ReasonDistillError
from reasondistill.models.load import ensure_pad_token, load_model
from reasondistill.models.lora import LoraSpec, apply_lora, merge_lora
from reasondistill.models.tiny import TinyModelSpec, build_tiny_model, count_parameters
from reasondistill.models.tokenize import encode_completion, encode_prompt
from reasondistill.models.tokenizer import SPECIAL_TOKENS, train_tokenizer

CORPUS = [
    "Question: What is 23+45?\nReasoning: 23+45=68, 68+12=80\nAnswer: 80",
    "Question: Sort the list 3 1 2.\nReasoning: the smallest comes first; let me check.\nAnswer: 1 2 3",
] * 30


@pytest.fixture(autouse=True)
def _one_thread():
    # Tiny models gain nothing from 2 threads, and OpenMP threads stall badly when another
    # process holds a core (shared CI machines).
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def tok():
    return train_tokenizer(CORPUS, vocab_size=128)


ROUND_TRIP = [
    "23+45=68, 68+12=80",
    "Question: What is 2 + 3?\nReasoning: 2 + 3 = 5\nAnswer: 5",
    "  two leading spaces, trailing too  ",
    "line one\n\nline three\n",
    "tabs\tand (brackets) [x] {y} 'q' \"dq\" a-b_c; e.g. 1.5% ~ 3/4 * 2^3 | # @ ! ?",
    "Unseen WORDS zebra quixotic 9876543210",
    "",
]


@pytest.mark.parametrize("text", ROUND_TRIP)
def test_decode_encode_round_trips(tok, text):
    ids = tok(text, add_special_tokens=True)["input_ids"]
    assert tok.decode(ids, skip_special_tokens=True) == text
    assert tok.unk_token_id not in ids


def test_digits_are_one_per_token(tok):
    pieces = tok.convert_ids_to_tokens(tok("23+45=68, 68+12=80", add_special_tokens=False)["input_ids"])
    assert pieces == list("23+45=68,") + [" "] + list("68+12=80")
    assert all(len(p) == 1 for p in tok.convert_ids_to_tokens(tok("1234567890")["input_ids"][1:]))


def test_special_tokens_and_bos(tok):
    assert [tok.convert_ids_to_tokens(i) for i in range(5)] == SPECIAL_TOKENS
    assert (tok.pad_token, tok.bos_token, tok.eos_token, tok.unk_token, tok.mask_token) == tuple(
        SPECIAL_TOKENS
    )
    assert encode_prompt(tok, "Question: x")[0] == tok.bos_token_id
    assert tok("x", add_special_tokens=False)["input_ids"][0] != tok.bos_token_id
    assert encode_completion(tok, "5")[-1] == tok.eos_token_id
    assert tok.model_max_length == 2048
    assert 102 <= len(tok) <= 128  # alphabet + specials, then merges up to vocab_size


def test_tokenizer_save_load(tok, tmp_path):
    tok.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    for text in ROUND_TRIP:
        assert loaded(text)["input_ids"] == tok(text)["input_ids"]
        assert loaded.decode(loaded(text)["input_ids"], skip_special_tokens=True) == text
    assert loaded.pad_token_id == tok.pad_token_id and loaded.mask_token == "<mask>"


def test_chat_tokenizer_adds_chatml_on_top_and_plain_stays_as_it_was(tok, tmp_path):
    chat = train_tokenizer(CORPUS, vocab_size=128, chat=True)
    assert len(chat) == len(train_tokenizer(["system\nuser\nassistant\n", *CORPUS], vocab_size=128)) + 4
    assert tok.chat_template is None and tok.eos_token == "</s>"  # plain: no chat template, ids unchanged
    assert chat.eos_token == "<|im_end|>" and chat.convert_ids_to_tokens(len(chat) - 4) == "<|im_start|>"
    msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+3"}]
    text = chat.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)
    assert text == "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n2+3<|im_end|>\n<|im_start|>assistant\n"
    ids = encode_prompt(chat, msgs)
    assert ids.count(chat.convert_tokens_to_ids("<|im_start|>")) == 3 and ids[0] != chat.bos_token_id
    think = "<think>\n2+3=5\n</think>\n\n5"
    t_ids = chat(think, add_special_tokens=False)["input_ids"]
    assert chat.convert_tokens_to_ids("<think>") in t_ids and chat.decode(t_ids, skip_special_tokens=True) == think
    chat.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    assert encode_prompt(loaded, msgs) == ids and loaded.eos_token == "<|im_end|>"


def test_tokenizer_stage_trains_for_its_template(tmp_path):
    from reasondistill.records import write_jsonl_atomic
    from reasondistill.stages.base import StageContext
    from reasondistill.stages.tokenizer import TokenizerConfig, TokenizerStage

    data = tmp_path / "data"
    data.mkdir()
    write_jsonl_atomic(data / "train.jsonl", [{"question": "2+3", "answer": "5", "rationale": "2+3=5"}])
    for kind in ("plain", "chat"):
        cfg = TokenizerConfig(kind="tokenizer", data="data", template={"kind": kind})
        out = tmp_path / kind
        out.mkdir()
        TokenizerStage().run(StageContext(kind, cfg, out, {}, {"data": data}))
        loaded = AutoTokenizer.from_pretrained(out / "tokenizer")
        assert bool(loaded.chat_template) == (kind == "chat")
    assert TokenizerConfig(kind="tokenizer", data="d").template.kind == "plain"


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
def test_tiny_model_builds_saves_and_loads(tok, tmp_path, arch):
    spec = TinyModelSpec(arch=arch, hidden_size=32, num_layers=2, num_heads=4, num_kv_heads=2)
    model = build_tiny_model(spec, tok, seed=3)
    assert model.config.model_type == arch
    assert model.config.vocab_size == len(tok)
    assert (model.config.pad_token_id, model.config.bos_token_id, model.config.eos_token_id) == (0, 1, 2)
    again = build_tiny_model(spec, tok, seed=3)
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), again.parameters(), strict=True))
    model.save_pretrained(tmp_path)
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path)
    x = torch.tensor([encode_prompt(tok, "Question: 2+3?")])
    torch.testing.assert_close(loaded(x).logits, model(x).logits)
    assert 0 < count_parameters(model) == sum(p.numel() for p in model.parameters())


def test_tiny_spec_validation():
    with pytest.raises(ValidationError, match="'llama' or 'qwen2'"):
        TinyModelSpec(arch="gpt5")
    with pytest.raises(ValidationError, match="not divisible"):
        TinyModelSpec(hidden_size=30, num_heads=4)
    with pytest.raises(ValidationError, match="Extra inputs"):
        TinyModelSpec(hiden_size=32)


def test_load_model_local_dir_and_errors(tok, tmp_path):
    model = build_tiny_model(TinyModelSpec(hidden_size=32), tok)
    model.save_pretrained(tmp_path / "m")
    tok.save_pretrained(tmp_path / "m")
    loaded, loaded_tok = load_model(str(tmp_path / "m"))
    assert loaded.config.vocab_size == len(loaded_tok) and loaded_tok.pad_token == "<pad>"
    with pytest.raises(ReasonDistillError, match="does not exist"):
        load_model(str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ReasonDistillError, match="no config.json"):
        load_model(str(tmp_path / "empty"))
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "config.json").write_text("{not json")
    with pytest.raises(ReasonDistillError, match="cannot load model"):
        load_model(str(tmp_path / "bad"))


def test_pad_falls_back_to_eos(tok):
    tok2 = train_tokenizer(CORPUS[:2], vocab_size=110)
    tok2.pad_token = None
    ensure_pad_token(tok2)
    assert tok2.pad_token == tok2.eos_token


def test_lora_apply_and_merge(tok, tmp_path):
    base = build_tiny_model(TinyModelSpec(hidden_size=32), tok, seed=0)
    model = apply_lora(base, LoraSpec(r=4, alpha=8), seed=0)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    with torch.no_grad():  # make the adapters non-trivial (lora_B starts at zero)
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.1)
    x = torch.tensor([encode_prompt(tok, "Question: 2+3?")])
    expected = model(x).logits
    merged = merge_lora(model)
    merged.save_pretrained(tmp_path)
    plain = AutoModelForCausalLM.from_pretrained(tmp_path)
    assert not any("lora" in n for n, _ in plain.named_parameters())
    torch.testing.assert_close(plain(x).logits, expected, atol=1e-5, rtol=1e-4)
