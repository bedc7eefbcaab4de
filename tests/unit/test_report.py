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


def test_over_seeds_never_pools_two_stages_with_the_same_seed():
    """Two evaluate stages whose instances differ only by stage: pooled when each has its own
    split (one value per seed and split, as IMM's e_add / e_sub), split by stage when both give
    the same split (one value would overwrite the other under the same seed)."""

    def ev(stage, s, split, k):
        return {"name": f"{stage}[seed={s}]", "coords": {"seed": str(s)}, "metrics": {split: _metrics(k, 10)}}

    same = [ev("ev_a", 0, "test", 2), ev("ev_a", 1, "test", 4), ev("ev_b", 0, "test", 8), ev("ev_b", 1, "test", 6)]
    groups = summarize_over_seeds(same)
    assert [g["coords"] for g in groups] == [{"stage": "ev_a"}, {"stage": "ev_b"}]
    assert [g["splits"]["test"]["values"] for g in groups] == [{"0": 0.2, "1": 0.4}, {"0": 0.8, "1": 0.6}]
    own = [ev("ev_a", 0, "a", 2), ev("ev_a", 1, "a", 4), ev("ev_b", 0, "b", 8), ev("ev_b", 1, "b", 6)]
    (group,) = summarize_over_seeds(own)
    assert group["coords"] == {} and group["seeds"] == ["0", "1"]  # distinct seeds, not 4 instances
    assert group["splits"]["a"]["values"] == {"0": 0.2, "1": 0.4}
    assert group["splits"]["b"]["values"] == {"0": 0.8, "1": 0.6}


def test_markdown_handles_missing_split_and_empty_split():
    evals = [
        {"name": "x", "coords": {}, "metrics": {"test": _metrics(1, 2)}},
        {"name": "y", "coords": {}, "metrics": {"ood": accuracy_summary([], [])}},
    ]
    md = to_markdown(build_results(evals))
    assert "| x | 50.0 [9.5, 90.5] | 2 | 3.0 | — | — | — |" in md
    assert "| y | — | — | — | — | 0 | — |" in md


def _analysis_dir(root, name: str, coords: dict, iteration: int, v: float):
    """An analysis stage's metrics in the shared shape: a named value with its interval."""
    d = root / name.replace("@", "_").replace("[", "_").replace("]", "").replace("=", "-")
    d.mkdir()
    row = {"update_norm": v, "update_norm_ci_low": v - 0.1, "update_norm_ci_high": v + 0.1, "n": 4}
    (d / "metrics.json").write_text(json.dumps({"layers": row}))
    (d / "stage.json").write_text(
        json.dumps({"name": name, "kind": "analysis", "coords": coords, "hash": "h", "iteration": iteration})
    )
    return d


def test_report_reads_any_metric_and_draws_iteration_curves(tmp_path):
    dirs = {}
    for arm, seed, it, v in [("imm", 0, 0, 1.0), ("imm", 0, 1, 2.0), ("imm", 1, 0, 1.5), ("imm", 1, 1, 2.5),
                             ("sft", 0, 0, 3.0), ("sft", 0, 1, 5.0), ("sft", 1, 0, 3.5), ("sft", 1, 1, 6.0)]:  # fmt: skip
        name = f"an@{it}[arm={arm},seed={seed}]"
        dirs[name] = _analysis_dir(tmp_path, name, {"arm": arm, "seed": str(seed)}, it, v)
    out = tmp_path / "report"
    out.mkdir()
    cfg = ReportConfig(
        kind="report", evals=list(dirs), metric="update_norm",
        contrasts=[{"label": "sft - imm at 1", "a": {"arm": "sft", "iter": "1"}, "b": {"arm": "imm", "iter": "1"}}],
    )  # fmt: skip
    ReportStage().run(StageContext("report", cfg, out, {}, dirs))
    results = json.loads((out / "results.json").read_text())
    assert results["metric"] == "update_norm"
    groups = {(g["coords"]["arm"], g["coords"]["iter"]): g["splits"]["layers"] for g in results["over_seeds"]}
    assert groups[("sft", "1")]["mean"] == pytest.approx(5.5) and groups[("imm", "0")]["values"] == {"0": 1.0, "1": 1.5}
    (contrast,) = results["contrasts"]
    assert contrast["splits"]["layers"]["diff"] == pytest.approx(5.5 - 2.25)
    table = (out / "results.md").read_text()
    assert "layers update_norm [95% CI]" in table and "| 2 [1.9, 2.1] | 4 |" in table
    assert "update_norm: mean difference" in table and "+3.25" in table
    assert (out / "results_iterations.png").stat().st_size > 0 and (out / "results_seeds.png").exists()


def test_report_of_a_metric_no_eval_has(ctx):
    from reasondistill.errors import ReasonDistillError

    cfg = ctx.cfg.model_copy(update={"metric": "pivots"})
    with pytest.raises(ReasonDistillError, match="no stage of `evals` has a metric 'pivots'"):
        ReportStage().run(StageContext("report", cfg, ctx.out_dir, {}, ctx.dirs))
    assert list(ctx.out_dir.iterdir()) == []
