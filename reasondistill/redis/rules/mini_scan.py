"""MiniSCAN rules and generator (Lake, Linzen & Baroni, "Human few-shot learning of compositional
instructions", CogSci 2019, arXiv 1901.04587): reasoning-gym has no MiniSCAN, so tasks are made here.

A task is a random lexicon: four primitive pseudo-words, each meaning a colour, and three function
words: `thrice` ("x F" -> x x x), `around` ("x B y" -> x y x) and `swap` ("x K y" -> y x), where
F binds tightest, then B, then K. Demonstrations and queries follow Lake et al.'s 14 study and 10
test phrases (DEMOS, QUERIES; P1..P4 primitives), the layout of the ReDis MiniSCAN files: the
fourth primitive is only seen alone, so every query composes it. A binary function word splits a
phrase at its last occurrence (left-associative); Lake's phrases use each one at most once.

Wrong rules: a colour pair swapped, "thrice" read as twice (or four times), "around" as x y y,
"swap" as plain concatenation, or B and K in the other priority.
"""

from __future__ import annotations

import random

from reasondistill.redis.rules.base import RuleBook, RuleError, Spec, register_book

DEMOS = ["P1", "P2", "P3", "P4", "P2 F", "P1 F", "P2 B P3", "P3 B P1", "P2 K P3", "P1 K P2", "P2 F K P3",
         "P3 K P1 B P2", "P2 K P3 F", "P3 B P1 K P2"]  # fmt: skip
QUERIES = ["P4 F", "P4 B P2", "P1 B P4", "P4 K P1", "P3 K P4", "P4 F K P2", "P3 K P4 F", "P2 K P3 B P4",
           "P4 B P3 K P1 F", "P4 B P4 K P4 F"]  # fmt: skip
PALETTE = ("RED", "BLUE", "GREEN", "YELLOW", "PURPLE", "PINK")
_ONSETS = ("dr", "schw", "y", "kh", "sc", "cl", "sl", "gn", "sm", "rh", "th", "fl", "br", "kw", "bl", "ch",
           "st", "kr", "ph", "gl", "tr", "sn", "pl", "fr", "m", "n", "t", "z")  # fmt: skip
_NUCLEI = ("eu", "a", "oi", "ia", "ou", "ie", "ui", "oo", "ea", "au", "i", "o")
_CODAS = ("nk", "rt", "sh", "tts", "d", "mp", "ys", "ld", "s", "n", "ck", "ff", "x", "ng", "rb")


def pseudo_words(rng: random.Random, n: int) -> list[str]:
    out: list[str] = []
    while len(out) < n:
        w = rng.choice(_ONSETS) + rng.choice(_NUCLEI) + rng.choice(_CODAS)
        if w not in out:
            out.append(w)
    return out


def make_task(rng: random.Random, queries: int, palette: tuple[str, ...] = PALETTE):
    """(spec, demonstrations, queries) of one MiniSCAN task; `queries` of Lake's 10 test phrases."""
    words = pseudo_words(rng, 7)
    colours = rng.sample(list(palette), 4)
    spec = {"family": "scan", "lexicon": dict(zip(words[:4], colours, strict=True)), "thrice": words[4],
            "around": words[5], "swap": words[6], "repeat": 3, "around_form": "xyx", "swap_form": "yx",
            "loosest": "swap"}  # fmt: skip
    slots = {
        "P1": words[0],
        "P2": words[1],
        "P3": words[2],
        "P4": words[3],
        "F": words[4],
        "B": words[5],
        "K": words[6],
    }
    fill = lambda phrase: " ".join(slots[t] for t in phrase.split())  # noqa: E731
    book = BOOK
    demos = [(fill(p), book.run(spec, fill(p))) for p in DEMOS]
    asked = [(fill(p), book.run(spec, fill(p))) for p in rng.sample(QUERIES, min(queries, len(QUERIES)))]
    return spec, demos, asked


class MiniScanBook(RuleBook):
    task = "mini_scan"

    def run(self, spec: Spec, value: str) -> str:
        if spec["family"] != "scan":
            raise RuleError(f"unknown family {spec['family']!r}")
        return " ".join(self._interpret(spec, value.split()))

    def _interpret(self, spec: Spec, words: list[str]) -> list[str]:
        order = ["swap", "around"] if spec["loosest"] == "swap" else ["around", "swap"]
        for op in order:
            w = spec[op]
            if w in words:
                i = len(words) - 1 - words[::-1].index(w)
                x, y = self._interpret(spec, words[:i]), self._interpret(spec, words[i + 1 :])
                form = spec["around_form"] if op == "around" else spec["swap_form"]
                return [c for part in form for c in (x if part == "x" else y)]
        if not words or words[0] not in spec["lexicon"] or any(t != spec["thrice"] for t in words[1:]):
            raise RuleError(f"cannot read {' '.join(words)!r}")
        return [spec["lexicon"][words[0]]] * spec["repeat"] ** (len(words) - 1)

    def words(self, spec: Spec, rng: random.Random) -> str:
        pick = rng.choice
        means = pick(["{w} means {c}", "{w} is {c}", "{w} -> {c}"])
        lex = "; ".join(means.format(w=w, c=c) for w, c in spec["lexicon"].items())
        times = {2: "twice", 3: "three times", 4: "four times"}[spec["repeat"]]
        t, a, s = spec["thrice"], spec["around"], spec["swap"]
        around = " ".join({"x": "x", "y": "y"}[p] for p in spec["around_form"])
        swap = " ".join(spec["swap_form"])
        fns = pick([
            f"'x {t}' repeats x {times}; 'x {a} y' gives {around}; 'x {s} y' gives {swap}",
            f"{t} after a word says it {times}; {a} between x and y makes {around}; {s} between x and y makes {swap}",
        ])  # fmt: skip
        tight, loose = (a, s) if spec["loosest"] == "swap" else (s, a)
        prio = pick(
            [
                f"{t} binds first, then {tight}, then {loose}",
                f"apply {t} first, {tight} next and {loose} last",
            ]
        )
        return f"{lex}. {fns}. Priority: {prio}."

    def variants(self, spec: Spec, rng: random.Random, demos=()) -> list[Spec]:
        words = list(spec["lexicon"])
        a, b = rng.sample(words, 2)
        swapped = {**spec["lexicon"], a: spec["lexicon"][b], b: spec["lexicon"][a]}
        return [
            {**spec, "lexicon": swapped},
            {**spec, "repeat": rng.choice([2, 4])},
            {**spec, "around_form": rng.choice(["xyy", "yxy"])},
            {**spec, "swap_form": "xy" if spec["swap_form"] == "yx" else "yx"},
            {**spec, "loosest": "around" if spec["loosest"] == "swap" else "swap"},
        ]


BOOK = register_book(MiniScanBook())
