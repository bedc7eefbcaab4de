"""ReDis: reasoning distillation for in-context inductive reasoning (Sadeq et al., arXiv 2504.10647).

    prompts.py     the four prompts per task (rule generation, rule application, direct few-shot)
    rules/         rules as runnable specs: what the CPU program teacher writes and applies
    hypotheses.py  rule-generation / rule-application items, scores, dedup, pairs, SFT rows
    search.py      hypothesis search at inference (best rule on the demonstrations, tie rule)
    sandbox.py     Python-program hypotheses run in a locked-down subprocess (Wang et al., arXiv 2309.05660)

The stages that wire these to artifacts are stages/hypotheses.py, stages/rule_rows.py and
stages/hypothesis_eval.py; the tasks are tasks/arc_1d.py, list_functions.py, acre.py, mini_scan.py.
"""
