"""recipes/style_over_substance.yaml (arXiv 2504.01738) end to end at smoke size through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.conftest import run_cli, stage_dirs

RECIPE = "recipes/style_over_substance.yaml"
ARMS = ["st", "st_hc", "st_hc_w", "st_nt", "sbs"]
SEEDS = ["0", "1"]  # the smoke size's seed axis


@pytest.fixture(scope="module")
def smoke(tmp_path_factory) -> tuple[Path, dict[str, Path], str]:
    runs = tmp_path_factory.mktemp("sos") / "runs"
    proc = run_cli("run", RECIPE, "--smoke", "--runs-dir", str(runs), timeout=300)
    return runs, stage_dirs(runs, "style_over_substance-smoke"), proc.stdout


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_every_arm_trains_on_the_same_examples(smoke):
    _, dirs, _ = smoke
    assert all((d / "_COMPLETE").exists() for d in dirs.values())
    assert {f"student_eval[arm={a},seed={s}]" for a in ARMS for s in SEEDS} <= set(dirs)
    assert {f"base_eval[arm=base,seed={s}]" for s in SEEDS} <= set(dirs)
    rows = {a: _jsonl(dirs[f"rows[arm={a}]"] / "rows.jsonl") for a in ARMS}
    ids = [r["example_id"] for r in rows["st"]]
    assert ids and all([r["example_id"] for r in rows[a]] == ids for a in ARMS)
    assert all(r["completion"].startswith("Answer: ") for r in rows["st_nt"])
    assert all(
        r["completion"].startswith("Reasoning: ") for a in ("st", "st_hc", "st_hc_w", "sbs") for r in rows[a]
    )
    for hc, hcw in zip(rows["st_hc"], rows["st_hc_w"], strict=True):
        a, b = hc["completion"].splitlines(), hcw["completion"].splitlines()
        assert a[:-2] == b[:-2] and a[-1] != b[-1]  # only the final statement and the answer line differ


def test_style_profiles_of_sets_and_student_outputs(smoke):
    _, dirs, _ = smoke
    sets = json.loads((dirs["sets"] / "metrics.json").read_text())
    assert set(sets) == {"emergent_target", *ARMS}
    assert sets["st"]["share_3of4_pivot_types"] == sets["emergent_target"]["share_3of4_pivot_types"]
    assert sets["st_nt"]["pivots_per_trace"] == 0
    assert "# Style profile of every arm's training set" in (dirs["sets"] / "sets.md").read_text()
    traces = json.loads((dirs["traces_style"] / "metrics.json").read_text())
    assert traces["all"]["n"] == 40 and 0 <= traces["all"]["share_3of4_pivot_types"] <= 1
    student = json.loads((dirs["student_style[arm=st,seed=0]"] / "metrics.json").read_text())
    assert student["all"]["n"] == 12  # the in-domain outputs only


def test_reports_have_contrasts_and_style_tables(smoke):
    _, dirs, stdout = smoke
    res = json.loads((dirs["report"] / "results.json").read_text())
    assert {g["coords"]["arm"] for g in res["over_seeds"]} == {"base", *ARMS}
    labels = [c["label"] for c in res["contrasts"]]
    assert labels[:4] == ["ST - base", "ST-HC - ST", "ST-HC-W - base", "ST-HC-W - ST-NT"]
    assert all(set(c["splits"]) == {"test_id", "test_ood"} for c in res["contrasts"])
    for metric in ("share_3of4_pivot_types", "pivots_per_1k_words", "verification_per_trace"):
        style = json.loads((dirs[f"style_report[metric={metric}]"] / "results.json").read_text())
        assert style["metric"] == metric and {g["coords"]["arm"] for g in style["over_seeds"]} == set(ARMS)
    sets_report = json.loads(
        (dirs["sets_report[metric=share_3of4_pivot_types]"] / "results.json").read_text()
    )
    assert sets_report["splits"] == ["emergent_target", *ARMS]
    assert "ST-HC-W - ST-NT" in stdout and "Style of every arm's training set" in stdout
