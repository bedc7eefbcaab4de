"""Pivot lexicons: the markers of the four pivot types, and the cues the phase rules read.

Lippmann & Yang (COLM 2025, arXiv 2504.01738) count four kinds of "pivots" in DeepSeek-R1
traces: realization ("Wait"), verification ("Let me check"), exploration ("What if") and
integration ("Now I see how"). Their exact lexicon is not public; ours is below, in plain
English, and every list can be edited in a recipe (`lexicon: {kind: default, add: {...},
remove: {...}}`) or replaced by a YAML file (`lexicon: {kind: file, path: my.yaml}`).

Marker syntax (docs/style.md): a marker is a Python regular expression matched without regard
to case, and only as whole words: "wait" never counts inside "awaiting". Outside a [...] class a
space matches any run of whitespace and an apostrophe matches ' or the typographic ’. Where two
markers start at the same place the longer one wins ("let me double-check" is one verification
pivot, not also "check"); matches never overlap.

Cues are not pivots; the phase rules (phases.py) read them: `work` ends the framing phase (a
worked step: an equation), `conclusion` may open the synthesis phase ("the answer is").
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from reasondistill.config import StrictModel
from reasondistill.errors import ReasonDistillError
from reasondistill.registry import Registry

PIVOT_TYPES = ("realization", "verification", "exploration", "integration")
CUE_TYPES = ("work", "conclusion")

# English defaults, written from reading R1-style traces: common spellings and variants.
# fmt: off
DEFAULT_PIVOTS: dict[str, list[str]] = {
    "realization": [
        "wait", "hm+", "hmm+", "oh", "ah", "aha", "oops", "actually", "hold on", "on second thought",
        "i realize[ds]?", "i just realized", "that's not right", "that can't be right", "that's wrong",
        "i made a mistake", "my mistake", "scratch that", "i was wrong", "not quite", "no,? wait",
    ],
    "verification": [
        "let me (?:double[- ]?)?check", "let's (?:double[- ]?)?check", "double[- ]?check(?:ing|ed|s)?",
        "check(?:ing|ed|s)?", "re-?check(?:ing|ed|s)?", "verif(?:y|ying|ied|ies|ication)", "let me verify",
        "confirm(?:s|ed|ing)?", "make sure", "sanity[- ]check", "cross[- ]check", "re-?examine",
        "plug(?:ging)? (?:it |this |that |these |them )?back", "does (?:that|this) make sense",
        "is (?:that|this) right", "looks right",
    ],
    "exploration": [
        "what if", "alternatively", "another (?:approach|way|option|idea|method)", "let me try", "let's try",
        "try(?:ing)?", "maybe", "perhaps", "suppose", "instead", "or (?:maybe|perhaps)",
        "let me (?:consider|think)", "let's (?:consider|think)", "let me see", "let's see", "i wonder",
        "one way", "on the other hand",
    ],
    "integration": [
        "now i see(?: how)?", "i see how", "put(?:ting)? (?:it|this|that|these|them|everything) (?:all )?together",
        "so overall", "overall", "in summary", "to summarize", "in conclusion", "this means", "that means",
        "therefore", "thus", "hence", "combining", "it all (?:fits|adds up|makes sense)", "that makes sense",
        "which gives", "all together",
    ],
}
DEFAULT_CUES: dict[str, list[str]] = {
    # '=' or a numbered step: the trace has started working the problem (framing is over).
    "work": ["=", r"\bstep \d+", r"^\s*\d+[.)]\s"],
    "conclusion": [
        r"\b(?:the )?(?:final )?answer (?:is|should be|would be)\b", r"\bfinal answer\b",
        r"\bthe (?:total|result|sum|product) is\b", r"\bin total\b", r"\baltogether\b",
    ],
}
# fmt: on


class Lexicon:
    """A compiled lexicon: one regex finds every pivot of every type in one pass.

    The regex starts with a non-word character (`\\W`), so the engine's fast scan skips to
    the next space or punctuation mark in C before trying any marker, and word boundaries come
    for free; texts are matched with a leading space (`find`). Measured 8-12 MB/s on one core,
    where an alternation behind a look-behind ran at 1 MB/s (bench/style_throughput.py)."""

    def __init__(self, pivots: dict[str, list[str]], cues: dict[str, list[str]]) -> None:
        unknown = (set(pivots) - set(PIVOT_TYPES)) | (set(cues) - set(CUE_TYPES))
        if unknown:
            raise ReasonDistillError(
                f"lexicon: unknown type(s) {sorted(unknown)}; pivot types: {', '.join(PIVOT_TYPES)}; "
                f"cue types: {', '.join(CUE_TYPES)}"
            )
        self.pivots = {t: list(pivots.get(t, [])) for t in PIVOT_TYPES}
        self.cues = {t: list(cues.get(t, [])) for t in CUE_TYPES}
        entries = [(t, m) for t in PIVOT_TYPES for m in self.pivots[t]]
        if not entries:
            raise ReasonDistillError("lexicon: no pivot markers")
        for ptype, marker in entries:
            _check_regex(marker, f"lexicon marker {marker!r} ({ptype})")
        self._group_type = {f"m{i}": ptype for i, (ptype, _) in enumerate(entries)}
        trie = _trie([(_lower_regex(m), f"m{i}") for i, (_, m) in enumerate(entries)])
        # One pass for every marker: a non-word character, then a trie of the markers' literal
        # heads. The engine skips in C to the next non-word character, and every branch opens
        # with a plain literal it tests before entering; a flat alternation of groups (or a
        # case-folded one) enters every branch at every position: 0.8 MB/s instead of ~10
        # (measured). Texts are lower-cased before matching, so literals need no case folding.
        self.regex = re.compile(r"\W" + trie + r"(?!\w)")
        for t, patterns in self.cues.items():
            for p in patterns:
                _check_regex(p, f"lexicon cue {p!r} ({t})")
        self.work = _any(self.cues["work"])
        self.conclusion = _any(self.cues["conclusion"])

    def find(self, text: str) -> list[tuple[int, str]]:
        """(offset in `text`, pivot type) of every pivot, in order."""
        # The leading space lets a marker at offset 0 match `\W`; offsets point at the marker.
        return [(m.start(), self._group_type[m.lastgroup]) for m in self.regex.finditer(" " + text.lower())]

    def find_lower(self, lowered: str) -> list[tuple[int, str]]:
        """`find` for a text already lower-cased and prefixed with one space (offsets into it)."""
        return [(m.start() + 1, self._group_type[m.lastgroup]) for m in self.regex.finditer(lowered)]

    def to_dict(self) -> dict:
        return {"pivots": self.pivots, "cues": self.cues}


def marker_regex(marker: str) -> str:
    """A marker as a regex: outside [...] a space is `\\s+` and an apostrophe is ['’]."""
    out, in_class, escaped = [], False, False
    for ch in marker:
        if escaped:
            out.append(ch)
            escaped = False
        elif ch == "\\":
            out.append(ch)
            escaped = True
        elif ch == "[" and not in_class:
            in_class = True
            out.append(ch)
        elif ch == "]" and in_class:
            in_class = False
            out.append(ch)
        elif ch == " " and not in_class:
            out.append(r"\s+")
        elif ch in "'’" and not in_class:
            out.append("['’]")
        else:
            out.append(ch)
    return "".join(out)


def _lower_regex(pattern: str) -> str:
    """`pattern` with its letters lower-cased, escape sequences (\\W, \\d, ...) kept."""
    out, escaped = [], False
    for ch in pattern:
        out.append(ch if escaped else ch.lower())
        escaped = ch == "\\" and not escaped
    return "".join(out)


def _split_head(marker: str) -> tuple[str, str]:
    """(literal head, regex rest) of a marker: the head is its leading plain letters and digits
    that no quantifier follows ("check(?:ing)?" -> "check", "(?:ing)?"; "hm+" -> "h", "m+")."""
    if _top_level_bar(marker):
        return "", marker  # "wait|hold on": no head is common to its alternatives
    i = 0
    while i < len(marker) and marker[i].isalnum() and marker[i + 1 : i + 2] not in ("?", "*", "+", "{"):
        i += 1
    return marker[:i], marker[i:]


def _top_level_bar(pattern: str) -> bool:
    """Whether `pattern` is an alternation at its top level (a '|' outside groups and classes)."""
    depth, in_class, escaped = 0, False, False
    for ch in pattern:
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif in_class:
            in_class = ch != "]"
        elif ch == "[":
            in_class = True
        elif ch in "()":
            depth += 1 if ch == "(" else -1
        elif ch == "|" and depth == 0:
            return True
    return False


def _trie(items: list[tuple[str, str]]) -> str:
    """One regex matching any of `items` (marker, group name); the matched marker's empty named
    group closes last, so `match.lastgroup` names it. Longer literal continuations come first."""
    root: dict = {}
    for marker, name in items:
        head, rest = _split_head(marker)
        node = root
        for ch in head:
            node = node.setdefault(ch, {})
        node.setdefault("", []).append((marker_regex(rest), name))

    def emit(node: dict) -> str:
        parts = [re.escape(ch) + emit(child) for ch, child in sorted((k, v) for k, v in node.items() if k)]
        ends = sorted(node.get("", []), key=lambda e: -len(e[0]))
        parts += [(f"(?:{rest})" if rest else "") + f"(?P<{name}>)" for rest, name in ends]
        return parts[0] if len(parts) == 1 else "(?:" + "|".join(parts) + ")"

    return emit(root)


def _check_regex(pattern: str, what: str) -> None:
    try:
        compiled = re.compile(pattern)
    except re.error as e:
        raise ReasonDistillError(f"{what}: not a valid regular expression ({e})") from None
    if compiled.match(""):
        raise ReasonDistillError(f"{what}: matches the empty string")


def _any(patterns: list[str]) -> re.Pattern | None:
    return (
        re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE | re.MULTILINE) if patterns else None
    )


# -- recipe configs: the `pivot lexicons` registry ------------------------------------------
TypeLists = dict[
    Literal["realization", "verification", "exploration", "integration", "work", "conclusion"], list[str]
]


class LexiconConfig(StrictModel):
    kind: str
    add: TypeLists = Field(default_factory=dict, description="extra markers / cues per type")
    remove: TypeLists = Field(default_factory=dict, description="markers / cues to drop, as written")

    def base(self) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
        raise NotImplementedError

    def build(self) -> Lexicon:
        """The compiled lexicon: the base lists, minus `remove`, plus `add`."""
        pivots, cues = self.base()
        lists = {t: list(ms) for t, ms in (pivots | cues).items()}
        missing = [(t, m) for t, ms in self.remove.items() for m in ms if m not in lists.get(t, [])]
        if missing:
            raise ReasonDistillError(f"lexicon: `remove` names markers it does not have: {missing}")
        for t, ms in self.remove.items():
            lists[t] = [m for m in lists[t] if m not in ms]
        for t, ms in self.add.items():
            lists[t] = lists.get(t, []) + [m for m in ms if m not in lists.get(t, [])]
        return Lexicon({t: lists.get(t, []) for t in PIVOT_TYPES}, {t: lists.get(t, []) for t in CUE_TYPES})


class DefaultLexicon(LexiconConfig):
    """English markers of the four pivot types (arXiv 2504.01738's categories; our word lists)."""

    kind: Literal["default"] = "default"

    def base(self):
        return {t: list(v) for t, v in DEFAULT_PIVOTS.items()}, {t: list(v) for t, v in DEFAULT_CUES.items()}


class FileLexicon(LexiconConfig):
    """Markers read from a YAML file: {pivots: {type: [markers]}, cues: {...}, extends: default|none}."""

    kind: Literal["file"]
    path: str = Field(min_length=1)

    @model_validator(mode="after")
    def _readable(self):
        self.base()  # a bad file fails at plan time, naming it
        return self

    def base(self):
        import yaml

        from reasondistill.records import read_text

        path = Path(self.path)
        if not path.is_file():
            raise ValueError(f"lexicon file {self.path!r} does not exist")
        try:
            doc = yaml.safe_load(read_text(path, "lexicon: ")) or {}
        except yaml.YAMLError as e:
            raise ValueError(f"lexicon file {self.path}: not YAML ({e})") from None
        if not isinstance(doc, dict) or set(doc) - {"pivots", "cues", "extends"}:
            raise ValueError(f"lexicon file {self.path}: a mapping with keys pivots, cues, extends")
        extends = doc.get("extends", "default")
        if extends not in ("default", "none"):
            raise ValueError(f"lexicon file {self.path}: extends must be default or none, got {extends!r}")
        pivots, cues = DefaultLexicon().base() if extends == "default" else ({}, {})
        for key, target in (("pivots", pivots), ("cues", cues)):
            for t, markers in (doc.get(key) or {}).items():
                if not isinstance(markers, list) or not all(isinstance(m, str) for m in markers):
                    raise ValueError(f"lexicon file {self.path}: {key}.{t} must be a list of strings")
                target[t] = markers  # a type listed in the file replaces the default list
        return pivots, cues


LEXICONS: Registry[type[LexiconConfig]] = Registry("pivot lexicon", "pivot lexicons")
LEXICONS.register("default", DefaultLexicon, paper="arXiv 2504.01738")
LEXICONS.register("file", FileLexicon)

LexiconField = LEXICONS.config_union()


def lexicon_field(description: str = "pivot markers and phase cues (traces/style/lexicon.py)"):
    return Field(default_factory=DefaultLexicon, description=description)
