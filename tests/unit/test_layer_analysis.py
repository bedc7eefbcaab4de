"""Layer-wise analysis (merge/layers.py, stages/layers.py, stages/layers_report.py, stages/diversity.py)."""

from __future__ import annotations

import json

import pytest
import torch

from reasondistill.config import StageContext
from reasondistill.merge.checkpoint import Checkpoint
from reasondistill.merge.layers import reset_layer, spearman, split_name, update_rows
from reasondistill.records import Trace
from reasondistill.stages.diversity import diversity_metrics
from reasondistill.stages.layers import LayersConfig, LayersStage
from reasondistill.stages.layers_report import LayersReportConfig, LayersReportStage
from tests.unit.helpers_tiny import tiny_model, tiny_tokenizer

MOVED = "model.layers.1.mlp.up_proj.weight"


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """theta_0 and theta_t where only layer 1's mlp.up_proj moved (by 10% of its norm)."""
    root = tmp_path_factory.mktemp("pair")
    tok = tiny_tokenizer()
    m = tiny_model(tok)
    m.save_pretrained(str(root / "t0"))
    tok.save_pretrained(str(root / "t0"))
    with torch.no_grad():
        w = dict(m.named_parameters())[MOVED]
        w.add_(
            0.1 * w.norm() * torch.nn.functional.normalize(torch.randn_like(w).flatten(), dim=0).view_as(w)
        )
    m.save_pretrained(str(root / "tt"))
    tok.save_pretrained(str(root / "tt"))
    return root / "t0", root / "tt", m


def test_split_name():
    assert split_name("model.layers.3.self_attn.q_proj.weight") == (3, "self_attn.q_proj")
    assert split_name("model.layers.0.input_layernorm.weight") == (0, "input_layernorm")
    assert split_name("transformer.h.2.attn.c_attn.bias") == (2, "attn.c_attn")
    assert split_name("model.embed_tokens.weight") == (None, "model.embed_tokens")


def test_update_rows_put_the_update_where_it_happened(pair):
    t0, tt, _ = pair
    rows = update_rows(Checkpoint(t0), Checkpoint(tt))
    moved = [r for r in rows if r["rel_update"] > 0]
    assert {(r["layer"], r["module"]) for r in moved} == {(1, "mlp.up_proj"), (1, "all")}
    up = next(r for r in moved if r["module"] == "mlp.up_proj")
    assert up["rel_update"] == pytest.approx(0.1, rel=1e-4)
    whole = next(r for r in moved if r["module"] == "all")
    assert 0 < whole["rel_update"] < 0.1 and whole["params"] > up["params"]


def test_reset_layer_restores_theta0_then_theta_t(pair):
    t0, _, model = pair
    base = Checkpoint(t0)
    state = {n: base.read(n) for n, _ in model.named_parameters() if n.startswith("model.layers.1.")}
    before = dict(model.named_parameters())[MOVED].detach().clone()
    with reset_layer(model, state, 1):
        torch.testing.assert_close(dict(model.named_parameters())[MOVED].detach(), state[MOVED])
    torch.testing.assert_close(dict(model.named_parameters())[MOVED].detach(), before)


def test_spearman():
    rho, lo, hi = spearman([1, 2, 3, 4, 5], [2, 4, 6, 8, 10])
    assert rho == pytest.approx(1.0) and lo <= rho <= hi  # the interval contains rho even at +-1
    rho, lo, hi = spearman([1, 2, 3, 4, 5], [5, 3, 4, 1, 0])
    assert rho == pytest.approx(-0.9) and lo < rho < hi
    assert spearman([1, 2, 3], [1, 1, 1]) == (None, None, None)  # constant: undefined
    assert spearman([1, 2], [1, 2]) == (None, None, None)


def test_layers_stage_and_report(tmp_path, pair):
    t0, tt, _ = pair
    dirs = []
    for i in range(2):
        out = tmp_path / f"layers@{i}"
        out.mkdir()
        cfg = LayersConfig.model_validate(
            {"kind": "layers", "model": {"path": str(tt)}, "base": {"path": str(t0)}}
        )
        LayersStage().run(StageContext(f"layers@{i}", cfg, out, {"arm": "imm"}, {}))
        meta = {"name": f"layers@{i}[arm=imm,seed=0]", "coords": {"arm": "imm", "seed": "0"}, "iteration": i}
        (out / "stage.json").write_text(json.dumps(meta))
        dirs.append(out)
    metrics = json.loads((dirs[0] / "metrics.json").read_text())
    assert metrics["update"]["n"] == 2 and metrics["update"]["rel_update_max"] > 0
    assert (dirs[0] / "layers.csv").read_text().splitlines()[0].startswith("layer,module,params")
    report = tmp_path / "report"
    report.mkdir()
    names = [d.name for d in dirs]
    cfg = LayersReportConfig.model_validate({"kind": "layers_report", "analyses": names})
    LayersReportStage().run(StageContext("lr", cfg, report, {}, dict(zip(names, dirs, strict=True))))
    for f in ("layers_all.csv", "layers_update.png", "layers_report.md"):
        assert (report / f).is_file(), f
    assert "| arm=imm | 1 | 1 |" in (report / "layers_report.md").read_text()


def _trace(q, s, rationale, answer, score):
    return Trace(
        example_id=q,
        teacher="t",
        sample=s,
        prompt="p",
        completion="c",
        rationale=rationale,
        answer=answer,
        score=score,
    )


def test_diversity_counts_distinct_correct_solutions():
    traces = [
        _trace("a", 0, "1+2=3", "3", 1.0),
        _trace("a", 1, " 1+2=3\n", "3", 1.0),  # outer whitespace only: the same solution
        _trace("a", 2, "2+1=3", "3", 1.0),
        _trace("b", 0, "x", "4", 0.0),
        _trace("b", 1, "y", "5", 0.0),
    ]
    m = diversity_metrics(traces)
    assert m["n"] == 2 and m["distinct_correct"] == pytest.approx(1.0)  # (2 + 0) / 2
    assert m["distinct"] == pytest.approx(2.0) and m["solved"] == pytest.approx(0.5)
    assert m["correct"] == pytest.approx(0.6)
