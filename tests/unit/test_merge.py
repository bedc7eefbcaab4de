"""Merges (reasondistill/merge): properties, agreement with mergekit, the two mergekit traps, bad inputs.

Three tiny random Llamas share one tokenizer: theta_0 and two fine-tunes theta_1, theta_2
(theta_0 plus noise). Every merge here streams real safetensors directories.
"""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file

from reasondistill.errors import ReasonDistillError
from reasondistill.merge.checkpoint import Checkpoint, StreamWriter
from reasondistill.merge.engine import Input, merge_models, tensor_seed
from reasondistill.merge.methods import MERGE_METHODS
from tests.unit.helpers_tiny import tiny_model, tiny_tokenizer

TOL = dict(rtol=0, atol=1e-6)


def _save(model, tok, path):
    model.save_pretrained(str(path))
    tok.save_pretrained(str(path))
    return path


@pytest.fixture(scope="module")
def thetas(tmp_path_factory):
    """theta_0, theta_1, theta_2 as model directories (theta_i = theta_0 + noise_i)."""
    root = tmp_path_factory.mktemp("thetas")
    tok = tiny_tokenizer()
    base = tiny_model(tok, seed=0)
    dirs = [_save(base, tok, root / "t0")]
    for i in (1, 2):
        m = tiny_model(tok, seed=0)
        torch.manual_seed(100 + i)
        with torch.no_grad():
            for p in m.parameters():
                p.add_(0.02 * torch.randn_like(p))
        dirs.append(_save(m, tok, root / f"t{i}"))
    return dirs


def sd(path):
    return load_file(str(path / "model.safetensors"))


def method(kind, **knobs):
    return MERGE_METHODS.get(kind).model_validate({"kind": kind, **knobs})


def run(tmp_path, kind, base, models, seed=0, **knobs):
    out = tmp_path / f"out-{kind}"
    inputs = [Input(f"models[{i}]", p, w, d) for i, (p, w, d) in enumerate(models)]
    merge_models(None if base is None else Input("base", base), inputs, method(kind, **knobs), out, seed=seed)
    return sd(out)


def close(a, b):
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], **TOL)


@pytest.mark.parametrize("kind", MERGE_METHODS.names())
def test_merging_a_model_with_itself_returns_it(tmp_path, thetas, kind):
    t1 = thetas[1]
    base = None if kind == "linear" else t1
    density = 1.0 if kind in ("linear", "task_arithmetic") else 0.7
    out = run(tmp_path, kind, base, [(t1, 0.5, density), (t1, 0.5, density)])
    close(out, sd(t1))


def test_task_arithmetic_equals_its_closed_form(tmp_path, thetas):
    t0, t1, t2 = (sd(p) for p in thetas)
    out = run(
        tmp_path, "task_arithmetic", thetas[0], [(thetas[1], 0.3, 1.0), (thetas[2], 0.7, 1.0)], scale=0.8
    )
    close(out, {k: t0[k] + 0.8 * (0.3 * (t1[k] - t0[k]) + 0.7 * (t2[k] - t0[k])) for k in t0})


@pytest.mark.parametrize("dare, plain", [("dare_linear", "task_arithmetic"), ("dare_ties", "ties")])
def test_dare_at_density_one_equals_the_method_without_drops(tmp_path, thetas, dare, plain):
    models = [(thetas[1], 0.4, 1.0), (thetas[2], 0.6, 1.0)]
    for normalize in (False, True):  # explicit: mergekit's defaults differ (ties on, dare_ties off)
        close(
            run(tmp_path, dare, thetas[0], models, normalize=normalize),
            run(tmp_path, plain, thetas[0], models, normalize=normalize),
        )


@pytest.mark.parametrize("kind", ["task_arithmetic", "dare_linear", "ties"])
def test_alpha_zero_and_one_return_theta0_and_theta_t(tmp_path, thetas, kind):
    for alpha, want in ((0.0, thetas[0]), (1.0, thetas[1])):
        close(run(tmp_path, kind, thetas[0], [(thetas[1], alpha, 1.0)]), sd(want))
    # linear: (1 - alpha) theta_0 + alpha theta_t
    for alpha, want in ((0.0, thetas[0]), (1.0, thetas[1])):
        close(run(tmp_path, "linear", thetas[0], [(thetas[1], alpha, 1.0)], base_weight=1 - alpha), sd(want))


def _mergekit(kind, thetas, params, base=True):
    from mergekit.merge_methods import merge_state_dicts

    dicts = {"base": sd(thetas[0]), "m0": sd(thetas[1]), "m1": sd(thetas[2])}
    if not base:
        dicts.pop("base")
    return merge_state_dicts(
        dicts, kind, parameters=params, base="base" if base else None, dtype=torch.float32
    )


@pytest.mark.parametrize(
    "kind, knobs, density, params",
    [
        ("task_arithmetic", {"scale": 0.7}, 1.0, {"weight": [0.3, 0.5], "lambda": 0.7}),
        ("ties", {}, 0.5, {"weight": [0.3, 0.5], "density": [0.5, 0.5]}),
        (
            "breadcrumbs",
            {"gamma": 0.05},
            0.6,
            {"weight": [0.3, 0.5], "density": [0.6, 0.6], "gamma": [0.05, 0.05]},
        ),
    ],
)
def test_deterministic_methods_agree_with_mergekit(tmp_path, thetas, kind, knobs, density, params):
    ours = run(tmp_path, kind, thetas[0], [(thetas[1], 0.3, density), (thetas[2], 0.5, density)], **knobs)
    close(ours, _mergekit(kind, thetas, params))


def test_linear_agrees_with_mergekit(tmp_path, thetas):
    ours = run(tmp_path, "linear", None, [(thetas[1], 0.3, 1.0), (thetas[2], 0.5, 1.0)])
    close(ours, _mergekit("linear", thetas, {"weight": [0.3, 0.5]}, base=False))


def test_dare_agrees_with_mergekit_under_the_same_drops(tmp_path, thetas):
    """Same per-tensor seed -> same Bernoulli mask: mergekit's dare_linear with its L1 rescale."""
    from mergekit.merge_methods import merge_tensors

    ours = run(tmp_path, "dare_linear", thetas[0], [(thetas[1], 0.5, 0.8)], seed=3, rescale="l1")
    t0, t1 = sd(thetas[0]), sd(thetas[1])
    for name in t0:
        torch.manual_seed(tensor_seed(3, name))
        want = merge_tensors(
            [t0[name], t1[name]],
            "dare_linear",
            parameters={"weight": [0.5], "density": [0.8]},
            base_index=0,
            ids=["base", "models[0]"],
            dtype=torch.float32,
        )
        torch.testing.assert_close(ours[name], want, **TOL)


def test_trap_dare_rescale_is_exact_one_over_density(tmp_path, thetas):
    """rescale exact = (no rescale) / density under the same drops; mergekit's L1 rescale is not."""
    models = [(thetas[1], 0.5, 0.6)]
    exact = run(tmp_path, "dare_linear", thetas[0], models, seed=1)
    none = run(tmp_path, "dare_linear", thetas[0], models, seed=1, rescale="none")
    l1 = run(tmp_path, "dare_linear", thetas[0], models, seed=1, rescale="l1")
    t0 = sd(thetas[0])
    name = "model.layers.0.mlp.up_proj.weight"
    close({k: exact[k] - t0[k] for k in t0}, {k: (none[k] - t0[k]) / 0.6 for k in t0})
    assert not torch.allclose(exact[name], l1[name], **TOL)
    # normalised dare_linear keeps the exact factor (mergekit would divide by the folded weights)
    norm = run(
        tmp_path,
        "dare_linear",
        thetas[0],
        [(thetas[1], 0.5, 0.6), (thetas[1], 1.5, 0.6)],
        seed=1,
        normalize=True,
    )
    assert norm.keys() == t0.keys()


def test_trap_ties_with_one_model_keeps_its_weight(tmp_path, thetas):
    t0, t1 = sd(thetas[0]), sd(thetas[1])
    ours = run(tmp_path, "ties", thetas[0], [(thetas[1], 0.5, 1.0)])
    close(ours, {k: t0[k] + 0.5 * (t1[k] - t0[k]) for k in t0})
    from mergekit.merge_methods import merge_state_dicts

    raw = merge_state_dicts(
        {"b": t0, "m": t1}, "ties", parameters={"weight": [0.5], "density": [1.0]}, base="b"
    )
    name = "model.layers.0.mlp.up_proj.weight"
    torch.testing.assert_close(raw[name], t1[name], **TOL)  # mergekit's default: the weight cancels
    with pytest.raises(ReasonDistillError, match="normalize with a single model"):
        run(tmp_path, "ties", thetas[0], [(thetas[1], 0.5, 1.0)], normalize=True)


@pytest.mark.parametrize(
    "kind, models, knobs, message",
    [
        ("linear", [(1, 1.0, 1.0), (2, -1.0, 1.0)], {"base_weight": 0.0}, "weights sum to 0"),
        ("ties", [(1, 0.5, 0.5), (2, -0.5, 0.5)], {}, "weights sum to 0"),
        ("task_arithmetic", [(1, 1.0, 0.5)], {}, "density is used by"),
        ("dare_ties", [(1, 1.0, 0.5), (2, 1.0, 0.7)], {"normalize": True}, "needs one density"),
    ],
)
def test_bad_knobs_fail_before_any_write(tmp_path, thetas, kind, models, knobs, message):
    with pytest.raises(ReasonDistillError, match=message):
        run(tmp_path, kind, thetas[0], [(thetas[i], w, d) for i, w, d in models], **knobs)
    assert not any(tmp_path.iterdir())


def _variant(tmp_path, thetas, name, edit):
    d = tmp_path / name
    shutil.copytree(thetas[1], d)
    edit(d)
    return d


def _other_shape(d):
    tok = tiny_tokenizer()
    m = tiny_model(tok)
    m.config.intermediate_size = 32
    from transformers import LlamaForCausalLM

    LlamaForCausalLM(m.config).save_pretrained(str(d))


def _other_arch(d):
    cfg = json.loads((d / "config.json").read_text())
    cfg["model_type"], cfg["architectures"] = "qwen2", ["Qwen2ForCausalLM"]
    (d / "config.json").write_text(json.dumps(cfg))


def _other_tokenizer(d):
    tok = json.loads((d / "tokenizer.json").read_text())
    vocab = tok["model"]["vocab"]
    first = next(iter(vocab))
    vocab[first + "x"] = vocab.pop(first)
    (d / "tokenizer.json").write_text(json.dumps(tok))


@pytest.mark.parametrize(
    "edit, message",
    [
        (_other_shape, "different shapes"),
        (_other_arch, "different architectures"),
        (_other_tokenizer, "different tokenizers"),
    ],
)
def test_incompatible_models_fail_before_any_merge_work(tmp_path, thetas, edit, message):
    other = _variant(tmp_path, thetas, "other", edit)
    out = tmp_path / "out"
    with pytest.raises(ReasonDistillError, match=message):
        merge_models(
            Input("base", thetas[0]), [Input("models[0]", other, 0.5)], method("task_arithmetic"), out
        )
    assert not out.exists() and not (tmp_path / "out.tmp").exists()


def test_stream_writer_shards_round_trip_through_transformers(tmp_path, thetas):
    from transformers import AutoModelForCausalLM

    ckpt = Checkpoint(thetas[1])
    names = list(ckpt.tensors)
    out = tmp_path / "sharded"
    out.mkdir()
    writer = StreamWriter(out, [(n, "BF16", ckpt.tensors[n].shape) for n in names], max_shard_bytes=20_000)
    for n in names:
        writer.write(n, ckpt.read(n).to(torch.bfloat16))
    writer.close()
    assert len(list(out.glob("model-*.safetensors"))) > 1 and (out / "model.safetensors.index.json").is_file()
    for f in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy(thetas[1] / f, out / f)
    loaded = AutoModelForCausalLM.from_pretrained(str(out))
    want = sd(thetas[1])
    for name, p in loaded.state_dict().items():
        if name in want:
            torch.testing.assert_close(p.to(torch.bfloat16), want[name].to(torch.bfloat16))


def test_a_bare_lora_adapter_is_refused(tmp_path, thetas):
    """A train stage's model/ is already merged with its LoRA adapter; a PEFT adapter dir is not a model."""
    adapter = _variant(tmp_path, thetas, "adapter", lambda d: (d / "adapter_config.json").write_text("{}"))
    with pytest.raises(
        ReasonDistillError, match="holds a PEFT adapter; merge the adapter into its base first"
    ):
        merge_models(
            Input("base", thetas[0]),
            [Input("models[0]", adapter, 0.5)],
            method("task_arithmetic"),
            tmp_path / "o",
        )
