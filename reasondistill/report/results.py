"""Collecting metrics stages' results into one table: results.json, markdown, seed summaries.

Any stage that writes metrics.json in the shared shape (artifacts.read_metrics: {group: {metric:
value, metric_ci_low, metric_ci_high, n, ...}}; evaluate's groups are splits) can be reported:
the report's `metric` (default accuracy) is tabulated with its interval, summarised over seeds,
contrasted and plotted. A stage of a repeat block adds its iteration as the coordinate `iter`.

results.json layout (every number the report shows, plus the coordinates needed to regroup):
    {"title", "metric", "splits": [...],
     "evals": [{"name", "kind", "coords": {axis: value}, "hash", "metrics": {split: {n, correct,
                accuracy, ci_low, ci_high, mean_generated_tokens}}}],
     "over_seeds": [{"coords", "instances", "seeds",
                     "splits": {split: {"mean", "std", "values": {seed: acc}, "tokens"}}}],
     "contrasts": [{"label", "a", "b", "splits": {split: {"diff", "se", "paired"}}}]}  (report/contrasts.py)
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from reasondistill.artifacts import read_metrics

SEEDS_CHART = "results_seeds.png"
ITERATIONS_CHART = "results_iterations.png"
ITER = "iter"  # the coordinate a repeat block's iteration becomes


def load_eval(stage_dir: Path, fallback_name: str) -> dict:
    """One metrics instance: its stage.json label (written by the pipeline) and metrics.json."""
    label_path = stage_dir / "stage.json"
    label = json.loads(label_path.read_text()) if label_path.exists() else {}
    coords = {str(k): str(v) for k, v in (label.get("coords") or {}).items()}
    if label.get("iteration") is not None:
        coords[ITER] = str(label["iteration"])
    return {
        "name": label.get("name", fallback_name),
        "kind": label.get("kind", "evaluate"),
        "coords": coords,
        "hash": label.get("hash"),
        "metrics": read_metrics(stage_dir),
    }


def value(m: dict | None, metric: str) -> tuple[float | None, float | None, float | None]:
    """(value, interval low, interval high) of `metric` in one group's metrics; accuracy's interval
    is ci_low/ci_high (evaluate's Wilson interval), any other metric's metric_ci_low/_high."""
    if m is None or m.get(metric) is None:
        return None, None, None
    lo, hi = ("ci_low", "ci_high") if metric == "accuracy" else (f"{metric}_ci_low", f"{metric}_ci_high")
    return m[metric], m.get(lo), m.get(hi)


def split_names(evals: list[dict]) -> list[str]:
    """Every split seen, in first-seen order."""
    seen: dict[str, None] = {}
    for e in evals:
        seen.update(dict.fromkeys(e["metrics"]))
    return list(seen)


def summarize_over_seeds(evals: list[dict], metric: str = "accuracy", seed_key: str = "seed") -> list[dict]:
    """Mean, sample std and per-seed `metric` of instances that differ only in `seed_key`.

    Instances without that coordinate are left out; [] when none has it. std is None for a
    single seed.
    """
    groups: dict[tuple, list[dict]] = {}
    for e in evals:
        if seed_key in e["coords"]:
            rest = tuple(sorted((k, v) for k, v in e["coords"].items() if k != seed_key))
            groups.setdefault(rest, []).append(e)
    out = []
    for rest, members in _one_value_per_seed_and_split(groups, seed_key).items():
        splits = {}
        for split in split_names(members):
            values = {
                m["coords"][seed_key]: value(m["metrics"].get(split), metric)[0]
                for m in members
                if value(m["metrics"].get(split), metric)[0] is not None
            }
            accs = list(values.values())
            mean = sum(accs) / len(accs) if accs else None
            std = math.sqrt(sum((a - mean) ** 2 for a in accs) / (len(accs) - 1)) if len(accs) > 1 else None
            toks = [
                m["metrics"][split]["mean_generated_tokens"]
                for m in members
                if split in m["metrics"] and m["metrics"][split].get("mean_generated_tokens") is not None
            ]
            tokens = sum(toks) / len(toks) if toks else None  # generated tokens per answer, mean over seeds
            splits[split] = {"mean": mean, "std": std, "values": values, "tokens": tokens}
        out.append(
            {
                "coords": dict(rest),
                "instances": [m["name"] for m in members],
                "seeds": list(dict.fromkeys(m["coords"][seed_key] for m in members)),  # distinct
                "splits": splits,
            }
        )
    return out


def _one_value_per_seed_and_split(groups: dict[tuple, list[dict]], seed_key: str) -> dict[tuple, list[dict]]:
    """Groups in which no seed has two values for one split. Instances of different stages can
    share every coordinate: pooled, that is right when each evaluates its own splits (IMM's
    e_add / e_sub / e_pm), but where two give the same split one seed's value would silently
    replace the other's. Such a group is split by stage, with `stage` added to its coordinates."""
    out: dict[tuple, list[dict]] = {}
    for rest, members in groups.items():
        seen = [(m["coords"][seed_key], split) for m in members for split in m["metrics"]]
        if len(set(seen)) == len(seen):
            out[rest] = members
            continue
        for m in members:
            out.setdefault((*rest, ("stage", m["name"].split("[")[0])), []).append(m)
    return out


def build_results(
    evals: list[dict], title: str | None = None, contrasts: list | None = None, metric: str = "accuracy"
) -> dict:
    """Everything the report shows; `contrasts` (report/contrasts.py) compare over-seeds groups."""
    from reasondistill.errors import ReasonDistillError
    from reasondistill.report.contrasts import compute_contrasts

    if not any(value(m, metric)[0] is not None for e in evals for m in e["metrics"].values()):
        raise ReasonDistillError(f"report: no stage of `evals` has a metric {metric!r}")
    over_seeds = summarize_over_seeds(evals, metric)
    return {
        "title": title,
        "metric": metric,
        "splits": split_names(evals),
        "evals": evals,
        "over_seeds": over_seeds,
        "contrasts": compute_contrasts(over_seeds, contrasts or []),
    }


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.1f}"


def _num(x: float | None) -> str:
    return "—" if x is None else f"{x:.4g}"


def fmt(metric: str):
    """How a metric's numbers are printed: accuracy in percent (as the papers do), others as is."""
    return _pct if metric == "accuracy" else _num


def _cell(m: dict | None, metric: str) -> str:
    v, lo, hi = value(m, metric)
    f = fmt(metric)
    return "—" if v is None else f(v) + ("" if lo is None or hi is None else f" [{f(lo)}, {f(hi)}]")


def _cell_tokens(m: dict | None) -> str:
    t = None if m is None else m.get("mean_generated_tokens")
    return "—" if t is None else f"{t:.1f}"


def to_markdown(results: dict) -> str:
    """A markdown table: one row per instance; the metric [95% CI], n, tokens per split (group)."""
    splits, metric = results["splits"], results.get("metric", "accuracy")
    f, name = fmt(metric), ("acc %" if metric == "accuracy" else metric)
    lines = [f"# {results['title'] or 'Results'}", ""]
    head = ["eval"] + [c for s in splits for c in (f"{s} {name} [95% CI]", f"{s} n", f"{s} tokens")]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for e in results["evals"]:
        cells = [e["name"]]
        for s in splits:
            m = e["metrics"].get(s)
            cells += [_cell(m, metric), "—" if m is None or m.get("n") is None else str(m["n"]), _cell_tokens(m)]
        lines.append("| " + " | ".join(cells) + " |")
    if results["over_seeds"]:
        what = "accuracy %" if metric == "accuracy" else metric
        lines += ["", f"## Over seeds ({what}: mean ± std (per-seed values); generated tokens per answer)", ""]
        head = ["coords", "seeds", *splits, *(f"{s} tokens" for s in splits)]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for g in results["over_seeds"]:
            coords = ", ".join(f"{k}={v}" for k, v in g["coords"].items()) or "—"
            cells = [coords, str(len(g["seeds"]))]
            for s in splits:
                st = g["splits"].get(s)
                if st is None or st["mean"] is None:
                    cells.append("—")
                    continue
                std = "—" if st["std"] is None else f(st["std"])
                vals = ", ".join(f"{k}: {f(v)}" for k, v in st["values"].items())
                cells.append(f"{f(st['mean'])} ± {std} ({vals})")
            for s in splits:
                t = (g["splits"].get(s) or {}).get("tokens")
                cells.append("—" if t is None else f"{t:.1f}")
            lines.append("| " + " | ".join(cells) + " |")
        lines += ["", f"![accuracy over seeds]({SEEDS_CHART})"]  # the report stage writes it beside this file
    if results.get("contrasts"):
        from reasondistill.report.contrasts import contrasts_markdown

        lines += ["", *contrasts_markdown(results["contrasts"], splits, metric)]
    if any(ITER in e["coords"] for e in results["evals"]):
        lines += ["", f"![{metric} over iterations]({ITERATIONS_CHART})"]
    return "\n".join(lines) + "\n"
