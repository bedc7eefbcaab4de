"""Command line: `reasondistill run RECIPE [key.sub=value ...]`, `list`, `models`, `serve`, `eval`.

Bad input (recipe, data row, model pair, server) prints one `error:` line per problem and
exits with code 2; nothing is written before the recipe validates.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from pathlib import Path

import yaml

import reasondistill
from reasondistill.errors import ReasonDistillError
from reasondistill.evaluate.bbh_cli import add_eval_parser, eval_main
from reasondistill.explain import add_explain_parsers, explain_main
from reasondistill.models.cli import add_models_parser, models_main
from reasondistill.serve import add_serve_parser, serve_main
from reasondistill.traces.style.cli import add_style_parser, style_main

EXIT_BAD_INPUT = 2


class _Parser(argparse.ArgumentParser):
    """argparse with usage errors on one `error:` line (exit 2), like every other bad input."""

    def error(self, message: str):
        print(f"error: {self.prog}: {message} (see `{self.prog} --help`)", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(prog="reasondistill", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"reasondistill {reasondistill.__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help=_VERBOSE_HELP)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a recipe (skips completed stages, resumes partial ones)")
    run.add_argument("recipe", help="path to a recipe YAML file")
    run.add_argument(
        "overrides", nargs="*", default=[], help="optional key.sub=value overrides, e.g. stages.teacher.train.max_steps=50"
    )
    run.add_argument("--verify", action="store_true", help="check the sha256 of finished stages' outputs, not only sizes")
    run.add_argument("--dry-run", action="store_true", help="print the resolved config and stage plan; run nothing")
    run.add_argument("--runs-dir", help="where runs go (overrides the recipe's runs_dir)")
    run.add_argument("--until", metavar="STAGE", help="run only STAGE (all its instances) and what it needs")
    run.add_argument("--smoke", action="store_true", help="apply the recipe's `smoke` overrides (CPU smoke size)")
    sub.add_parser("list", help="list every registry: stage kinds, tasks, teachers, templates, objectives, ...")
    add_models_parser(sub)
    add_explain_parsers(sub)
    add_style_parser(sub)
    add_serve_parser(sub)
    add_eval_parser(sub)
    _add_verbose(sub)
    # Overrides may come before or after options; argparse alone stops collecting a
    # positional list at the first option, so pick up the rest here.
    args, extra = parser.parse_known_args(argv)
    stray = [x for x in extra if x.startswith("-") or "=" not in x or args.command != "run"]
    if stray:
        parser.error(f"unrecognized arguments: {' '.join(stray)}")
    if args.command == "run":
        args.overrides = list(args.overrides) + extra
    setup_logging(args.verbose)
    try:
        if args.command == "run":
            return _run(args)
        if args.command == "serve":
            return serve_main(args)
        if args.command == "eval":
            return eval_main(args)
        if args.command == "models":
            return models_main(args)
        if args.command in ("show", "compare"):
            return explain_main(args)
        if args.command == "style":
            return style_main(args)
        return _list()
    except ReasonDistillError as e:
        for line in str(e).splitlines():
            print(f"error: {line}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BrokenPipeError:  # `reasondistill list | head`: the reader left, nothing went wrong
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (Python's own advice: no flush error at exit)
        return 0
    except OSError as e:  # a file or directory the user named or owns: say which, no traceback
        where = f": {e.filename}" if e.filename else ""
        print(f"error: {e.strerror or e}{where}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted: completed stages are kept; rerun to resume", file=sys.stderr)
        return 130


def _run(args) -> int:
    from reasondistill.pipeline import plan
    from reasondistill.recipe import load_recipe
    from reasondistill.runner import run_plan

    overrides = list(args.overrides) + ([f"runs_dir={args.runs_dir}"] if args.runs_dir else [])
    recipe, _ = load_recipe(args.recipe, overrides, smoke=args.smoke)
    instances = plan(recipe)
    if args.until:
        instances = _needed_for(instances, args.until)
    if args.dry_run:
        _print_plan(recipe, instances)
        return 0
    from reasondistill.provenance import invocation

    run_plan(recipe, instances, verify=args.verify, invocation=invocation(args.recipe))
    if int(os.environ.get("RANK", "0")) == 0:
        for inst in instances:
            table = inst.out_dir / "results.md"
            if inst.kind == "report" and table.exists():
                print("\n" + table.read_text(encoding="utf-8"))
    return 0


def _needed_for(instances, stage: str):
    """The instances of `stage` (base or instance name) and their transitive inputs, in order."""
    by_name = {i.name: i for i in instances}
    # A block stage's name ("model") selects every iteration ("model@0", "model@1", ...).
    todo = [i.name for i in instances if stage in (i.name, i.base, i.base.partition("@")[0])]
    if not todo:
        bases = ", ".join(dict.fromkeys(i.base for i in instances))
        raise ReasonDistillError(f"--until: unknown stage {stage!r}; stages: {bases}")
    needed: set[str] = set()
    while todo:
        name = todo.pop()
        if name not in needed:
            needed.add(name)
            todo.extend(by_name[name].deps)
    return [i for i in instances if i.name in needed]


def _print_plan(recipe, instances) -> None:
    resolved = {
        "name": recipe.name,
        "seed": recipe.seed,
        "runs_dir": recipe.runs_dir,
        "stages": {i.name: i.cfg.model_dump(mode="json") for i in instances},
    }
    print("# resolved config")
    print(yaml.safe_dump(resolved, sort_keys=False))
    print("# stage plan")
    for n, inst in enumerate(instances, 1):
        status = "done" if inst.done else ("partial" if inst.out_dir.exists() else "todo")
        deps = f"  <- {', '.join(inst.deps)}" if inst.deps else ""
        print(f"{n:>3}. {inst.name} ({inst.kind}) {inst.hash[:10]} [{status}]{deps}")
    print(f"\nruns under {Path(recipe.runs_dir) / recipe.name}")


def _list() -> int:
    """Every registry, each unit with its one-line description and paper (registry.py)."""
    from reasondistill.registry import REGISTRIES

    for module in _REGISTRY_MODULES:  # each fills its registries on import
        importlib.import_module(module)
    for title, reg in REGISTRIES.items():
        print(f"{title} (select with `kind:`):" if title != "tasks" else "tasks (select with `task:`):")
        width = max(len(n) for n in reg.names())
        for e in reg.entries():
            paper = f"  [{e.paper}]" if e.paper else ""
            print(f"  {e.name:<{width}}  {e.description}{paper}")
    return 0


# Where the registries live; `list` imports them all (torch included: `list` is not planning).
_REGISTRY_MODULES = (
    "reasondistill.stages",
    "reasondistill.tasks",
    "reasondistill.teachers",
    "reasondistill.traces.templates",
    "reasondistill.traces.transforms",
    "reasondistill.kd.losses",
    "reasondistill.train.objectives",
)


_VERBOSE_HELP = "show library logs, warnings and weight-loading bars (-vv: debug logs too)"


def _add_verbose(subparsers) -> None:
    """`-v` after the subcommand too (`reasondistill run R -v`), on every subcommand at any depth."""
    seen: set[int] = set()
    todo = list(subparsers.choices.values())
    while todo:
        p = todo.pop()
        if id(p) in seen:  # aliases share a parser
            continue
        seen.add(id(p))
        p.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS, help=_VERBOSE_HELP)
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                todo.extend(action.choices.values())


def setup_logging(verbose: int = 0) -> None:
    """Our progress lines at INFO. By default library noise is hidden: accelerate's "Removed shared
    tensor" warning at every checkpoint (tied embeddings, harmless), transformers' warnings and
    its weight-loading bars. `-v` shows them all; `-vv` adds debug logs."""
    logging.basicConfig(level=logging.WARNING if verbose < 2 else logging.DEBUG, format="%(message)s")
    logging.getLogger("reasondistill").setLevel(logging.INFO if verbose < 2 else logging.DEBUG)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    if verbose:
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "info" if verbose > 1 else "warning")
        return
    # Only accelerate's save helper: its one warning is the per-checkpoint shared-tensor note.
    logging.getLogger("accelerate.utils.other").setLevel(logging.ERROR)
    # Through the environment, not transformers.logging: importing transformers here would cost
    # every command (a dry run, a rerun of finished stages) ~1 s it does not need. huggingface_hub
    # reads the second when imported, and transformers takes its progress-bar switch from it.
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    if "transformers" in sys.modules:  # already imported (main() called in-process): tell it directly
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()


if __name__ == "__main__":
    sys.exit(main())
