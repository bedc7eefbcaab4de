"""`rule_program` teacher: proposes and applies rules for the procedural ReDis tasks, with no LLM.

ReDis (Sadeq et al., arXiv 2504.10647) samples 50 rules per training task from GPT-4o and applies
each to the demonstrations; on these CPUs no model can write rules, so this teacher writes them
from the generator's known rule (`Example.metadata.rule`, a spec of redis/rules). It answers the
two kinds of items the hypothesis stages make (redis/hypotheses.py):

- rule generation (`metadata.redis == "generate_rule"`): `n` rules per task, each the known rule
  with probability `correct`, else a plausible wrong one drawn from the rule book's siblings and
  perturbed parameters or, with probability `memorised`, a lookup table of some demonstrations
  that is wrong elsewhere (fits some demonstrations only); each in a phrasing drawn at random.
  The trace keeps the spec (`metadata.rule_spec`) so the rule can be run.
- rule application (`metadata.redis == "apply_rule"`): runs the item's rule spec on its input,
  exactly. A rule without a spec (written by a model) cannot be run: the trace records why.

Everything is seeded by (stage seed, item id, sample): reruns and resumes write the same traces.
Departure: the paper's teacher rules vary freely; these vary only as far as the rule books do.

`python_rules` applies rules that are Python programs (program hypotheses, Wang et al., arXiv
2309.05660): each distinct rule of a task runs once, on all its inputs, in redis/sandbox.py's
locked-down subprocess; a program that fails scores 0 and its trace records the reason.
"""

from __future__ import annotations

import hashlib
import random
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Literal

from pydantic import Field

from reasondistill.errors import ReasonDistillError
from reasondistill.records import Example
from reasondistill.teachers.base import TEACHERS, Teacher, TeacherConfig, Verify
from reasondistill.traces.store import TraceStore


class RuleProgramConfig(TeacherConfig):
    kind: Literal["rule_program"]
    correct: float = Field(
        0.3, ge=0, le=1, description="share of proposed rules that are the task's known rule"
    )
    memorised: float = Field(
        0.25, ge=0, le=1, description="share of wrong rules that are lookup tables of some demos"
    )
    seed: int | None = Field(None, description="None: the stage seed")


def _rng(seed: int, key: str, sample: int) -> random.Random:
    digest = hashlib.blake2b(f"{seed}/{key}/{sample}".encode(), digest_size=8).digest()
    return random.Random(int.from_bytes(digest, "big"))


class RuleProgramTeacher(Teacher):
    Config = RuleProgramConfig

    def generate(self, examples: list[Example], store: TraceStore, verify: Verify) -> None:
        from reasondistill.redis.rules import RuleError, book_for

        cfg = self.cfg
        seed = cfg.seed if cfg.seed is not None else (self.ctx.cfg.seed if self.ctx else 0)
        for ex in examples:
            kind = ex.metadata.get("redis")
            book = book_for(ex.task)
            prompt = self.template.prompt(ex.question)
            traces = []
            for s in range(cfg.n if kind == "generate_rule" else 1):
                if store.has(ex.id, s):
                    continue
                rng = _rng(seed, ex.id, s)
                if kind == "generate_rule":
                    spec = self.propose(book, ex, rng)
                    text = self.template.render(book.describe(spec, rng), None, "none")
                    traces.append(self.make_trace(ex, s, prompt, text, verify, metadata={"rule_spec": spec}))
                    continue
                spec, error, text = ex.metadata.get("rule_spec"), None, ""
                if kind != "apply_rule":
                    error = "the rule_program teacher answers ReDis rule items only (metadata.redis)"
                elif spec is None:
                    error = "no program for this rule: the rule_program teacher runs only rules it wrote"
                else:
                    try:
                        text = self.template.render(book.apply(spec, ex.metadata["input"]), None, "none")
                    except RuleError as e:
                        error = f"rule does not apply: {e}"
                traces.append(self.make_trace(ex, s, prompt, text, verify, error=error))
            store.append(traces)

    def propose(self, book, ex: Example, rng: random.Random) -> dict:
        """One rule spec for a rule-generation item: the known rule, or a wrong one near it."""
        gold = ex.metadata.get("rule")
        if gold is None:
            raise ReasonDistillError(
                f"rule_program teacher: item {ex.id!r} has no known rule (metadata.rule): it writes "
                f"rules only for procedural induction tasks (a data stage without config.path or "
                f"splits.*.config.path); use a model teacher (hf, openai)"
            )
        if rng.random() < self.cfg.correct:
            return gold
        demos = [(d.input, d.output) for d in ex.demonstrations]
        wrong = book.variants(gold, rng, demos)
        if not wrong:
            return gold
        choice = rng.choice(wrong)
        if rng.random() < self.cfg.memorised:
            return book.memorised(demos, choice, rng) or choice
        return choice


TEACHERS.register(
    "rule_program",
    RuleProgramTeacher,
    description="ReDis rules without an LLM: a procedural task's known rule and plausible wrong ones, run exactly",
    paper="arXiv 2504.10647",
)


class PythonRulesConfig(TeacherConfig):
    kind: Literal["python_rules"]
    cpu_s: int = Field(2, ge=1, description="CPU seconds per program run (all its inputs)")
    wall_s: float = Field(5.0, gt=0, description="wall-clock seconds per program run")
    memory_mb: int = Field(512, ge=64, description="address space per program run")
    workers: int = Field(2, ge=1, description="program runs in parallel (each one process)")


_FENCE = re.compile(r"```(?:python|py)?\s*\n(.*?)```", re.S)


def program_of(rule: str) -> str:
    """The Python source of a rule: a fenced code block if it has one, else the rule text itself
    (a `lambda` expression or code defining `f`)."""
    block = _FENCE.search(rule)
    return block.group(1) if block else rule


class PythonRulesTeacher(Teacher):
    """Applies Python-program rules in a sandbox; answers rule-application items only."""

    Config = PythonRulesConfig

    def generate(self, examples: list[Example], store: TraceStore, verify: Verify) -> None:
        from reasondistill.redis.sandbox import Limits, run_program

        todo = [ex for ex in examples if not store.has(ex.id, 0)]
        # Only rule applications carry a rule (text) to run; anything else (a rule-generation
        # item, whose metadata.rule is a known-rule spec, or a plain question) gets an error trace.
        other = [ex for ex in todo if ex.metadata.get("redis") != "apply_rule" or not isinstance(ex.metadata.get("rule"), str)]
        if other:
            error = "the python_rules teacher only applies rules (ReDis rule-application items): it cannot propose or answer"
            store.append([self.make_trace(ex, 0, self.template.prompt(ex.question), "", verify, error=error) for ex in other])
        skip = {ex.id for ex in other}
        by_rule: dict[tuple[str, str], list[Example]] = {}
        for ex in todo:
            if ex.id not in skip:
                by_rule.setdefault((ex.metadata.get("group", ""), ex.metadata["rule"]), []).append(ex)
        limits = Limits(cpu_s=self.cfg.cpu_s, wall_s=self.cfg.wall_s, memory_mb=self.cfg.memory_mb)

        def run(key):
            items = by_rule[key]
            return items, run_program(
                program_of(key[1]), [ex.metadata.get("input", "") for ex in items], limits
            )

        with ThreadPoolExecutor(self.cfg.workers) as pool:
            for items, result in pool.map(run, list(by_rule)):
                traces = []
                for ex, out, err in zip(items, result.outputs, result.errors, strict=True):
                    prompt = self.template.prompt(ex.question)
                    text, error = "", err or result.reason
                    if out is not None:
                        try:
                            text, error = self.template.render(out, None, "none"), None
                        except ValueError as e:  # a multi-line or padded output cannot be an answer
                            error = f"unusable output: {e}"
                    usage = {"sandbox_wall_s": round(result.wall_s, 3), "network": result.network}
                    traces.append(self.make_trace(ex, 0, prompt, text, verify, error=error, usage=usage))
                store.append(traces)


TEACHERS.register(
    "python_rules",
    PythonRulesTeacher,
    description="applies rules written as Python programs in a locked-down subprocess (program hypotheses)",
    paper="arXiv 2309.05660",
)
