"""The four prompts of each in-context induction task (ReDis, Sadeq et al., arXiv 2504.10647).

The authors' code (config/prompts.json of NafisSadeq/reasoning-distillation) has, per task, a
rule-generation prompt, a rule-application prompt and a two-part direct few-shot prompt; the
wording here is our own, in that spirit. Layout also follows theirs: demonstrations as
"Input: ...\\nOutput: ..." lines, a rule application as the rule followed by "Input: ...".

Each text is the *question* a prompt template (traces/templates) wraps, and every reply is one
"Answer: ..." line (the template's format), so any teacher or student reads and writes them the
same way. The last sentence of every prompt says so, for models that were not trained on it.

Module of plain strings: imported by the tasks (direct few-shot questions) and by the ReDis stages.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from reasondistill.errors import ReasonDistillError

ANSWER_LINE = "Reply with one line: 'Answer: ' followed by {what}."


@dataclass(frozen=True)
class TaskPrompts:
    generate_rule: str  # then the demonstrations
    apply_rule: str  # then "Rule: ...", "Input: ..."
    fewshot_head: str  # direct few-shot, part 1: then the demonstrations
    fewshot_tail: str  # part 2: then "Input: <query>"
    output: str  # how an output is described in the answer line


_LISTS = TaskPrompts(
    generate_rule="Each input list below is turned into its output list by the same rule. Find that rule.",
    apply_rule="Apply the rule to the input list.",
    fewshot_head="Each input list below is turned into its output list by the same rule.",
    fewshot_tail="Apply the same rule to this input.",
    output="the output list",
)

PROMPTS: dict[str, TaskPrompts] = {
    "arc_1d": _LISTS,
    "list_functions": _LISTS,
    "acre": TaskPrompts(
        generate_rule=(
            "Each input is a set of objects put on a detector; some objects (blickets) turn its light on. "
            "The output is on, off, or undetermined when the examples cannot tell. Find the rule."
        ),
        apply_rule="Use the rule to say whether the light is on, off or undetermined for the input objects.",
        fewshot_head=(
            "Each input is a set of objects put on a detector; some objects turn its light on. "
            "The output is on, off, or undetermined when the examples cannot tell."
        ),
        fewshot_tail="Give the output for this input.",
        output="on, off or undetermined",
    ),
    "mini_scan": TaskPrompts(
        generate_rule=(
            "Each input is a phrase of made-up words; its output is a sequence of colours. Find the rules "
            "that map words to colours and how the function words combine them, with their priority."
        ),
        apply_rule="Use the rules to translate the input phrase into colours.",
        fewshot_head="Each input is a phrase of made-up words; its output is a sequence of colours.",
        fewshot_tail="Translate this input in the same way.",
        output="the colours separated by spaces",
    ),
}


def prompts_for(task: str) -> TaskPrompts:
    if task not in PROMPTS:
        raise ReasonDistillError(
            f"no ReDis prompts for task {task!r} (not an induction task); known: {', '.join(sorted(PROMPTS))}"
        )
    return PROMPTS[task]


def demo_lines(demos: Sequence[tuple[str, str]]) -> str:
    return "\n".join(f"Input: {i}\nOutput: {o}" for i, o in demos)


def rule_generation_question(task: str, demos: Sequence[tuple[str, str]]) -> str:
    """What a model sees to propose a rule for a task's demonstrations (its answer: the rule)."""
    p = prompts_for(task)
    return f"{p.generate_rule}\n\n{demo_lines(demos)}\n\n{ANSWER_LINE.format(what='the rule')}"


def rule_application_question(task: str, rule: str, query: str) -> str:
    """What a model sees to apply `rule` to one input (its answer: the output)."""
    p = prompts_for(task)
    return f"{p.apply_rule}\nRule: {rule}\nInput: {query}\n{ANSWER_LINE.format(what=p.output)}"


def fewshot_question(task: str, demos: Sequence[tuple[str, str]], query: str) -> str:
    """The direct few-shot question: demonstrations, then the query input (its answer: the output)."""
    p = prompts_for(task)
    return (
        f"{p.fewshot_head}\n\n{demo_lines(demos)}\n\n{p.fewshot_tail}\nInput: {query}\n"
        f"{ANSWER_LINE.format(what=p.output)}"
    )
