"""Analyse a set of traces and write the results: the one body behind `reasondistill style
analyze` and the `style_analyze` stage.

Files written into the output directory (all built in a temporary directory first, then moved
in, so a failure leaves nothing half-written):
    summary.json     {"groups": {"all", "correct", "wrong", "unknown": {...}}, "lexicon", "source"}
    summary.md       the table of summary.md (summary.py)
    <profiles>       one profile per trace (traces.jsonl for the CLI, profiles.jsonl in a stage)
    style_*.png      charts.py
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from reasondistill.records import write_jsonl_atomic
from reasondistill.traces.style.profile import StyleAnalyzer, TraceProfile
from reasondistill.traces.style.read import TraceText
from reasondistill.traces.style.summary import GROUPS, group_of, markdown, summarize

SUMMARY_JSON, SUMMARY_MD = "summary.json", "summary.md"


def analyze(items: list[TraceText], analyzer: StyleAnalyzer) -> tuple[list[TraceProfile], dict[str, dict]]:
    """(one profile per item, {group: summary})."""
    profiles = [analyzer.profile(it.text, **it.meta, group=group_of(it.correct)) for it in items]
    return profiles, summarize(profiles, [p.extra["group"] for p in profiles])


def write_analysis(
    out_dir: Path,
    profiles: list[TraceProfile],
    groups: dict[str, dict],
    *,
    title: str,
    source: str,
    lexicon: dict,
    profiles_file: str = "traces.jsonl",
    charts: bool = True,
    extra_files: dict[str, object] | None = None,
) -> list[str]:
    """Write the analysis into `out_dir` (created if missing); returns the file names written.

    `extra_files`: more JSON documents to write alongside (name -> object), e.g. metrics.json."""
    out_dir = Path(out_dir)
    # Inside an existing directory (a stage's), else beside it: one rename puts it in place.
    where = out_dir if out_dir.is_dir() else out_dir.parent
    where.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp.", dir=where))
    try:
        doc = {"source": source, "title": title, "groups": groups, "lexicon": lexicon}
        (tmp / SUMMARY_JSON).write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
        (tmp / SUMMARY_MD).write_text(markdown(groups, title), encoding="utf-8")
        write_jsonl_atomic(tmp / profiles_file, (p.to_dict() for p in profiles))
        for name, obj in (extra_files or {}).items():
            (tmp / name).write_text(json.dumps(obj, indent=2) + "\n", encoding="utf-8")
        if charts:
            from reasondistill.traces.style.charts import plot_style

            by = {g: [p for p in profiles if p.extra.get("group") == g] for g in GROUPS}
            plot_style(groups, by, tmp, title)
        names = sorted(p.name for p in tmp.iterdir())
        if not out_dir.is_dir():
            os.replace(tmp, out_dir)
        else:
            for name in names:
                os.replace(tmp / name, out_dir / name)
        return names
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
