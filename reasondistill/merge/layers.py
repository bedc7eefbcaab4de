"""Layer-wise analysis of a fine-tune theta_t against its start theta_0 (IMM, arXiv 2503.02103).

The paper reports that self-improvement's weight updates concentrate in layers that matter less
for reasoning. Two per-layer quantities test that here:
- update size: ||theta_t - theta_0||_F / ||theta_0||_F per transformer layer and module type
  (q_proj, mlp.down_proj, input_layernorm, ...; a module's weight and bias count together);
- importance: the accuracy drop when that one layer is reset to theta_0 (its update removed),
  in- and out-of-domain. The paper's own importance measure is not given in what we could read;
  this is the ablation the issue asks for, and it departs from a pure "importance to reasoning":
  it measures what the update contributes, so a layer that barely moved cannot matter much.
Their Spearman correlation per split (negative: the claim holds) goes into metrics.json.
"""

from __future__ import annotations

import math
import re
from contextlib import contextmanager

# "model.layers.3.self_attn.q_proj.weight" (Llama, Qwen2, Mistral), "transformer.h.3.attn..." (GPT-2)
_LAYER = re.compile(r"^(?:.*\.)?(?:layers|h|blocks)\.(\d+)\.(.+?)(?:\.(?:weight|bias))?$")


def split_name(name: str) -> tuple[int | None, str]:
    """(transformer layer, module) of a parameter name; (None, name) outside the layers."""
    m = _LAYER.match(name)
    if m is None:
        return None, re.sub(r"\.(weight|bias)$", "", name)
    return int(m.group(1)), m.group(2)


def update_rows(base, model) -> list[dict]:
    """Per (layer, module): params, ||theta_0||_F, ||theta_t - theta_0||_F, their ratio; plus one
    row per layer with module "all". `base`, `model`: merge.checkpoint.Checkpoint (same tensors)."""
    import torch

    acc: dict[tuple, list[float]] = {}  # (layer, module) -> [params, sum sq base, sum sq delta]
    for name in base.tensors:
        t0 = base.read(name).double()
        if not t0.is_floating_point():
            continue
        delta = model.read(name).double() - t0
        layer, module = split_name(name)
        for key in [(layer, module)] + ([(layer, "all")] if layer is not None else []):
            a = acc.setdefault(key, [0, 0.0, 0.0])
            a[0] += t0.numel()
            a[1] += float(torch.sum(t0 * t0))
            a[2] += float(torch.sum(delta * delta))
    rows = []
    for (layer, module), (n, s0, sd) in sorted(acc.items(), key=lambda kv: _order(kv[0])):
        n0, nd = math.sqrt(s0), math.sqrt(sd)
        rel = nd / n0 if n0 > 0 else (0.0 if nd == 0 else math.inf)
        rows.append(
            {
                "layer": layer,
                "module": module,
                "params": n,
                "norm_base": n0,
                "norm_update": nd,
                "rel_update": rel,
            }
        )
    return rows


def _order(key: tuple) -> tuple:
    layer, module = key
    return (-1 if layer is None else layer, module == "all", module)


def layer_params(model, layer: int) -> list:
    """The (name, parameter) pairs of one transformer layer of a loaded model."""
    return [(n, p) for n, p in model.named_parameters() if split_name(n)[0] == layer]


@contextmanager
def reset_layer(model, base_state: dict, layer: int):
    """Within the block, layer `layer` of `model` holds theta_0's weights (its update removed)."""
    import torch

    params = layer_params(model, layer)
    saved = [p.detach().clone() for _, p in params]
    with torch.no_grad():
        for name, p in params:
            p.copy_(base_state[name].to(p.dtype))
    try:
        yield
    finally:
        with torch.no_grad():
            for (_, p), s in zip(params, saved, strict=True):
                p.copy_(s)


def n_layers(rows: list[dict]) -> int:
    return len({r["layer"] for r in rows if r["layer"] is not None})


def spearman(x: list[float], y: list[float]) -> tuple[float | None, float | None, float | None]:
    """Spearman's rho (average ranks for ties) with a 95% Fisher-z interval using the
    Fieller-Hartley-Pearson standard error 1.06 / sqrt(n - 3); (None, None, None) when
    undefined (n < 3 or a constant input), no interval for n < 4."""
    n = len(x)
    if n < 3:
        return None, None, None
    rx, ry = _ranks(x), _ranks(y)
    mx, my = sum(rx) / n, sum(ry) / n
    sxy = sum((a - mx) * (b - my) for a, b in zip(rx, ry, strict=True))
    sxx, syy = sum((a - mx) ** 2 for a in rx), sum((b - my) ** 2 for b in ry)
    if sxx == 0 or syy == 0:
        return None, None, None
    rho = sxy / math.sqrt(sxx * syy)
    if n < 4:
        return rho, None, None
    z, se = math.atanh(max(-0.999999, min(0.999999, rho))), 1.06 / math.sqrt(n - 3)
    # min/max: at rho = +-1 the clamped z would put the interval a hair inside rho.
    return rho, min(rho, math.tanh(z - 1.96 * se)), max(rho, math.tanh(z + 1.96 * se))


def _ranks(v: list[float]) -> list[float]:
    order = sorted(range(len(v)), key=lambda i: v[i])
    ranks = [0.0] * len(v)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and v[order[j + 1]] == v[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def write_csv(path, rows: list[dict]) -> None:
    """Rows as CSV (None -> empty cell), written atomically; columns in first-seen order."""
    import csv

    fields = list(dict.fromkeys(k for r in rows for k in r))
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if r.get(k) is None else r[k]) for k in fields})
    tmp.replace(path)
