"""recipes/cot_placement.yaml (arXiv 2406.14511) end to end at smoke size through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.conftest import run_cli, stage_dirs

RECIPE = "recipes/cot_placement.yaml"
ARMS = ["none", "before", "after", "after_shuffled", "after_key_tokens", "after_random_tokens"]
SEEDS = ["0", "1"]  # the smoke size's seed axis


@pytest.fixture(scope="module")
def smoke(tmp_path_factory) -> tuple[Path, dict[str, Path], str]:
    runs = tmp_path_factory.mktemp("cot") / "runs"
    proc = run_cli("run", RECIPE, "--smoke", "--runs-dir", str(runs), timeout=300)
    return runs, stage_dirs(runs, "cot_placement-smoke"), proc.stdout


def _rows(d: Path, name: str = "rows.jsonl") -> list[dict]:
    return [json.loads(x) for x in (d / name).read_text().splitlines()]


def _rationale(completion: str) -> str:
    from reasondistill.traces.format import split_completion

    return split_completion(completion)[0]


def test_every_stage_completes_and_the_grid_is_planned(smoke):
    _, dirs, _ = smoke
    assert all((d / "_COMPLETE").exists() for d in dirs.values())
    assert {f"student_rows[arm={a}]" for a in ARMS} <= set(dirs)
    assert {f"student[arm={a},seed={s}]" for a in ARMS for s in SEEDS} <= set(dirs)
    assert {f"student_eval[arm={a},seed={s}]" for a in ARMS for s in SEEDS} <= set(dirs)
    # the key-token arm's saliency scorer reads the teacher: the planner recorded the dependency
    meta = json.loads((dirs["student_rows[arm=after_key_tokens]"] / "stage.json").read_text())
    assert {"kept", "tokenizer", "teacher"} == set(meta["inputs"])


def test_arms_train_on_the_same_examples_with_the_transformed_rationale(smoke):
    from transformers import AutoTokenizer

    from reasondistill.traces.transforms.base import n_keep

    _, dirs, _ = smoke
    rows = {a: _rows(dirs[f"student_rows[arm={a}]"]) for a in ARMS}
    ids = [r["example_id"] for r in rows["after"]]
    assert ids and all([r["example_id"] for r in rows[a]] == ids for a in ARMS)
    assert all(r["completion"].startswith("Answer: ") and "\n" not in r["completion"] for r in rows["none"])
    assert all(r["completion"].startswith("Reasoning: ") for r in rows["before"])
    tok = AutoTokenizer.from_pretrained(str(dirs["tokenizer"] / "tokenizer"))

    def enc(text: str) -> list[int]:
        return tok(text, add_special_tokens=False)["input_ids"]

    for i, r in enumerate(rows["after"]):
        full = enc(_rationale(r["completion"]))
        shuffled = enc(_rationale(rows["after_shuffled"][i]["completion"]))
        assert sorted(shuffled) == sorted(full)  # digits/punctuation are single tokens here
        for arm in ("after_key_tokens", "after_random_tokens"):
            kept = enc(_rationale(rows[arm][i]["completion"]))
            assert len(kept) == n_keep(0.3, len(full))
            it = iter(full)
            assert all(any(x == y for y in it) for x in kept)  # an ordered subsequence
    logged = _rows(dirs["student_rows[arm=after_key_tokens]"], "rationales.jsonl")
    assert [x["example_id"] for x in logged] == ids


def test_label_first_evaluation_stops_at_the_answer_line(smoke):
    _, dirs, _ = smoke
    for arm in ARMS:
        d = dirs[f"student_eval[arm={arm},seed=0]"]
        cfg = (d / "config.yaml").read_text()
        assert ("label_first: false" in cfg) == (arm == "before")
        if arm != "before":
            assert all("\n" not in p["prediction"] for p in _rows(d, "predictions.jsonl"))


def test_report_has_seed_summary_contrasts_and_charts(smoke):
    _, dirs, stdout = smoke
    report = dirs["report"]
    res = json.loads((report / "results.json").read_text())
    names = {e["name"] for e in res["evals"]}
    assert {f"student_eval[arm={a},seed={s}]" for a in ARMS for s in SEEDS} <= names
    assert "teacher_eval" in names
    groups = {g["coords"]["arm"]: g for g in res["over_seeds"]}
    assert set(groups) == set(ARMS)
    for g in groups.values():
        assert g["seeds"] == SEEDS
        for split in ("test_id", "test_ood"):
            st = g["splits"][split]
            assert set(st["values"]) == set(SEEDS) and st["std"] is not None and st["tokens"] is not None
    assert len(res["contrasts"]) == 7 and all(set(c["splits"]) == {"test_id", "test_ood"} for c in res["contrasts"])
    md = (report / "results.md").read_text()
    assert "## Over seeds" in md and "## Contrasts" in md and "Q3 key tokens vs random tokens" in md
    assert md.strip() in stdout
    for png in ("results.png", "results_seeds.png"):
        assert (report / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_rerun_skips_every_stage(smoke):
    runs, _, _ = smoke
    proc = run_cli("run", RECIPE, "--smoke", "--runs-dir", str(runs))
    lines = [x for x in proc.stdout.splitlines() if x.startswith("[")]
    assert lines and all("done, skipped" in x for x in lines), proc.stdout


def test_compute_contrasts():
    from reasondistill.errors import ReasonDistillError
    from reasondistill.report.contrasts import compute_contrasts

    groups = [
        {"coords": {"arm": "a"}, "splits": {"t": {"mean": 0.5, "std": 0.1, "values": {"0": 0.4, "1": 0.6}}}},
        {"coords": {"arm": "b"}, "splits": {"t": {"mean": 0.3, "std": 0.1, "values": {"0": 0.2, "1": 0.4}}}},
    ]
    (c,) = compute_contrasts(groups, [{"label": "a-b", "a": {"arm": "a"}, "b": {"arm": "b"}}])
    assert c["splits"]["t"]["diff"] == pytest.approx(0.2)
    assert c["splits"]["t"]["se"] == pytest.approx(0.1)  # sqrt(0.01/2 + 0.01/2)
    assert c["splits"]["t"]["paired"] == pytest.approx({"0": 0.2, "1": 0.2})
    with pytest.raises(ReasonDistillError, match="no over-seeds group matches"):
        compute_contrasts(groups, [{"label": "x", "a": {"arm": "c"}, "b": {"arm": "b"}}])
