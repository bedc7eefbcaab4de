"""Prompt templates (traces/templates): exact round trips per template and placement, tokenization
through a tiny local ChatML tokenizer, the trained-template record, and the chat quickstart."""

from __future__ import annotations

import json

import pytest
import torch
from pydantic import ValidationError
from tokenizers import AddedToken
from transformers import AutoTokenizer

from reasondistill.errors import ReasonDistillError
from reasondistill.evaluate.predict import predict_split
from reasondistill.models.tokenize import encode_prompt, encode_with_spans
from reasondistill.models.tokenizer import train_tokenizer
from reasondistill.stages.evaluate import EvaluateConfig
from reasondistill.stages.format import FormatConfig
from reasondistill.traces.format import PLACEMENTS
from reasondistill.traces.templates import (
    TEMPLATES,
    build_template,
    check_trained_template,
    question_from,
    rows_template,
    write_template_record,
)
from reasondistill.train.batching import collate, encode_rows
from tests.unit.helpers_tiny import examples, fake_verify, single_thread, tiny_model, tiny_tokenizer

QUESTIONS = ["2+3", "what is 7 + 8?", "two\nlines", " spaced ", "ünïcode ✓", ""]
# (answer, rationale) pairs every template must give back exactly, in every placement it renders.
CASES = [
    ("5", "2+3=5"),
    ("cba", "read it\nbackwards"),
    ("-1", "  leading spaces"),
    ("x", "ends with a newline\n"),
    ("y", "\nstarts with a newline"),
    ("z", "Reasoning: a nested prefix"),
    ("a b", "the <think> tag, opened only"),
]
SLOTS = [(k, p) for k in TEMPLATES.names() for p in TEMPLATES.get(k).placements]


def template(kind: str, **cfg):
    return build_template(TEMPLATES.config(kind)(**cfg))


@pytest.fixture(scope="module")
def chatml(tmp_path_factory):
    """The tokenizer stage's ChatML tokenizer, saved and reloaded as a stage would use it."""
    texts = (
        [e.question for e in examples(8)] + [e.rationale for e in examples(8)] + ["Reasoning: \nAnswer: \n"]
    )
    path = tmp_path_factory.mktemp("chatml") / "tokenizer"
    train_tokenizer(texts, 128, chat=True).save_pretrained(str(path))
    return AutoTokenizer.from_pretrained(str(path))


# --- the contract: every registered template ------------------------------------------------------


@pytest.mark.parametrize("kind", TEMPLATES.names())
def test_every_template_is_an_exact_inverse(kind):
    entry, t = TEMPLATES.entry(kind), template(kind)
    assert entry.description and t.kind == kind and t.placements and set(t.placements) <= set(PLACEMENTS)
    for q in QUESTIONS:
        assert t.question_of(t.prompt(q)) == q and question_from(t.prompt(q)) == q
    for placement in PLACEMENTS:
        if placement not in t.placements:
            with pytest.raises(ValueError, match="renders placements"):
                t.render("5", "r", placement)
            continue
        for answer, rationale in CASES:
            text = t.render(answer, rationale, placement)
            assert t.parse(text) == (None if placement == "none" else rationale, answer), (text, placement)
            turn = [{"role": "assistant", "content": text}]
            assert t.completion(answer, rationale, placement) == (turn if t.chat else text)
            if t.stop is not None and placement in (
                "none",
                "after",
            ):  # label-first: stop right after the answer
                assert t.parse(text.split(t.stop)[0])[1] == answer
        t.layout("5", "2+3=5")  # checks itself against render
    assert t.parse("free text, no answer in it") == (None, None)
    for bad_answer in ("two\nlines", " padded"):
        with pytest.raises(ValueError, match="one line"):
            t.render(bad_answer, "r", t.placements[0])


def test_what_each_template_renders():
    plain, chat, think = template("plain"), template("chat", system="Be brief."), template("think")
    assert plain.prompt("2+3") == "Question: 2+3\n"
    assert plain.completion("5", "2+3=5", "after") == "Answer: 5\nReasoning: 2+3=5"
    assert chat.prompt("2+3") == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "2+3"},
    ]
    assert chat.completion("5", "2+3=5", "before") == [
        {"role": "assistant", "content": "Reasoning: 2+3=5\nAnswer: 5"}
    ]
    assert think.prompt("2+3") == [{"role": "user", "content": "2+3"}]
    assert think.render("5", "2+3=5", "before") == "<think>\n2+3=5\n</think>\n\n5"
    assert think.render("5", None, "none") == "<think>\n\n</think>\n\n5"  # Qwen3's no-thinking form
    assert (plain.stop, chat.stop, think.stop) == ("\n", "\n", None)


def test_think_parses_real_outputs_and_refuses_what_would_not_round_trip():
    t = template("think")
    assert t.parse("2+3=5\n</think>\n\n5") == ("2+3=5", "5")  # DeepSeek-R1: <think> was in the prompt
    assert t.parse("<think>\nstill going") == (None, None)  # stopped mid-thought: no answer
    assert t.parse("<think>\nr\n</think>\n\n") == ("r", None)
    assert t.assistant_text("\n\n5", "\n2+3=5\n") == "<think>\n2+3=5\n</think>\n\n5"  # vLLM reasoning field
    assert t.assistant_text("<think>\nr\n</think>\n\n5", "ignored") == "<think>\nr\n</think>\n\n5"
    for rationale, match in (("", "empty rationale"), ("a</think>b", "must not contain"), (None, "needs")):
        with pytest.raises(ValueError, match=match):
            t.render("5", rationale, "before")
    with pytest.raises(ValidationError, match="renders placements none, before, not 'after'"):
        FormatConfig(kind="format", traces="g", placement="after", template={"kind": "think"})
    with pytest.raises(ValidationError, match="no label-first form"):
        EvaluateConfig(kind="evaluate", model={"path": "m"}, data="d", splits=["t"], label_first=True,
                       template={"kind": "think"})  # fmt: skip


def test_question_from_refuses_prompts_no_template_made():
    for prompt in (
        "Q: 2+3\n",
        [{"role": "assistant", "content": "x"}],
        [{"role": "user", "content": ["parts"]}],
    ):
        with pytest.raises(ValueError, match="no prompt template"):
            question_from(prompt)


# --- tokenization: one encoding for training, the KD cache and generation ------------------------


@pytest.mark.parametrize("kind,placement", SLOTS)
def test_encoding_has_the_prefix_property_and_labels_only_the_completion(chatml, kind, placement):
    t = template(kind)
    row = {"prompt": t.prompt("2+3"), "completion": t.completion("5", "2+3=5", placement)}
    (enc,) = encode_rows(chatml, [row], max_length=512)
    assert enc.ids[: enc.n_prompt] == encode_prompt(chatml, row["prompt"]) == t.encode_prompt(chatml, "2+3")
    labels = collate([enc], chatml.pad_token_id)["labels"][0].tolist()
    assert (
        labels[: enc.n_prompt] == [-100] * enc.n_prompt and labels[enc.n_prompt :] == enc.ids[enc.n_prompt :]
    )
    completion = enc.ids[enc.n_prompt :]
    end = completion.index(chatml.eos_token_id)  # <|im_end|>: what generation stops at
    assert chatml.decode(completion[:end]) == t.render("5", "2+3=5", placement)
    if t.chat:
        assert chatml.decode(enc.ids[: enc.n_prompt]).endswith("<|im_start|>assistant\n")
    if placement == "before":  # what key-token scorers encode: the same ids, with character spans
        text, r0, a0 = t.layout("5", "2+3=5")
        ((p, ids, spans),) = encode_with_spans(chatml, [row["prompt"]], [text])
        assert p + ids == enc.ids[: len(p) + len(ids)] and "".join(text[s:e] for s, e in spans) == text


def _memorize(tok, rows: list[dict], steps: int = 150):
    """A tiny model overfit on rows through the training encoding (encode_rows + collate)."""
    model = tiny_model(tok, seed=0).train()
    batch = collate(encode_rows(tok, rows, 256), tok.pad_token_id)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    with single_thread():
        for _ in range(steps):
            loss = model(**batch).loss
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


@pytest.mark.parametrize("kind", ["chat", "think"])
def test_a_model_trained_through_a_template_is_evaluated_through_it(chatml, kind, tmp_path):
    t, exs = template(kind), examples(4)
    rows = [
        {"prompt": t.prompt(e.question), "completion": t.completion(e.answer, e.rationale, "before")}
        for e in exs
    ]
    model = _memorize(chatml, rows)
    preds = predict_split(model, chatml, exs, fake_verify, split="test", partial_path=tmp_path / "p.jsonl",
                          max_new_tokens=60, template=t)  # fmt: skip
    assert [p["prediction"] for p in preds] == [t.render(e.answer, e.rationale, "before") for e in exs]
    assert all(p["correct"] for p in preds)


def test_chat_needs_a_chat_template_and_says_which_tokenizer_lacks_it(tmp_path):
    path = tmp_path / "plain_tok"
    train_tokenizer(["Question: 2+3\nAnswer: 5"], 128).save_pretrained(str(path))
    tok = AutoTokenizer.from_pretrained(str(path))
    chat = template("chat")
    row = {"prompt": chat.prompt("2+3"), "completion": chat.completion("5", None, "none")}
    for attempt in (lambda: encode_rows(tok, [row], 64), lambda: chat.check_tokenizer(tok)):
        with pytest.raises(ReasonDistillError, match=f"tokenizer '{path}' has no chat template"):
            attempt()


def _with_template(chatml, jinja: str):
    tok = AutoTokenizer.from_pretrained(chatml.name_or_path)
    tok.chat_template = jinja
    return tok


@pytest.mark.parametrize("jinja,match", [
    # the assistant turn opens differently once it has content: the prompt is not a prefix
    ("{% for m in messages %}{{ '<|im_start|>' + m.role + (':' if m.role == 'assistant' else '') + '\\n' + m.content"
     " + '<|im_end|>\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}",
     "not render the prompt"),
    # DeepSeek-R1's template drops the reasoning of assistant turns
    ("{% for m in messages %}{{ '<|im_start|>' + m.role + '\\n' + m.content.split('</think>')[-1] + '<|im_end|>\\n' }}"
     "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}",
     "rewrites the assistant's content"),
    # turns end without the EOS: a model trained on it would never stop
    ("{% for m in messages %}{{ m.role + '\\n' + m.content + '\\n\\n' }}{% endfor %}"
     "{% if add_generation_prompt %}{{ 'assistant\\n' }}{% endif %}",
     "without its eos_token"),
])  # fmt: skip
def test_chat_templates_that_would_mislabel_training_fail_clearly(chatml, jinja, match):
    t = template("think")
    row = {"prompt": t.prompt("2+3"), "completion": t.completion("5", "2+3=5", "before")}
    with pytest.raises(ReasonDistillError, match=match):
        encode_rows(_with_template(chatml, jinja), [row], 64)


def test_think_refuses_a_tokenizer_that_drops_its_tags():
    tok = tiny_tokenizer()
    tok.chat_template = "{% for m in messages %}{{ m.content }}{% endfor %}"
    tok.add_tokens(
        [AddedToken(x, special=True, normalized=False) for x in ("<think>", "</think>")], special_tokens=True
    )
    with pytest.raises(ReasonDistillError, match="drops '<think>'"):
        template("think").check_tokenizer(tok)


# --- the trained-template record -------------------------------------------------------------------


def test_a_model_is_only_prompted_with_the_template_it_recorded(tmp_path):
    chat, plain = TEMPLATES.config("chat")(), TEMPLATES.config("plain")()
    model, rows_a, rows_b = (tmp_path / n for n in ("model", "a", "b"))
    for d in (model, rows_a, rows_b):
        d.mkdir()
    check_trained_template(str(model), plain, "evaluate stage 'x'")  # no record (a hub model): not checked
    write_template_record(model, chat)
    check_trained_template(str(model), chat, "evaluate stage 'x'")
    with pytest.raises(ReasonDistillError, match="evaluate stage 'x': the model .* trained with template"):
        check_trained_template(str(model), plain, "evaluate stage 'x'")
    with pytest.raises(ReasonDistillError):
        check_trained_template(
            str(model), TEMPLATES.config("chat")(system="other"), "x"
        )  # the system turn too
    check_trained_template("org/hub-model", plain, "x")  # not a directory: nothing recorded
    write_template_record(rows_a, chat)
    assert rows_template([rows_a, tmp_path], "train stage 's'") == {"kind": "chat", "system": None}
    write_template_record(rows_b, plain)
    with pytest.raises(ReasonDistillError, match="train stage 's': its rows were rendered with different"):
        rows_template([rows_a, rows_b], "train stage 's'")


# --- end to end ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_chat_quickstart_runs_end_to_end_through_the_cli(tmp_path):
    from tests.integration.conftest import run_cli, stage_dirs

    run_cli("run", "recipes/quickstart_chat.yaml", "--smoke", "--runs-dir", str(tmp_path))
    dirs = stage_dirs(tmp_path, "quickstart_chat-smoke")
    assert all((d / "_COMPLETE").exists() for d in dirs.values())
    tok = AutoTokenizer.from_pretrained(str(dirs["teacher"] / "model"))
    assert tok.chat_template and tok.eos_token == "<|im_end|>"
    for name in ("teacher_rows", "student_rows[placement=after]"):
        row = json.loads((dirs[name] / "rows.jsonl").read_text().splitlines()[0])
        assert [m["role"] for m in row["prompt"]] == ["user"] and [m["role"] for m in row["completion"]] == [
            "assistant"
        ]
        assert json.loads((dirs[name] / "prompt_template.json").read_text())["kind"] == "chat"
    trace = json.loads((dirs["traces"] / "traces.jsonl").read_text().splitlines()[0])
    assert trace["prompt"] == [{"role": "user", "content": question_from(trace["prompt"])}]
    preds = [json.loads(x) for x in (dirs["teacher_eval"] / "predictions.jsonl").read_text().splitlines()]
    assert len(preds) == 48 and all(p["answer"] == template("chat").parse(p["prediction"])[1] for p in preds)
    assert "student_eval[placement=after]" in (dirs["report"] / "results.md").read_text()
