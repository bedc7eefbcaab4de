"""1D-ARC rules: the reasoning-gym arc_1d task families we can run as programs.

reasoning-gym's arc_1d functions generate an (input, output) pair together; a rule here maps any
input to its output, which a wrong rule's predictions on the demonstrations need. RG_SPECS maps
each supported reasoning-gym task name to its spec (tests/unit/test_redis_rules.py checks every
spec reproduces its generator); the other names (blocks touching dots, recolouring by size, ...)
are not supported by the procedural arc_1d task. Note reasoning-gym's "gravity_right" packs the
pixels to the LEFT (its "_left" names are mirror images): specs name the direction that happens.
"""

from __future__ import annotations

import random

from reasondistill.redis.rules.base import RuleBook, RuleError, Spec, parse_list, register_book, show_list


def _rg_specs() -> dict[str, Spec]:
    specs: dict[str, Spec] = {}
    for k in (1, 2, 3, 4):
        for kind in ("solid", "colorful"):
            for d in ("right", "left"):
                specs[f"move_{k}pix_{kind}_{d}"] = {"family": "shift", "k": k, "dir": d, "wrap": False}
                specs[f"move_{k}pix_{kind}_wrapped_{d}"] = {"family": "shift", "k": k, "dir": d, "wrap": True}
    for name, d in (("right", "left"), ("left", "right")):  # see the module docstring
        specs[f"gravity_{name}"] = {"family": "pack", "dir": d}
        specs[f"gravity_counting_{name}"] = {"family": "count_ones", "dir": d}
        specs[f"gravity_one_step_{name}"] = {"family": "step", "dir": d}
    specs["move_block_by_own_size"] = {"family": "shift_by_size"}
    specs["change_to_five"] = {"family": "recolor", "color": 5}
    specs["two_points_and_fill"] = {"family": "fill_between"}
    specs["two_points_and_fill_inv"] = {"family": "keep_ends"}
    return specs


RG_SPECS: dict[str, Spec] = _rg_specs()


def _shift(xs: list[int], k: int, wrap: bool) -> list[int]:
    n, out = len(xs), [0] * len(xs)
    for i, v in enumerate(xs):
        if v:
            j = (i + k) % n if wrap else i + k
            if 0 <= j < n:
                out[j] = v
    return out


def _nonzero(xs: list[int]) -> list[int]:
    return [i for i, v in enumerate(xs) if v]


class Arc1DBook(RuleBook):
    task = "arc_1d"

    def run(self, spec: Spec, value: str) -> str:
        xs, f = parse_list(value), spec["family"]
        right = spec.get("dir") == "right"
        if f == "shift":
            return show_list(_shift(xs, spec["k"] if right else -spec["k"], spec["wrap"]))
        if f == "shift_by_size":
            idx = _nonzero(xs)
            return show_list(_shift(xs, idx[-1] - idx[0] + 1, False) if idx else xs)
        if f == "pack":
            vals = [v for v in xs if v]
            pad = [0] * (len(xs) - len(vals))
            return show_list(pad + vals if right else vals + pad)
        if f == "count_ones":
            c = len(_nonzero(xs))
            return show_list([0] * (len(xs) - c) + [1] * c if right else [1] * c + [0] * (len(xs) - c))
        if f == "step":
            a = xs[::-1] if right else list(xs)
            for i in range(1, len(a)):  # left to right, on the updated row: a run moves as a whole
                if a[i] != 0 and a[i - 1] == 0:
                    a[i - 1], a[i] = a[i], 0
            return show_list(a[::-1] if right else a)
        if f == "recolor":
            return show_list([spec["color"] if v else 0 for v in xs])
        if f in ("fill_between", "keep_ends"):
            idx = _nonzero(xs)
            if not idx:
                raise RuleError("no coloured pixel")
            lo, hi, c = idx[0], idx[-1], xs[idx[0]]
            if f == "fill_between":
                return show_list([c if lo <= i <= hi else v for i, v in enumerate(xs)])
            return show_list([c if i in (lo, hi) else 0 for i in range(len(xs))])
        raise RuleError(f"unknown family {f!r}")

    def words(self, spec: Spec, rng: random.Random) -> str:
        f, pick, d = spec["family"], rng.choice, spec.get("dir")
        if f == "shift":
            k, s = spec["k"], "s" if spec["k"] > 1 else ""
            wrap = " wrapping around the end" if spec["wrap"] else ""
            return pick([f"Move the coloured block {k} cell{s} to the {d}{wrap}.",
                         f"Shift every non-zero cell {k} position{s} {d}{wrap}; the rest is 0.",
                         f"The object slides {k} step{s} to the {d}{wrap}."])  # fmt: skip
        if f == "shift_by_size":
            return pick(
                [
                    "Move the block to the right by its own length.",
                    "The block jumps right by as many cells as it is long.",
                ]
            )
        if f == "pack":
            return pick([f"Push all coloured cells to the {d} end, keeping their order.",
                         f"Gravity pulls the non-zero numbers to the {d}; zeros fill the other side."])  # fmt: skip
        if f == "count_ones":
            return pick([f"Count the coloured cells and write that many 1s at the {d} end, zeros elsewhere.",
                         f"Replace the row by n ones packed to the {d}, where n is the number of non-zero cells."])  # fmt: skip
        if f == "step":
            return pick([f"Every coloured cell moves one step {d} if the cell there is empty.",
                         f"Shift each non-zero cell by one to the {d} when that cell is 0."])  # fmt: skip
        if f == "recolor":
            c = spec["color"]
            return pick([f"Paint every coloured cell {c}.", f"Replace each non-zero number by {c}."])
        if f == "fill_between":
            return pick(["Fill the gap between the two coloured cells with their colour.",
                         "Connect the two dots: every cell between them takes their colour."])  # fmt: skip
        if f == "keep_ends":
            return pick(["Keep only the two ends of the coloured segment; clear the inside.",
                         "Hollow out the line: its first and last cell stay, the cells between become 0."])  # fmt: skip
        raise RuleError(f"unknown family {f!r}")

    def variants(self, spec: Spec, rng: random.Random, demos=()) -> list[Spec]:
        f = spec["family"]
        flip = {"left": "right", "right": "left"}
        if f == "shift":
            k = spec["k"]
            out = [{**spec, "k": j} for j in (k - 1, k + 1) if j >= 1]
            return out + [{**spec, "dir": flip[spec["dir"]]}, {**spec, "wrap": not spec["wrap"]}]
        if f == "shift_by_size":
            return [{"family": "shift", "k": k, "dir": "right", "wrap": False} for k in (1, 2)]
        if f in ("pack", "count_ones", "step"):
            others = [{"family": g, "dir": spec["dir"]} for g in ("pack", "count_ones", "step") if g != f]
            return [{**spec, "dir": flip[spec["dir"]]}, *others]
        if f == "recolor":
            return [{**spec, "color": c} for c in (1, 8) if c != spec["color"]]
        if f in ("fill_between", "keep_ends"):
            return [
                {"family": "keep_ends" if f == "fill_between" else "fill_between"},
                {"family": "recolor", "color": 5},
            ]
        return []


BOOK = register_book(Arc1DBook())
