"""Style of reasoning traces (Lippmann & Yang, COLM 2025, arXiv 2504.01738): analysis and synthesis.

    lexicon.py    pivot markers of the four types and the phase cues (`pivot lexicons` registry)
    phases.py     framing / exploration / verification / synthesis segmentation rules
    profile.py    one trace's profile;  summary.py  per-group summaries;  charts.py  PNGs
    analyze.py    analyse a set and write its files (the CLI and the style_analyze stage)
    read.py       reasoning of a completion, its final answer, JSONL rows to analyse
    cli.py        `reasondistill style analyze FILE --out DIR`
    steps.py      steps of a step-by-step rationale
    emergent.py   R1-like traces without a reasoning model (the `reasoning_style` teacher)
    hardcoded.py  ST-HC: a rationale rewritten to a target style profile
    arms.py       the arms' training sets (`style arms` registry: emergent, hardcoded, ...)

Import-light (no torch, no matplotlib at import): the stage layer imports these configs to plan.
"""
