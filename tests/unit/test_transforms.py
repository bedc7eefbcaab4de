"""traces/transforms: what each rationale transform and key-token scorer does (arXiv 2406.14511)."""

from __future__ import annotations

import random

import pytest
from pydantic import TypeAdapter, ValidationError

from reasondistill.errors import ReasonDistillError
from reasondistill.models.tokenizer import train_tokenizer
from reasondistill.records import read_jsonl, write_jsonl_atomic
from reasondistill.stages.base import StageContext
from reasondistill.stages.format import FormatConfig, FormatStage, Item, build_rows
from reasondistill.traces.format import (
    PLACEMENTS,
    extract_answer,
    render_completion,
    render_prompt,
    split_completion,
)
from reasondistill.traces.transforms import (
    SCORERS,
    TRANSFORMS,
    RationaleItem,
    TransformConfig,
    TransformEnv,
    apply_transforms,
)
from reasondistill.traces.transforms.base import n_keep, segment
from reasondistill.traces.transforms.key_tokens import top_k_in_order
from tests.unit.helpers_tiny import tiny_model, tiny_tokenizer

RATIONALES = [
    "22+62=84, 84+30=114",
    "first add the tens then add the ones and carry the one",
    "a b c d e f g h i j k l",
    "x",
    "",
    "Answer: 3 then\nmore lines\n  here Answer:",  # format markers: a reordering may start a line with them
]
ITEMS = [RationaleItem(f"ex{i}", f"q{i}?", str(i), r) for i, r in enumerate(RATIONALES)]


@pytest.fixture(scope="module")
def char_tok(tmp_path_factory):
    """The project's own tokenizer kind (digits and punctuation isolated, has <mask>), saved to a dir."""
    tok = train_tokenizer(RATIONALES * 5 + ["Question: Reasoning: Answer:"], vocab_size=160)
    d = tmp_path_factory.mktemp("tok")
    tok.save_pretrained(str(d))
    return str(d)


@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory):
    tok = tiny_tokenizer()
    d = tmp_path_factory.mktemp("teacher")
    tiny_model(tok, seed=0).save_pretrained(str(d))
    tok.save_pretrained(str(d))
    return str(d)


def _cfg(data: dict):
    return TypeAdapter(TransformConfig).validate_python(data)


def _is_subsequence(sub: list, seq: list) -> bool:
    it = iter(seq)
    return all(any(x == y for y in it) for x in sub)


# --- config: a discriminated union on `name`, one-line errors, a seed per transform -------------------


def test_configs_validate_by_name_with_defaults():
    s = _cfg({"kind": "shuffle", "level": "word", "seed": 1})
    assert (s.kind, s.level, s.seed) == ("shuffle", "word", 1)
    k = _cfg({"kind": "key_tokens", "k": 5, "scorer": {"model": {"stage": "teacher"}}})
    assert k.scorer.kind == "saliency" and k.k == 5 and isinstance(k.k, int)  # saliency is the default
    assert isinstance(_cfg({"kind": "key_tokens", "k": 0.3, "scorer": {"kind": "random"}}).k, float)
    assert _cfg({"kind": "mask"}).seed is None  # None: the stage seed, mixed with the example id


@pytest.mark.parametrize(
    "data, match",
    [
        ({"kind": "shufle"}, "does not match any of the expected tags"),
        ({"kind": "shuffle", "level": "token"}, "needs `tokenizer"),
        ({"kind": "shuffle", "tokenizer": {"path": "t"}}, "only used with level: token"),
        ({"kind": "key_tokens", "k": 0, "scorer": {"kind": "random"}}, "count k must be >= 1"),
        ({"kind": "key_tokens", "k": 1.5, "scorer": {"kind": "random"}}, r"fraction k must be in \(0, 1\]"),
        ({"kind": "key_tokens", "k": 2, "scorer": {"kind": "rand"}}, "expected tags"),
        ({"kind": "key_tokens", "k": 2, "scorer": {}}, "model"),
        ({"kind": "mask", "fraction": 1.5}, "less than or equal to 1"),
    ],
)
def test_bad_configs_fail_with_a_clear_message(data, match):
    with pytest.raises(ValidationError, match=match):
        _cfg(data)


def test_format_config_rejects_transforms_with_placement_none():
    with pytest.raises(ValidationError, match="placement none drops"):
        FormatConfig(kind="format", traces="t", placement="none", transforms=[{"kind": "shuffle"}])


# --- shuffle: a permutation of the same multiset of tokens ---------------------------------------------


def test_word_shuffle_is_a_permutation_and_seeded_per_example():
    out = _cfg({"kind": "shuffle"}).apply(ITEMS, TransformEnv(seed=0))
    for it, o in zip(ITEMS, out, strict=True):
        assert sorted(o.split()) == sorted(it.rationale.split())
    assert out == _cfg({"kind": "shuffle"}).apply(ITEMS, TransformEnv(seed=0))  # deterministic
    assert out != _cfg({"kind": "shuffle"}).apply(ITEMS, TransformEnv(seed=1))  # stage seed matters
    assert out != _cfg({"kind": "shuffle", "seed": 7}).apply(ITEMS, TransformEnv(seed=0))  # own seed wins
    # each example has its own stream: the same rationale under two ids is shuffled differently
    twins = [RationaleItem(f"id{i}", "Q", "1", RATIONALES[2]) for i in range(4)]
    assert len(set(_cfg({"kind": "shuffle"}).apply(twins, TransformEnv(seed=0)))) > 1


def test_token_shuffle_permutes_ids(char_tok):
    cfg = _cfg({"kind": "shuffle", "level": "token", "tokenizer": {"path": char_tok}})
    env = TransformEnv(seed=0)
    tok = env.tokenizer(cfg.tokenizer)
    for it in ITEMS:
        p = segment(it.rationale, "token", tok)
        perm = cfg.permute(p.units, random.Random(0))
        assert sorted(perm) == sorted(p.units)
    out = cfg.apply(ITEMS, env)
    # this tokenizer isolates digits and punctuation, so the arithmetic rationale re-encodes to
    # exactly the permuted ids: the text is a permutation of the same tokens
    ids = tok(ITEMS[0].rationale, add_special_tokens=False)["input_ids"]
    assert sorted(tok(out[0], add_special_tokens=False)["input_ids"]) == sorted(ids)
    assert out[0] != ITEMS[0].rationale


# --- key tokens: an ordered subsequence of the requested length ----------------------------------------


def test_n_keep_and_top_k_in_order():
    assert [n_keep(5, n) for n in (0, 3, 10)] == [0, 3, 5]
    assert [n_keep(0.3, n) for n in (0, 1, 2, 5, 10)] == [0, 0, 1, 2, 3]  # round half up: 1.5 -> 2
    assert n_keep(1.0, 7) == 7
    assert top_k_in_order([0.1, 0.9, 0.5, 0.9, 0.0], 3) == [1, 2, 3]  # ties: earlier first
    assert top_k_in_order([1.0, 1.0, 1.0], 2) == [0, 1]


@pytest.mark.parametrize("scorer", [{"kind": "random"}, {"kind": "tfidf"}])
@pytest.mark.parametrize("k", [3, 0.5, 1.0])
def test_word_key_tokens_are_ordered_subsequences_of_length_k(scorer, k):
    cfg = _cfg({"kind": "key_tokens", "k": k, "scorer": scorer})
    out = cfg.apply(ITEMS, TransformEnv(seed=0))
    for it, o in zip(ITEMS, out, strict=True):
        words = it.rationale.split()
        assert len(o.split()) == n_keep(k, len(words))
        assert _is_subsequence(o.split(), words)


@pytest.mark.parametrize("scorer", ["random", "tfidf", "saliency", "leave_one_out"])
def test_token_key_tokens_are_ordered_subsequences_of_length_k(char_tok, teacher_dir, scorer):
    sc = {"kind": scorer, **({"model": {"path": teacher_dir}} if scorer in ("saliency", "leave_one_out") else {})}
    cfg = _cfg({"kind": "key_tokens", "k": 0.4, "level": "token", "tokenizer": {"path": char_tok}, "scorer": sc})
    env = TransformEnv(seed=0)
    tok = env.tokenizer(cfg.tokenizer)
    pieces = [segment(it.rationale, "token", tok) for it in ITEMS]
    scores = cfg.scorer.score(ITEMS, pieces, env, 0)
    for p, s, o in zip(pieces, scores, cfg.apply(ITEMS, env), strict=True):
        idx = cfg.selected(s)
        assert len(s) == len(p) and len(idx) == n_keep(0.4, len(p))
        assert idx == sorted(set(idx))  # strictly increasing: original order, no repeats
        assert o == p.join([p.units[i] for i in idx])


# --- scorers: deterministic for a seed ------------------------------------------------------------------


def test_random_scorer_is_deterministic_for_a_seed():
    pieces = [segment(it.rationale, "word") for it in ITEMS]
    sc = SCORERS.get("random")()
    env = TransformEnv(seed=0)
    assert sc.score(ITEMS, pieces, env, 3) == sc.score(ITEMS, pieces, TransformEnv(seed=9), 3)
    assert sc.score(ITEMS, pieces, env, 3) != sc.score(ITEMS, pieces, env, 4)
    assert SCORERS.get("random")(seed=5).score(ITEMS, pieces, env, 3) == sc.score(ITEMS, pieces, env, 5)


def test_tfidf_prefers_rare_pieces():
    items = [RationaleItem(f"e{i}", "Q", "1", r) for i, r in enumerate(["the cat", "the dog", "the eel"])]
    pieces = [segment(it.rationale, "word") for it in items]
    scores = SCORERS.get("tfidf")().score(items, pieces, TransformEnv(seed=0), None)
    assert all(s[1] > s[0] for s in scores)  # "the" is in every rationale


@pytest.mark.parametrize("name", ["saliency", "leave_one_out"])
def test_teacher_scorers_are_deterministic_and_batch_invariant(teacher_dir, name):
    pieces = [segment(it.rationale, "word") for it in ITEMS]
    one = SCORERS.get(name)(model={"path": teacher_dir}, batch_size=1).score(ITEMS, pieces, TransformEnv(seed=0), 0)
    many = SCORERS.get(name)(model={"path": teacher_dir}, batch_size=64).score(ITEMS, pieces, TransformEnv(seed=1), 1)
    assert [len(s) for s in one] == [len(p) for p in pieces]
    for a, b in zip(one, many, strict=True):
        assert a == pytest.approx(b, rel=1e-4, abs=1e-6)
    if name == "saliency":
        assert all(x >= 0 for s in one for x in s) and any(x > 0 for s in one for x in s)


def test_leave_one_out_matches_a_direct_computation(teacher_dir):
    """Score of piece i = log p(answer | r) - log p(answer | r without piece i), recomputed by hand."""
    import torch

    from reasondistill.models.load import load_model
    from reasondistill.models.tokenize import encode_prompt

    model, tok = load_model(teacher_dir)
    it = ITEMS[2]

    def logp(r: str) -> float:
        p = encode_prompt(tok, render_prompt(it.question))
        head = tok(f"Reasoning: {r}\nAnswer:", add_special_tokens=False)["input_ids"]
        full = tok(render_completion(it.answer, r, "before"), add_special_tokens=False)["input_ids"]
        ids = torch.tensor([p + full])
        with torch.no_grad():
            lp = model(ids).logits[0].log_softmax(-1)
        return sum(lp[t - 1, ids[0, t]].item() for t in range(len(p) + len(head), ids.shape[1]))

    p = segment(it.rationale, "word")
    got = SCORERS.get("leave_one_out")(model={"path": teacher_dir}).score([it], [p], TransformEnv(seed=0), 0)[0]
    want = [logp(it.rationale) - logp(it.rationale[:s] + it.rationale[e:]) for s, e in p.spans]
    assert got == pytest.approx(want, abs=1e-4)


# --- mask and truncation -----------------------------------------------------------------------------


def test_word_mask_replaces_the_requested_share():
    out = _cfg({"kind": "mask", "fraction": 0.5, "mask_token": "[M]"}).apply(ITEMS, TransformEnv(seed=0))
    for it, o in zip(ITEMS, out, strict=True):
        words, got = it.rationale.split(), o.split()
        assert len(got) == len(words)
        assert sum(g == "[M]" for g in got) == n_keep(0.5, len(words))
        assert all(g == w for g, w in zip(got, words, strict=True) if g != "[M]")


def test_token_mask_uses_the_tokenizer_mask_token(char_tok, teacher_dir):
    cfg = _cfg({"kind": "mask", "fraction": 0.25, "level": "token", "tokenizer": {"path": char_tok}})
    out = cfg.apply(ITEMS[:1], TransformEnv(seed=0))[0]
    n = len(segment(ITEMS[0].rationale, "token", TransformEnv(seed=0).tokenizer(cfg.tokenizer)))
    assert out.count("<mask>") == n_keep(0.25, n)
    no_mask = _cfg({"kind": "mask", "level": "token", "tokenizer": {"path": teacher_dir}})  # byte BPE: no mask/unk
    with pytest.raises(ReasonDistillError, match="mask_token"):
        no_mask.apply(ITEMS[:1], TransformEnv(seed=0))


@pytest.mark.parametrize("level", ["word", "token"])
def test_truncate_keeps_a_prefix(char_tok, level):
    tok = {"tokenizer": {"path": char_tok}} if level == "token" else {}
    for frac in (0.0, 0.5, 1.0):
        out = _cfg({"kind": "truncate", "fraction": frac, "level": level, **tok}).apply(ITEMS, TransformEnv(seed=0))
        for it, o in zip(ITEMS, out, strict=True):
            assert it.rationale.startswith(o)
            if frac == 1.0:
                assert o == it.rationale.rstrip()
    assert _cfg({"kind": "truncate", "fraction": 0.5}).apply(ITEMS[2:3], TransformEnv(seed=0)) == ["a b c d e f"]


# --- contract over the registry: placement round-trips through the answer extractor -------------------

EXAMPLE_CONFIGS = {
    "shuffle": [{"level": "word"}, {"level": "token"}],
    "key_tokens": [{"k": 0.5, "scorer": {"kind": "random"}}, {"k": 2, "level": "token", "scorer": {"kind": "tfidf"}}],
    "mask": [{"fraction": 0.3}, {"fraction": 0.3, "level": "token"}],
    "truncate": [{"fraction": 0.6}, {"fraction": 0.6, "level": "token"}],
}

PIECES = ["a", "7", " ", "\n", ":", "Answer", "Answer:", "Reasoning:", "é", "-"]


def test_every_registered_transform_has_contract_examples():
    assert set(EXAMPLE_CONFIGS) == set(TRANSFORMS.names())


@pytest.mark.parametrize("name", sorted(EXAMPLE_CONFIGS))
def test_transform_output_round_trips_through_every_placement(char_tok, name):
    rng = random.Random(0)
    rats = ["".join(rng.choice(PIECES) for _ in range(rng.randint(0, 12))) for _ in range(300)]
    items = [RationaleItem(f"r{i}", "Q", "42", r) for i, r in enumerate(rats) if "\nAnswer:" not in r]
    for extra in EXAMPLE_CONFIGS[name]:
        tok = {"tokenizer": {"path": char_tok}} if extra.get("level") == "token" else {}
        cfg = _cfg({"kind": name, **extra, **tok})
        out = cfg.apply(items, TransformEnv(seed=0))
        assert out == cfg.apply(items, TransformEnv(seed=0))  # deterministic for a seed
        for o in out:
            for placement in PLACEMENTS:
                text = render_completion("42", o, placement)
                assert extract_answer(text) == "42"
                assert split_completion(text) == (None if placement == "none" else o, "42")


def test_apply_transforms_chains_in_order():
    chain = [_cfg({"kind": "truncate", "fraction": 0.5}), _cfg({"kind": "shuffle"})]
    out = apply_transforms(chain, ITEMS, TransformEnv(seed=0))
    assert sorted(out[2].split()) == list("abcdef")


# --- the format stage --------------------------------------------------------------------------------


def test_format_stage_applies_transforms_and_writes_rationales(tmp_path):
    gen, out = tmp_path / "gen", tmp_path / "out"
    gen.mkdir()
    out.mkdir()
    traces = [
        {"example_id": f"e{i}", "teacher": "t", "sample": 0, "prompt": f"Question: {i}?\n", "completion": "",
         "rationale": r, "answer": str(i), "score": 1.0}
        for i, r in enumerate(["one two three four", None, "five six seven eight"])
    ]
    write_jsonl_atomic(gen / "traces.jsonl", traces)
    cfg = FormatConfig(kind="format", traces="gen", placement="after", missing_rationale="skip",
                       transforms=[{"kind": "key_tokens", "k": 2, "scorer": {"kind": "random"}}])
    summary = FormatStage().run(StageContext("fmt", cfg, out, {}, {"gen": gen}))
    assert summary == {"rows": 2, "inputs": 3, "placement": "after", "template": "plain", "transforms": ["key_tokens"]}
    rows = list(read_jsonl(out / "rows.jsonl"))
    rats = list(read_jsonl(out / "rationales.jsonl"))
    assert [r["example_id"] for r in rows] == ["e0", "e2"]  # e1 has no rationale: skipped
    for row, rat in zip(rows, rats, strict=True):
        assert rat["example_id"] == row["example_id"] and len(rat["transformed"].split()) == 2
        assert split_completion(row["completion"]) == (rat["transformed"], row["example_id"][1:])


def test_missing_rationale_fails_before_transforms_run():
    cfg = FormatConfig(kind="format", traces="g", placement="after",
                       transforms=[{"kind": "key_tokens", "k": 1, "scorer": {"model": {"stage": "teacher"}}}])
    with pytest.raises(ReasonDistillError, match="'b'.*missing_rationale: skip"):
        build_rows([Item("a", "Q", "1", "r"), Item("b", "Q", "2", None)], cfg)


def test_planner_records_a_scorer_teachers_dependency():
    from reasondistill.pipeline import plan
    from reasondistill.recipe import Recipe

    key = {"kind": "key_tokens", "k": 2, "level": "token", "tokenizer": {"stage": "tok"},
           "scorer": {"kind": "saliency", "model": {"stage": "teacher"}}}
    recipe = Recipe(name="t", stages={
        "data": {"kind": "data", "task": "arithmetic", "splits": {"pool": {"n": 4}}},
        "tok": {"kind": "tokenizer", "data": "data"},
        "rows0": {"kind": "format", "source": {"stage": "data", "split": "pool"}},
        "teacher": {"kind": "train", "rows": "rows0", "model": {"tiny": {}, "tokenizer": "tok"}},
        "rows": {"kind": "format", "source": {"stage": "data", "split": "pool"}, "placement": "after",
                 "matrix": {"arm": {"plain": {}, "key": {"transforms": [key]}}}},
    })
    deps = {i.name: i.deps for i in plan(recipe)}
    assert set(deps["rows[arm=key]"]) == {"data", "tok", "teacher"}
    assert deps["rows[arm=plain]"] == ["data"]
