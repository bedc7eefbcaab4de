"""`reasondistill show STAGE_DIR` and `reasondistill compare DIR_A DIR_B`: where a result came
from, and how two results differ, read from the files every stage directory holds
(config.yaml, stage.json, metrics.json / results.json)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import yaml

from reasondistill.errors import ReasonDistillError


def add_explain_parsers(sub) -> None:
    show = sub.add_parser("show", help="where a stage's result came from: its chain of stages and configs")
    show.add_argument("stage_dir", help="a stage directory, runs/<recipe>/<stage>-<hash>")
    compare = sub.add_parser("compare", help="config and metric differences between two stage directories")
    compare.add_argument("dir_a")
    compare.add_argument("dir_b")


def explain_main(args: argparse.Namespace) -> int:
    if args.command == "show":
        print(show(Path(args.stage_dir)))
    else:
        print(compare(Path(args.dir_a), Path(args.dir_b)))
    return 0


def _stage(d: Path) -> tuple[dict, dict]:
    """(stage.json, config) of a stage directory; a clear error for anything else."""
    meta_path = d / "stage.json"
    if not meta_path.is_file():
        raise ReasonDistillError(f"{d}: not a stage directory (no stage.json)")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        config = yaml.safe_load((d / "config.yaml").read_text(encoding="utf-8")) if (d / "config.yaml").is_file() else {}
    except (json.JSONDecodeError, yaml.YAMLError) as e:
        raise ReasonDistillError(f"{d}: unreadable stage.json or config.yaml: {e}") from None
    return meta, config or {}


def show(stage_dir: Path) -> str:
    """The stage, then every stage it was built from (depth first), each with its config."""
    lines: list[str] = []
    seen: set[str] = set()

    def visit(d: Path, depth: int) -> None:
        meta, config = _stage(d)
        pad = "  " * depth
        state = "complete" if (d / "_COMPLETE").exists() else "NOT complete"
        lines.append(f"{pad}{meta['name']} ({meta['kind']}, {state}) {d}")
        if str(d) in seen:
            lines.append(f"{pad}  (shown above)")
            return
        seen.add(str(d))
        inv = meta.get("invocation") or {}
        if depth == 0 and inv:
            git = inv.get("git") or {}
            commit = f"{git.get('commit', '?')[:12]}{' (dirty)' if git.get('dirty') else ''}" if git else "no git"
            lines.append(f"{pad}  recipe {inv.get('recipe')} at {commit}; reasondistill {inv.get('reasondistill')}")
            libs = ", ".join(f"{k} {v}" for k, v in (inv.get("libraries") or {}).items() if v)
            lines.append(f"{pad}  libraries: {libs}")
            lines.append(f"{pad}  command: {' '.join(inv.get('command') or [])}")
        if meta.get("started"):
            lines.append(f"{pad}  started {meta['started']}, finished {meta.get('finished', '—')}")
        for key, value in _flatten(config).items():
            lines.append(f"{pad}  {key} = {json.dumps(value)}")
        for name, inp in (meta.get("input_dirs") or {}).items():
            src = Path(inp["dir"])
            if (src / "stage.json").is_file():
                visit(src, depth + 1)
            else:
                lines.append(f"{pad}  {name}: {src} (gone)")

    visit(stage_dir, 0)
    return "\n".join(lines)


def compare(a: Path, b: Path) -> str:
    """Config keys that differ, then metrics that differ (b - a), of two stage directories."""
    (meta_a, cfg_a), (meta_b, cfg_b) = _stage(a), _stage(b)
    lines = [f"A: {meta_a['name']} ({meta_a['kind']}) {a}", f"B: {meta_b['name']} ({meta_b['kind']}) {b}", ""]
    fa, fb = _flatten(cfg_a), _flatten(cfg_b)
    diffs = [k for k in sorted(set(fa) | set(fb)) if fa.get(k, "<unset>") != fb.get(k, "<unset>")]
    lines.append("config differences:" if diffs else "configs are identical")
    for k in diffs:
        lines.append(f"  {k}: {json.dumps(fa.get(k, '<unset>'))} -> {json.dumps(fb.get(k, '<unset>'))}")
    ma, mb = _metrics(a), _metrics(b)
    if ma or mb:
        keys = sorted(set(ma) | set(mb))
        changed = [k for k in keys if ma.get(k) != mb.get(k)]
        lines += ["", f"metrics: {len(changed)} of {len(keys)} differ (A -> B, B - A)"]
        for k in changed:
            va, vb = ma.get(k), mb.get(k)
            delta = f"  ({vb - va:+.4g})" if isinstance(va, int | float) and isinstance(vb, int | float) else ""
            lines.append(f"  {k}: {va} -> {vb}{delta}")
    return "\n".join(lines)


def _metrics(d: Path) -> dict[str, Any]:
    """A stage's numbers, flattened: metrics.json (evaluate, analysis) or a report's per-eval metrics."""
    if (d / "metrics.json").is_file():
        return {k: v for k, v in _flatten(json.loads((d / "metrics.json").read_text())).items() if _scalar(v)}
    if (d / "results.json").is_file():
        results = json.loads((d / "results.json").read_text())
        out = {}
        for e in results.get("evals", []):
            for k, v in _flatten(e.get("metrics", {})).items():
                if _scalar(v):
                    out[f"{e['name']}.{k}"] = v
        return out
    return {}


def _scalar(v: Any) -> bool:
    return v is None or isinstance(v, int | float | str | bool)


def _flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(obj, dict) and obj:
        out: dict[str, Any] = {}
        for k, v in obj.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: obj}
