"""The merge, layers and layers_report stages at plan time: bad input is one `error:` line, exit 2,
before anything is written (recipes/imm.yaml, `--dry-run`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from reasondistill.cli import main

IMM = Path(__file__).resolve().parents[2] / "recipes" / "imm.yaml"
OTHER = "stages.other={kind: train, rows: add_rows, model: {tiny: {arch: llama, hidden_size: %d, num_layers: 4, num_heads: 4}, tokenizer: %s}}"
TO_OTHER = [
    "stages.d_merged.models=[{model: {stage: other}, weight: 0.5}]",
    "stages.d_merged.method={kind: task_arithmetic}",
]


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["stages.d_merged.models=[{model: {stage: d_model}, weight: 0.5, density: 1.5}]"],
         "error: stages.d_merged[arm=distill_imm].models.0.density: Input should be less than or equal to 1"),
        (["stages.d_merged.models=[{model: {stage: d_model}, weight: 0.5, density: 0}]"],
         "error: stages.d_merged[arm=distill_imm].models.0.density: Input should be greater than 0"),
        (["stages.d_merged.matrix.arm.distill_imm={method: {kind: ties, normalize: true}}"],
         "error: stages.d_merged[arm=distill_imm]: normalize with a single model divides its update by its own weight"),
        (["stages.d_merged.matrix.arm.distill_imm={method: {kind: linear, base_weight: 0}, models: "
          "[{model: {stage: d_model}, weight: 1}, {model: {stage: base}, weight: -1}]}"],
         "error: stages.d_merged[arm=distill_imm]: the weights sum to 0 ([0.0, 1.0, -1.0]), which normalize divides by"),
        (["stages.d_merged.matrix.arm.distill_imm={method: {kind: task_arithmetic}, models: [{model: {stage: d_model}, density: 0.5}]}"],
         "error: stages.d_merged[arm=distill_imm]: density is used by ties, dare_linear, dare_ties and breadcrumbs"),
        ([OTHER % (64, "tokenizer"), *TO_OTHER],
         "error: stages.d_merged.models.0.model: a tiny model (llama, hidden 64, 4 layers) cannot merge with base's "
         "(llama, hidden 128, 4 layers): architectures or shapes differ"),
        (["stages.tok2={kind: tokenizer, data: pm}", OTHER % (128, "tok2"), *TO_OTHER],
         "error: stages.d_merged.models.0.model: its tokenizer comes from stage 'tok2', base's from 'tokenizer'"),
        (["stages.layers_report.analyses=[e_add]"],
         "error: stages.layers_report.analyses.0: stage 'e_add@0' is of kind evaluate; this needs layers stages"),
        (["stages.improve.stages.layers.splits=[{stage: add, split: add_test}, {stage: add, split: add_test}]"],
         "error: stages.improve.stages.layers: splits: split names must be distinct"),
    ],
)  # fmt: skip
def test_refused_at_plan_time(capsys, tmp_path, overrides, message):
    code = main(["run", str(IMM), *overrides, "--runs-dir", str(tmp_path), "--dry-run"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith(message), err
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("recipe", ["imm.yaml", "imm_smollm2.yaml"])
@pytest.mark.parametrize("smoke", [[], ["--smoke"]])
def test_recipes_plan(capsys, tmp_path, recipe, smoke):
    code = main(["run", str(IMM.parent / recipe), *smoke, "--runs-dir", str(tmp_path), "--dry-run"])
    assert code == 0, capsys.readouterr().err
