"""report/ and the `report` stage, on fake evaluate directories."""

from __future__ import annotations

import json

import pytest

from reasondistill.evaluate.metrics import accuracy_summary
from reasondistill.report.results import build_results, summarize_over_seeds, to_markdown
from reasondistill.stages.base import StageContext
from reasondistill.stages.report import ReportConfig, ReportStage


def _metrics(k: int, n: int) -> dict:
    return accuracy_summary([True] * k + [False] * (n - k), [3] * n)


def _eval_dir(root, name: str, coords: dict, test_k: int, label: bool = True):
    d = root / name.replace("[", "_").replace("]", "").replace("=", "-").replace(",", "_")
    d.mkdir()
    (d / "metrics.json").write_text(
        json.dumps({"test": _metrics(test_k, 10), "ood": _metrics(test_k // 2, 10)})
    )
    if label:
        (d / "stage.json").write_text(
            json.dumps({"name": name, "kind": "evaluate", "coords": coords, "hash": "h"})
        )
    return d


@pytest.fixture
def ctx(tmp_path):
    dirs = {}
    for placement, seed, k in [("before", 0, 8), ("before", 1, 6), ("after", 0, 7), ("after", 1, 9)]:
        name = f"ev[placement={placement},seed={seed}]"
        dirs[name] = _eval_dir(tmp_path, name, {"placement": placement, "seed": str(seed)}, k)
    dirs["base"] = _eval_dir(tmp_path, "base", {}, 5, label=False)  # no stage.json: falls back to the ref
    out = tmp_path / "report"
    out.mkdir()
    cfg = ReportConfig(kind="report", evals=list(dirs), title="Placement ablation")
    return StageContext(name="report", cfg=cfg, out_dir=out, coords={}, dirs=dirs)


def test_report_stage_writes_json_md_png(ctx):
    assert ReportStage().run(ctx) == {"evals": 5, "splits": ["test", "ood"]}
    res = json.loads((ctx.out_dir / "results.json").read_text())
    assert [e["name"] for e in res["evals"]][-1] == "base"
    assert res["evals"][0]["coords"] == {"placement": "before", "seed": "0"}
    assert res["evals"][0]["metrics"]["test"]["accuracy"] == 0.8
    md = (ctx.out_dir / "results.md").read_text()
    assert md.startswith("# Placement ablation")
    assert "| ev[placement=before,seed=0] | 80.0 [49.0, 94.3] | 10 | 3.0 |" in md
    assert "## Over seeds" in md and "placement=before | 2 | 70.0 ± 14.1 (0: 80.0, 1: 60.0)" in md
    png = (ctx.out_dir / "results.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    assert not list(ctx.out_dir.glob("*tmp*"))


def test_summarize_over_seeds():
    evals = [
        {"name": f"e{s}{p}", "coords": {"p": p, "seed": str(s)}, "metrics": {"test": _metrics(k, 10)}}
        for p, s, k in [("a", 0, 2), ("a", 1, 4), ("a", 2, 6), ("b", 0, 5)]
    ] + [{"name": "noseed", "coords": {"p": "a"}, "metrics": {"test": _metrics(1, 10)}}]
    groups = summarize_over_seeds(evals)
    assert [g["coords"] for g in groups] == [{"p": "a"}, {"p": "b"}]
    a = groups[0]["splits"]["test"]
    assert a["mean"] == pytest.approx(0.4) and a["std"] == pytest.approx(0.2)
    assert a["values"] == {"0": 0.2, "1": 0.4, "2": 0.6}
    assert groups[1]["splits"]["test"]["std"] is None  # one seed: no spread
    assert summarize_over_seeds([e for e in evals if "seed" not in e["coords"]]) == []


def test_markdown_handles_missing_split_and_empty_split():
    evals = [
        {"name": "x", "coords": {}, "metrics": {"test": _metrics(1, 2)}},
        {"name": "y", "coords": {}, "metrics": {"ood": accuracy_summary([], [])}},
    ]
    md = to_markdown(build_results(evals))
    assert "| x | 50.0 [9.5, 90.5] | 2 | 3.0 | — | — | — |" in md
    assert "| y | — | — | — | — | 0 | — |" in md
