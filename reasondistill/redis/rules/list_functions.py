"""List Functions rules: the 17 functions of reasoning-gym's list_functions generators as specs.

GENERATOR_SPECS maps reasoning-gym's generate_<k> to the spec of the function it samples, so a
procedural task knows its rule; tests/unit/test_redis_rules.py checks every spec reproduces its
generator's outputs.
"""

from __future__ import annotations

import random

from reasondistill.redis.rules.base import RuleBook, RuleError, Spec, parse_list, register_book, show_list

GENERATOR_SPECS: dict[int, Spec] = {
    0: {"family": "identity"},
    1: {"family": "pick", "index": 2},
    2: {"family": "reverse"},
    3: {"family": "sum_unique_below", "t": 30},
    4: {"family": "count_equal", "value": 5},
    5: {"family": "before_parity", "parity": "even"},
    6: {"family": "add_index", "sign": 1},
    7: {"family": "pick_by", "which": "last"},
    8: {"family": "length"},
    9: {"family": "total"},
    10: {"family": "sort", "order": "ascending"},
    11: {"family": "sort", "order": "descending"},
    12: {"family": "bump_ends", "which": "both"},
    13: {"family": "is_sorted", "order": "ascending"},
    14: {"family": "divisible", "by": 10},
    15: {"family": "scale_end", "which": "last", "factor": 2},
    16: {"family": "affine", "a": 2, "b": -4},
}
_ORD = {0: "first", 1: "second", 2: "third", 3: "fourth", 4: "fifth"}


def _at(xs: list[int], i: int) -> int:
    if not -len(xs) <= i < len(xs):
        raise RuleError(f"no element at position {i}")
    return xs[i]


class ListFunctionsBook(RuleBook):
    task = "list_functions"

    def run(self, spec: Spec, value: str) -> str:  # noqa: C901  (one branch per family)
        xs, f = parse_list(value), spec["family"]
        if f == "identity":
            return show_list(xs)
        if f == "reverse":
            return show_list(xs[::-1])
        if f == "sort":
            return show_list(sorted(xs, reverse=spec["order"] == "descending"))
        if f == "pick":
            return show_list([_at(xs, spec["index"])])
        if f == "pick_by":
            return show_list([_at(xs, _at(xs, -1 if spec["which"] == "last" else 0))])
        if f == "sum_unique_below":
            return show_list([sum(x for x in set(xs) if x < spec["t"])])
        if f == "count_equal":
            return show_list([xs.count(spec["value"])])
        if f == "before_parity":
            want = 0 if spec["parity"] == "even" else 1
            return show_list([xs[i - 1] for i in range(1, len(xs)) if xs[i] % 2 == want])
        if f == "add_index":
            return show_list([x + spec["sign"] * i for i, x in enumerate(xs)])
        if f == "length":
            return show_list([len(xs)])
        if f == "total":
            return show_list([sum(xs)])
        if f == "maximum":
            return show_list([max(xs)] if xs else [])
        if f == "bump_ends":
            out, which = list(xs), spec["which"]
            if not out:
                raise RuleError("empty list")
            if which == "all":
                return show_list([x + 1 for x in out])
            if which in ("both", "first"):
                out[0] += 1
            if which in ("both", "last"):
                out[-1] += 1
            return show_list(out)
        if f == "is_sorted":
            ok = xs == sorted(xs, reverse=spec["order"] == "descending")
            return show_list([int(ok)])
        if f == "divisible":
            return show_list([int(_at(xs, 0) % spec["by"] == 0)])
        if f == "scale_end":
            return show_list([_at(xs, -1 if spec["which"] == "last" else 0) * spec["factor"]])
        if f == "affine":
            return show_list([spec["a"] * _at(xs, 0) + spec["b"]])
        raise RuleError(f"unknown family {f!r}")

    def words(self, spec: Spec, rng: random.Random) -> str:  # noqa: C901
        f, pick = spec["family"], rng.choice
        if f == "identity":
            return pick(
                [
                    "Return the list unchanged.",
                    "The output is the input list as it is.",
                    "Copy the input list.",
                ]
            )
        if f == "reverse":
            return pick(
                [
                    "Reverse the list.",
                    "Write the elements in the opposite order.",
                    "The output is the input read backwards.",
                ]
            )
        if f == "sort":
            o = spec["order"]
            return pick(
                [
                    f"Sort the list in {o} order.",
                    f"Arrange the numbers in {o} order.",
                    f"The output is the input sorted, {o}.",
                ]
            )
        if f == "pick":
            i = spec["index"]
            nth = _ORD.get(i, f"element number {i + 1}")
            return pick(
                [
                    f"Keep only the {nth} element.",
                    f"The output is a list holding the {nth} element of the input.",
                ]
            )
        if f == "pick_by":
            w = spec["which"]
            return pick([f"The {w} element is a position (counting from 0); output the element at that position.",
                         f"Use the {w} number as a zero-based index and return the element there."])  # fmt: skip
        if f == "sum_unique_below":
            t = spec["t"]
            return pick(
                [
                    f"Add up the distinct numbers smaller than {t}.",
                    f"Sum each different value below {t} once; output [sum].",
                ]
            )
        if f == "count_equal":
            v = spec["value"]
            return pick(
                [f"Count how many times {v} appears.", f"The output is the number of {v}s in the list."]
            )
        if f == "before_parity":
            p = spec["parity"]
            return pick(
                [
                    f"Keep every element that is followed by an {p} number.",
                    f"Output the elements whose next element is {p}.",
                ]
            )
        if f == "add_index":
            op = "Add" if spec["sign"] > 0 else "Subtract"
            return pick([f"{op} each element's position (from 0) {'to' if op == 'Add' else 'from'} it.",
                         f"{op} the zero-based index {'to' if op == 'Add' else 'from'} every number."])  # fmt: skip
        if f == "length":
            return pick(["Output the length of the list.", "Count the elements."])
        if f == "total":
            return pick(["Output the sum of all the numbers.", "Add up every element."])
        if f == "maximum":
            return pick(["Output the largest number.", "Keep only the maximum."])
        if f == "bump_ends":
            w = {"both": "the first and the last element", "first": "the first element",
                 "last": "the last element", "all": "every element"}[spec["which"]]  # fmt: skip
            return pick([f"Add 1 to {w}.", f"Increase {w} by one."])
        if f == "is_sorted":
            o = spec["order"]
            return pick(
                [f"Output [1] if the list is in {o} order, otherwise [0].", f"[1] when sorted {o}, else [0]."]
            )
        if f == "divisible":
            b = spec["by"]
            return pick(
                [
                    f"Output [1] if the number is divisible by {b}, otherwise [0].",
                    f"[1] for multiples of {b}, [0] for others.",
                ]
            )
        if f == "scale_end":
            w, k = spec["which"], spec["factor"]
            return pick(
                [
                    f"Multiply the {w} element by {k} and output it alone.",
                    f"The output is [{k} times the {w} number].",
                ]
            )
        if f == "affine":
            a, b = spec["a"], spec["b"]
            sign = "minus" if b < 0 else "plus"
            return pick(
                [
                    f"Output {a} times the number {sign} {abs(b)}.",
                    f"Compute {a}x {'-' if b < 0 else '+'} {abs(b)}.",
                ]
            )
        raise RuleError(f"unknown family {f!r}")

    def variants(self, spec: Spec, rng: random.Random, demos=()) -> list[Spec]:  # noqa: C901
        f = spec["family"]
        if f == "identity":
            return [{"family": "reverse"}, {"family": "sort", "order": "ascending"}]
        if f == "reverse":
            return [{"family": "identity"}, {"family": "sort", "order": "descending"}]
        if f == "sort":
            other = "descending" if spec["order"] == "ascending" else "ascending"
            return [{"family": "sort", "order": other}, {"family": "identity"}]
        if f == "pick":
            i = spec["index"]
            return [{"family": "pick", "index": j} for j in (i - 1, i + 1) if j >= 0] + [
                {"family": "pick_by", "which": "first"}
            ]
        if f == "pick_by":
            return [
                {"family": "pick_by", "which": "first" if spec["which"] == "last" else "last"},
                {"family": "pick", "index": 1},
            ]
        if f == "sum_unique_below":
            return [{"family": "sum_unique_below", "t": t} for t in (20, 40) if t != spec["t"]] + [
                {"family": "total"}
            ]
        if f == "count_equal":
            v = spec["value"]
            return [{"family": "count_equal", "value": v + 1}, {"family": "length"}]
        if f == "before_parity":
            return [{"family": "before_parity", "parity": "odd" if spec["parity"] == "even" else "even"}]
        if f == "add_index":
            return [{"family": "add_index", "sign": -spec["sign"]}, {"family": "identity"}]
        if f in ("length", "total", "maximum"):
            return [{"family": g} for g in ("length", "total", "maximum") if g != f]
        if f == "bump_ends":
            return [{"family": f, "which": w} for w in ("both", "first", "last", "all") if w != spec["which"]]
        if f == "is_sorted":
            return [{"family": f, "order": "descending" if spec["order"] == "ascending" else "ascending"}]
        if f == "divisible":
            return [{"family": f, "by": 5 if spec["by"] == 10 else 10}, {"family": f, "by": 4}]
        if f == "scale_end":
            return [
                {**spec, "factor": spec["factor"] + 1},
                {**spec, "which": "first" if spec["which"] == "last" else "last"},
            ]
        if f == "affine":
            a, b = spec["a"], spec["b"]
            return [{**spec, "b": b + 2}, {**spec, "b": -b}, {**spec, "a": a + 1}]
        return []


BOOK = register_book(ListFunctionsBook())
