"""recipes/cot_placement_smollm2.yaml and recipes/whitebox_kd_smollm2.yaml at smoke size through the
CLI, on the real SmolLM2-135M-Instruct (pulled once per session, tests/conftest.py) cut to a few
layers by `keep_layers`: pull -> prune -> chat rows -> SFT / KD -> evaluation -> report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.integration.conftest import run_cli, stage_dirs

ARMS = ["none", "before", "after", "after_shuffled", "after_key_tokens", "after_random_tokens"]
SYSTEM = "Add the numbers."


@pytest.fixture(scope="module")
def cot(real_model, tmp_path_factory) -> dict[str, Path]:
    runs = tmp_path_factory.mktemp("cot_smollm2") / "runs"
    run_cli("run", "recipes/cot_placement_smollm2.yaml", "--smoke", "--runs-dir", str(runs), timeout=600)
    return stage_dirs(runs, "cot_placement_smollm2-smoke")


@pytest.fixture(scope="module")
def wkd(real_model, tmp_path_factory) -> dict[str, Path]:
    runs = tmp_path_factory.mktemp("wkd_smollm2") / "runs"
    run_cli("run", "recipes/whitebox_kd_smollm2.yaml", "--smoke", "--runs-dir", str(runs), timeout=600)
    return stage_dirs(runs, "whitebox_kd_smollm2-smoke")


def _rows(d: Path, name: str = "rows.jsonl") -> list[dict]:
    return [json.loads(x) for x in (d / name).read_text().splitlines()]


def _config(d: Path) -> dict:
    return json.loads((d / "model" / "config.json").read_text())


def test_cot_placement_smollm2_smoke(cot):
    from reasondistill.traces.format import split_completion

    assert all((d / "_COMPLETE").exists() for d in cot.values())
    rows = {a: _rows(cot[f"student_rows[arm={a}]"]) for a in ARMS}
    ids = [r["example_id"] for r in rows["after"]]
    assert ids and all([r["example_id"] for r in rows[a]] == ids for a in ARMS)
    first = rows["before"][0]
    assert first["prompt"][0] == {"role": "system", "content": SYSTEM}
    assert first["completion"][0]["content"].startswith("Reasoning: ")
    # the shuffled arm permutes SmolLM2's tokens of each rationale: the same characters (re-encoding
    # the shuffled text would not give the same ids: its BPE merges spaces into the next token)
    for a, s in zip(rows["after"], rows["after_shuffled"], strict=True):
        r_a, r_s = (split_completion(x["completion"][0]["content"])[0] for x in (a, s))
        assert sorted(r_a.replace(" ", "")) == sorted(r_s.replace(" ", "")) and r_a != r_s
    for arm in ARMS:
        model_dir = cot[f"student[arm={arm},seed=0]"]
        assert _config(model_dir)["num_hidden_layers"] == 3  # keep_layers: {every: 10} of 30
        record = json.loads((model_dir / "model" / "prompt_template.json").read_text())
        assert record == {"kind": "chat", "system": SYSTEM}
        preds = _rows(cot[f"student_eval[arm={arm},seed=0]"], "predictions.jsonl")
        assert len(preds) == 12 and (arm == "before" or all("\n" not in p["prediction"] for p in preds))
    res = json.loads((cot["report"] / "results.json").read_text())
    assert len(res["contrasts"]) == 7 and {g["coords"]["arm"] for g in res["over_seeds"]} == set(ARMS)


def test_whitebox_kd_smollm2_smoke(wkd, real_model):
    assert all((d / "_COMPLETE").exists() for d in wkd.values())
    assert _config(wkd["teacher"])["num_hidden_layers"] == 3
    for cot in ("with", "without"):
        sft_dir, kd_dir = (
            wkd[f"student_sft[cot={cot},method=sft,seed=0]"],
            wkd[f"student_kd[cot={cot},method=kd,seed=0]"],
        )
        assert _config(sft_dir)["num_hidden_layers"] == _config(kd_dir)["num_hidden_layers"] == 2  # [0, 29]
        sft, kd = (yaml.safe_load((d / "config.yaml").read_text()) for d in (sft_dir, kd_dir))
        for key in ("model", "train", "max_rows", "rows", "seed"):
            assert sft[key] == kd[key], key  # equal budgets: only the objective differs
        marker = json.loads((kd_dir / "_COMPLETE").read_text())
        assert marker["objective"] == "kd" and marker["teacher"] == "cache"
        cache = wkd[f"kd_cache[cot={cot}]"]
        vocab = json.loads((cache / "tokenizer" / "tokenizer.json").read_text())["model"]["vocab"]
        assert vocab == json.loads((real_model.path / "tokenizer.json").read_text())["model"]["vocab"]
    res = json.loads((wkd["report"] / "results.json").read_text())
    assert len(res["contrasts"]) == 4 and "teacher_eval" in {e["name"] for e in res["evals"]}


def test_whitebox_kd_smollm2_refuses_a_student_with_another_tokenizer(wkd):
    """A student trained on a locally trained tokenizer cannot learn from SmolLM2's logits: the KD
    stage refuses it when it starts, before writing anything (the plan cannot see through)."""
    runs = wkd["report"].parents[1]
    extra = ["stages.tok={kind: tokenizer, data: data}",
             "stages.student_kd.model={tiny: {hidden_size: 32, num_layers: 1, num_heads: 2}, tokenizer: tok}"]  # fmt: skip
    proc = run_cli(
        "run", "recipes/whitebox_kd_smollm2.yaml", "--smoke", "--runs-dir", str(runs), *extra, check=False
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    errors = [x for x in proc.stderr.splitlines() if x.startswith("error:")]
    assert len(errors) == 1 and "vocab" in errors[0], proc.stderr[-2000:]
