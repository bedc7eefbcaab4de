"""ACRE rules (abstract causal reasoning, blicket detectors): which objects are blickets.

The rule a set of demonstrations supports (`infer`): every object seen in an "off" trial is not a
blicket; in each "on" trial, at least one object that is not a known non-blicket is a blicket (a
`group`; one object alone is a known blicket). A query is on when it holds a known blicket or a
whole group, off when every object is a known non-blicket, undetermined otherwise. On 2,000
reasoning-gym ACRE queries this gives the dataset's label every time (tests/unit/test_redis_rules.py),
backward blocking and screening-off included.

Wrong rules: reasoning by covariation (every object ever seen with the light on is a blicket:
what ACRE is built to expose), a closed world (an undetermined case is called off: fits every
demonstration, fails the undetermined queries), one blicket forgotten, one attribute taken for
the cause ("every metal object is a blicket").
"""

from __future__ import annotations

import ast
import random
from collections.abc import Sequence

from reasondistill.redis.rules.base import RuleBook, RuleError, Spec, register_book


def objects(value: str) -> list[str]:
    """The object names of an ACRE input: str() of a list of names, as the authors' prompts show it."""
    try:
        out = ast.literal_eval(value)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):  # {[1]: 2}, deep nesting
        raise RuleError(f"not a list of objects: {value[:40]!r}") from None
    if not isinstance(out, list) or not all(isinstance(x, str) for x in out):
        raise RuleError(f"not a list of objects: {value[:40]!r}")
    return out


def infer(demos: Sequence[tuple[str, str]]) -> Spec:
    """The rule the demonstrations support (see the module docstring)."""
    trials = [(set(objects(i)), o) for i, o in demos]
    non = sorted(set().union(*[s for s, o in trials if o == "off"]))
    groups = [sorted(s - set(non)) for s, o in trials if o == "on"]
    blickets = sorted({g[0] for g in groups if len(g) == 1})
    multi = [g for g in groups if len(g) > 1 and not set(g) & set(blickets)]
    unique = [list(g) for g in dict.fromkeys(tuple(g) for g in multi)]
    return {"family": "blickets", "blickets": blickets, "nonblickets": non, "groups": unique, "closed": False}


def _join(names: Sequence[str]) -> str:
    return ", ".join(names) if names else "none"


class AcreBook(RuleBook):
    task = "acre"

    def run(self, spec: Spec, value: str) -> str:
        present = set(objects(value))
        if spec["family"] == "attribute":
            return "on" if any(spec["attr"] in name.split() for name in present) else "off"
        if spec["family"] != "blickets":
            raise RuleError(f"unknown family {spec['family']!r}")
        if present & set(spec["blickets"]) or any(set(g) <= present for g in spec["groups"]):
            return "on"
        if present <= set(spec["nonblickets"]) or spec["closed"]:
            return "off"
        return "undetermined"

    def words(self, spec: Spec, rng: random.Random) -> str:
        pick = rng.choice
        if spec["family"] == "attribute":
            a = spec["attr"]
            return pick([f"Every {a} object is a blicket: the light is on when one is present, off otherwise.",
                         f"The light turns on exactly when something {a} is on the detector."])  # fmt: skip
        parts = [pick(["Blickets: ", "These objects turn the light on: "]) + _join(spec["blickets"]) + "."]
        parts.append(pick(["Not blickets: ", "These never turn it on: "]) + _join(spec["nonblickets"]) + ".")
        for g in spec["groups"]:
            parts.append(f"At least one of {' or '.join(g)} is a blicket.")
        if spec["closed"]:
            parts.append("The light is on when a blicket is present and off in every other case.")
        else:
            parts.append(pick([
                "On if a blicket (or a whole group above) is present, off if every object is a non-blicket, "
                "undetermined otherwise.",
                "The light is on with any blicket, off with only non-blickets, and undetermined when it "
                "depends on objects of unknown status.",
            ]))  # fmt: skip
        return " ".join(parts)

    def variants(self, spec: Spec, rng: random.Random, demos: Sequence[tuple[str, str]] = ()) -> list[Spec]:
        if spec["family"] != "blickets":
            return []
        out = [{**spec, "closed": True}]
        if demos:  # covariation: everything ever seen with the light on
            seen_on = sorted(set().union(*[set(objects(i)) for i, o in demos if o == "on"]))
            rest = sorted({x for i, _ in demos for x in objects(i)} - set(seen_on))
            out.append(
                {
                    "family": "blickets",
                    "blickets": seen_on,
                    "nonblickets": rest,
                    "groups": [],
                    "closed": False,
                }
            )
        if spec["blickets"]:
            drop = rng.choice(spec["blickets"])
            out.append({**spec, "blickets": [b for b in spec["blickets"] if b != drop]})
            out.append({"family": "attribute", "attr": rng.choice(drop.split())})
        return out


BOOK = register_book(AcreBook())
