"""IMM (arXiv 2503.02103) through the CLI: recipes/imm.yaml at smoke size, and a merge of models
that do not fit, refused before any merge work (exit 2, no model directory)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.integration.conftest import run_cli, stage_dirs

RECIPE = "recipes/imm.yaml"


@pytest.fixture(scope="module")
def smoke(tmp_path_factory) -> Path:
    runs = tmp_path_factory.mktemp("imm") / "runs"
    run_cli("run", RECIPE, "--smoke", "--runs-dir", str(runs))
    return runs


def test_smoke_runs_both_arms_over_iterations(smoke):
    dirs = stage_dirs(smoke, "imm-smoke")
    # iteration 0 samples from theta_0 once; later iterations sample from each arm's own model
    assert "samples@0[seed=0]" in dirs and {"samples@1[seed=0,arm=si]", "samples@1[seed=0,arm=imm]"} <= set(
        dirs
    )
    imm = yaml.safe_load((dirs["merged@1[seed=0,arm=imm]"] / "merge_config.yaml").read_text())
    assert imm["merge_method"] == "dare_linear" and imm["models"][0]["parameters"] == {
        "weight": 0.625,
        "density": 0.8,
    }
    assert imm["base_model"].endswith("/model") and imm["parameters"]["rescale"] is False
    si = yaml.safe_load((dirs["merged@1[seed=0,arm=si]"] / "merge_config.yaml").read_text())
    assert si["merge_method"] == "linear" and "base_model" not in si
    model = dirs["merged@1[seed=0,arm=imm]"] / "model"
    assert {"config.json", "model.safetensors", "tokenizer.json", "prompt_template.json"} <= {
        p.name for p in model.iterdir()
    }

    report = dirs["report"]
    results = json.loads((report / "results.json").read_text())
    assert (report / "results_iterations.png").is_file()
    iters = {
        (e["coords"].get("arm"), e["coords"].get("iter")) for e in results["evals"] if "iter" in e["coords"]
    }
    assert iters == {(a, i) for a in ("si", "imm") for i in ("0", "1")}
    assert [c["label"] for c in results["contrasts"]] == ["IMM - SI, iteration 1"]
    assert set(results["contrasts"][0]["splits"]) == {"add_test", "sub_test", "pm_test"}

    lr = dirs["layers_report"]
    assert {"layers_all.csv", "layers_update.png", "layers_importance.png", "layers_report.md"} <= {
        p.name for p in lr.iterdir()
    }
    div = json.loads((dirs["diversity_report"] / "results.json").read_text())
    assert div["metric"] == "distinct_correct" and len(div["evals"]) == 3  # iteration 0 (theta_0) + 2 arms


def test_incompatible_models_exit_2_before_any_merge_work(smoke, tmp_path):
    from transformers import LlamaConfig, LlamaForCausalLM

    dirs = stage_dirs(smoke, "imm-smoke")
    cfg = json.loads((dirs["base"] / "model" / "config.json").read_text())
    other = tmp_path / "other"
    wider = {k: cfg[k] for k in ("vocab_size", "num_hidden_layers", "num_attention_heads")}
    LlamaForCausalLM(
        LlamaConfig(**wider, hidden_size=2 * cfg["hidden_size"], tie_word_embeddings=True)
    ).save_pretrained(str(other))
    for f in ("tokenizer.json", "tokenizer_config.json"):
        (other / f).write_bytes((dirs["base"] / "model" / f).read_bytes())
    proc = run_cli(
        "run", RECIPE, "--smoke", "--runs-dir", str(smoke), "--until", "d_merged",
        f"stages.d_merged.models=[{{model: {{path: {other}}}, weight: 0.5}}]",
        check=False,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "error: merge: base" in proc.stderr and "have different shapes" in proc.stderr
    assert proc.stderr.count("error:") == 1
    leftovers = [p.name for p in (smoke / "imm-smoke").iterdir() if p.name.startswith("d_merged")]
    assert all((smoke / "imm-smoke" / n / "_COMPLETE").exists() for n in leftovers), (
        leftovers
    )  # the old, finished ones only


def test_importance_on_a_layer_subset(smoke):
    """`importance_layers` resets only the layers it picks; the others keep their update size and
    an empty drop; a subset that does not fit the model is one error line, exit 2."""
    import csv

    run_cli(
        "run", RECIPE, "--smoke", "--runs-dir", str(smoke), "--until", "layers_report",
        "stages.improve.stages.layers.importance_layers=[1]",
    )  # fmt: skip
    layers = stage_dirs(smoke, "imm-smoke")["layers@1[seed=0,arm=imm]"]
    rows = [r for r in csv.DictReader((layers / "layers.csv").open()) if r["module"] == "all"]
    assert {r["layer"]: (r["drop_add_test"] != "", float(r["rel_update"]) > 0) for r in rows} == {
        "0": (False, True),
        "1": (True, True),
    }
    assert json.loads((layers / "metrics.json").read_text())["add_test"]["layers"] == 1
    proc = run_cli(
        "run", RECIPE, "--smoke", "--runs-dir", str(smoke), "--until", "layers_report",
        "stages.improve.stages.layers.importance_layers={every: 1, offset: 2}",
        check=False,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "importance_layers every 1 from 2 does not fit a model with 2 layers" in proc.stderr
    assert proc.stderr.count("error:") == 1 and "Traceback" not in proc.stderr
