"""The package's import structure: no import cycles, and planning never imports torch.

Planning a recipe (`--dry-run`) and rerunning one whose stages are all complete must stay fast
(no torch, transformers or matplotlib), so stage modules import their heavy units inside `run`.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import reasondistill

PKG = Path(reasondistill.__file__).parent
ROOT = PKG.parent
HEAVY = ("torch", "transformers", "matplotlib", "accelerate")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str) -> bool:
    rel = Path(*name.split("."))
    return (ROOT / rel).with_suffix(".py").is_file() or (ROOT / rel / "__init__.py").is_file()


def _imports(path: Path) -> set[str]:
    """Package modules imported at module level (TYPE_CHECKING blocks included; function bodies not)."""
    name, is_pkg = _module_name(path), path.name == "__init__.py"
    out: set[str] = set()

    def walk(nodes):
        for n in nodes:
            if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                continue
            if isinstance(n, ast.Import):
                out.update(a.name for a in n.names)
            elif isinstance(n, ast.ImportFrom):
                base = n.module or ""
                if n.level:
                    parent = name.split(".") if is_pkg else name.split(".")[:-1]
                    parent = parent[: len(parent) - (n.level - 1)]
                    base = ".".join(parent + ([n.module] if n.module else []))
                for a in n.names:
                    out.add(f"{base}.{a.name}" if _is_module(f"{base}.{a.name}") else base)
            elif isinstance(n, ast.ClassDef):
                walk(n.body)
            else:
                walk(ast.iter_child_nodes(n))

    walk(ast.parse(path.read_text(encoding="utf-8")).body)
    return {m for m in out if m.startswith("reasondistill") and _is_module(m) and m != name}


def test_no_import_cycles():
    graph = {_module_name(p): _imports(p) for p in PKG.rglob("*.py")}
    state: dict[str, str] = {}
    cycles = []

    def visit(m: str, chain: list[str]) -> None:
        if state.get(m) == "done":
            return
        if state.get(m) == "open":
            cycles.append(" -> ".join(chain[chain.index(m) :] + [m]))
            return
        state[m] = "open"
        for d in sorted(graph.get(m, ())):
            visit(d, chain + [m])
        state[m] = "done"

    for m in sorted(graph):
        visit(m, [])
    assert cycles == [], "import cycles:\n" + "\n".join(cycles)


def _heavy_modules_after(code: str, cwd: Path) -> list[str]:
    probe = f"{code}\nimport sys, json\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    out = subprocess.run([sys.executable, "-c", probe], cwd=cwd, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_dry_run_imports_no_torch():
    code = "from reasondistill.cli import main\nassert main(['run', 'recipes/cot_placement.yaml', '--dry-run']) == 0"
    assert _heavy_modules_after(code, ROOT) == []


def test_rerun_of_a_complete_recipe_imports_no_torch(tmp_path):
    """Every stage marked complete: the rerun skips them all and prints the report table."""
    from reasondistill.pipeline import MARKER, plan
    from reasondistill.recipe import load_recipe

    recipe, _ = load_recipe(ROOT / "recipes/quickstart.yaml", [f"runs_dir={tmp_path}"])
    for inst in plan(recipe):
        inst.out_dir.mkdir(parents=True)
        (inst.out_dir / MARKER).write_text("{}")
        if inst.kind == "report":
            (inst.out_dir / "results.md").write_text("| the table |\n")
    code = (
        "from reasondistill.cli import main\n"
        f"assert main(['run', 'recipes/quickstart.yaml', 'runs_dir={tmp_path}']) == 0"
    )
    assert _heavy_modules_after(code, ROOT) == []
