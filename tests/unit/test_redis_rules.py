"""Rule books (redis/rules/): every rule a procedural task knows reproduces its generator, ACRE's
inferred rule gives reasoning-gym's labels, MiniSCAN follows Lake et al.'s grammar, and the wrong
rules the program teacher writes are well-formed and really wrong somewhere."""

from __future__ import annotations

import random

import pytest

from reasondistill.redis.rules import acre as acre_rules
from reasondistill.redis.rules import book_for
from reasondistill.redis.rules.arc_1d import RG_SPECS
from reasondistill.redis.rules.list_functions import GENERATOR_SPECS
from reasondistill.tasks import build_task


@pytest.mark.parametrize("name", sorted(RG_SPECS))
def test_arc_1d_specs_reproduce_reasoning_gym(name):
    from reasoning_gym.arc.arc_1d_tasks import ARC_1D_TASKS

    func, kwargs = ARC_1D_TASKS[name]
    rng, book, seen = random.Random(0), book_for("arc_1d"), 0
    while seen < 40:
        got = func(rng, rng.randint(8, 20), **kwargs)
        if got is not None:
            assert book.apply(RG_SPECS[name], str(got["input"])) == str(got["output"])
            seen += 1


@pytest.mark.parametrize("k", sorted(GENERATOR_SPECS))
def test_list_function_specs_reproduce_reasoning_gym(k):
    from reasoning_gym.induction.list_functions import generators

    rng, book = random.Random(k), book_for("list_functions")
    for i in range(20):
        random.seed(i)  # generator 14 draws from the global RNG
        for given, out in getattr(generators, f"generate_{k}")(rng).items():
            assert book.apply(GENERATOR_SPECS[k], given) == out


def test_acre_inferred_rule_gives_reasoning_gyms_labels():
    from reasoning_gym import create_dataset

    book, n = book_for("acre"), 0
    for q in create_dataset("acre", seed=11, size=100).questions:
        demos = [(str([" ".join(o) for o in e["input"]]), e["output"]) for e in q["examples"]]
        rule = acre_rules.infer(demos)
        assert all(book.apply(rule, i) == o for i, o in demos)
        assert book.apply(rule, str([" ".join(o) for o in q["question"]["input"]])) == q["question"]["output"]
        n += 1
    assert n == 400


LAKE = {"dax": "RED", "lug": "BLUE", "wif": "GREEN", "zup": "YELLOW"}
LAKE_SPEC = {"family": "scan", "lexicon": LAKE, "thrice": "fep", "around": "blicket", "swap": "kiki",
             "repeat": 3, "around_form": "xyx", "swap_form": "yx", "loosest": "swap"}  # fmt: skip


@pytest.mark.parametrize(
    ("phrase", "colours"),
    [  # phrases of the MiniSCAN grammar (Lake, Linzen & Baroni 2019), with its words
        ("dax fep", "RED RED RED"),
        ("lug blicket wif", "BLUE GREEN BLUE"),
        ("lug kiki wif", "GREEN BLUE"),
        ("lug fep kiki wif", "GREEN BLUE BLUE BLUE"),
        ("wif kiki dax blicket lug", "RED BLUE RED GREEN"),
        ("lug kiki wif fep", "GREEN GREEN GREEN BLUE"),
        ("zup blicket wif kiki dax fep", "RED RED RED YELLOW GREEN YELLOW"),
    ],
)
def test_mini_scan_follows_lakes_grammar(phrase, colours):
    assert book_for("mini_scan").apply(LAKE_SPEC, phrase) == colours


@pytest.mark.parametrize("name", ["arc_1d", "list_functions", "acre", "mini_scan"])
def test_wrong_rules_are_well_formed_and_wrong_somewhere(name):
    task, book = build_task(name, {}), book_for(name)
    wrong_somewhere, total = 0, 0
    for ex in task.examples("train", 30, seed=5):
        gold = ex.metadata["rule"]
        demos = [(d.input, d.output) for d in ex.demonstrations]
        rng = random.Random(ex.id)
        for spec in book.variants(gold, rng, demos):
            assert spec != gold
            text = book.describe(spec, rng)
            assert text and "\n" not in text and text == text.strip()
            cases = demos + [(ex.metadata["query"], ex.answer)]
            total += 1
            wrong_somewhere += not all(book.fits(spec, i, o) for i, o in cases)
        table = book.memorised(demos, gold, rng)
        assert table is not None and all(book.fits(table, i, o) for i, o in table["table"])
    assert wrong_somewhere >= 0.6 * total  # most are wrong on this task's own pairs (the rest: elsewhere)
