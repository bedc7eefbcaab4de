"""Collecting evaluation results into one table: results.json, markdown, seed summaries.

results.json layout (every number the report shows, plus the coordinates needed to regroup):
    {"title", "splits": [...],
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

SEEDS_CHART = "results_seeds.png"


def load_eval(stage_dir: Path, fallback_name: str) -> dict:
    """One evaluate instance: its stage.json label (written by the pipeline) and metrics.json."""
    label_path = stage_dir / "stage.json"
    label = json.loads(label_path.read_text()) if label_path.exists() else {}
    return {
        "name": label.get("name", fallback_name),
        "kind": label.get("kind", "evaluate"),
        "coords": {str(k): str(v) for k, v in (label.get("coords") or {}).items()},
        "hash": label.get("hash"),
        "metrics": json.loads((stage_dir / "metrics.json").read_text()),
    }


def split_names(evals: list[dict]) -> list[str]:
    """Every split seen, in first-seen order."""
    seen: dict[str, None] = {}
    for e in evals:
        seen.update(dict.fromkeys(e["metrics"]))
    return list(seen)


def summarize_over_seeds(evals: list[dict], seed_key: str = "seed") -> list[dict]:
    """Mean, sample std and per-seed accuracy of instances that differ only in `seed_key`.

    Instances without that coordinate are left out; [] when none has it. std is None for a
    single seed.
    """
    groups: dict[tuple, list[dict]] = {}
    for e in evals:
        if seed_key in e["coords"]:
            rest = tuple(sorted((k, v) for k, v in e["coords"].items() if k != seed_key))
            groups.setdefault(rest, []).append(e)
    out = []
    for rest, members in groups.items():
        splits = {}
        for split in split_names(members):
            values = {
                m["coords"][seed_key]: m["metrics"][split]["accuracy"]
                for m in members
                if split in m["metrics"] and m["metrics"][split]["accuracy"] is not None
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
                "seeds": [m["coords"][seed_key] for m in members],
                "splits": splits,
            }
        )
    return out


def build_results(evals: list[dict], title: str | None = None, contrasts: list | None = None) -> dict:
    """Everything the report shows; `contrasts` (report/contrasts.py) compare over-seeds groups."""
    from reasondistill.report.contrasts import compute_contrasts

    over_seeds = summarize_over_seeds(evals)
    return {
        "title": title,
        "splits": split_names(evals),
        "evals": evals,
        "over_seeds": over_seeds,
        "contrasts": compute_contrasts(over_seeds, contrasts or []),
    }


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.1f}"


def _cell_acc(m: dict | None) -> str:
    if m is None or m.get("accuracy") is None:
        return "—"
    return f"{_pct(m['accuracy'])} [{_pct(m['ci_low'])}, {_pct(m['ci_high'])}]"


def _cell_tokens(m: dict | None) -> str:
    t = None if m is None else m.get("mean_generated_tokens")
    return "—" if t is None else f"{t:.1f}"


def to_markdown(results: dict) -> str:
    """A markdown table: one row per eval instance; accuracy % [95% CI], n, tokens per split."""
    splits = results["splits"]
    lines = [f"# {results['title'] or 'Results'}", ""]
    head = ["eval"] + [c for s in splits for c in (f"{s} acc % [95% CI]", f"{s} n", f"{s} tokens")]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for e in results["evals"]:
        cells = [e["name"]]
        for s in splits:
            m = e["metrics"].get(s)
            cells += [_cell_acc(m), "—" if m is None else str(m["n"]), _cell_tokens(m)]
        lines.append("| " + " | ".join(cells) + " |")
    if results["over_seeds"]:
        lines += ["", "## Over seeds (accuracy %: mean ± std (per-seed values); generated tokens per answer)", ""]
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
                std = "—" if st["std"] is None else _pct(st["std"])
                vals = ", ".join(f"{k}: {_pct(v)}" for k, v in st["values"].items())
                cells.append(f"{_pct(st['mean'])} ± {std} ({vals})")
            for s in splits:
                t = (g["splits"].get(s) or {}).get("tokens")
                cells.append("—" if t is None else f"{t:.1f}")
            lines.append("| " + " | ".join(cells) + " |")
        lines += ["", f"![accuracy over seeds]({SEEDS_CHART})"]  # the report stage writes it beside this file
    if results.get("contrasts"):
        from reasondistill.report.contrasts import contrasts_markdown

        lines += ["", *contrasts_markdown(results["contrasts"], splits)]
    return "\n".join(lines) + "\n"
