"""Execute a planned recipe: skip completed stages, resume partial ones, mark completion last.

Layout: <runs_dir>/<recipe>/<stage>-<hash>/ holds the stage's files, `config.yaml` (its
resolved config), `stage.json` (name, kind, matrix coordinates, hash, its inputs' directories
and hashes, provenance.py's record of the invocation, start and end times) and, written last
and atomically, the `_COMPLETE` marker with the stage's summary and every output file's size
and sha256. A directory without the marker is a partial run: the stage's `run` resumes from
what is there (appended traces, a training checkpoint). A run holds the stage directory's lock
while it runs the stage (outputs.py), so two runs never write one stage; a finished stage whose
files no longer match its marker (sizes always, hashes with `--verify`) stops the run.
Each invocation's plan is kept in <runs_dir>/<recipe>/plans/.

Under `accelerate launch` every process runs this loop. Stages marked `distributed`
(training) run on all ranks; the others run on rank 0 while the rest wait at a barrier.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import shutil
import time
from contextlib import nullcontext
from pathlib import Path

import yaml

from reasondistill.errors import ReasonDistillError
from reasondistill.outputs import StageLock, check_outputs, record_outputs
from reasondistill.pipeline import MARKER, StageInstance
from reasondistill.provenance import now
from reasondistill.recipe import Recipe
from reasondistill.records import write_json_atomic
from reasondistill.stages import STAGES, StageContext

log = logging.getLogger("reasondistill")
_META = {"config.yaml", "stage.json", ".lock"}


class _Dist:
    """Rank and barrier; a no-op unless launched with several processes."""

    def __init__(self) -> None:
        self.state = None
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            from accelerate import PartialState
            from accelerate.utils import parse_flag_from_env

            # Non-training stages (teacher generation) can keep rank 0 busy for hours while
            # the other ranks wait at a barrier: the default 30-minute timeout would kill them.
            # `cpu` must follow `accelerate launch --cpu`, or each CPU process becomes a lone rank 0.
            self.state = PartialState(
                cpu=parse_flag_from_env("ACCELERATE_USE_CPU"), timeout=datetime.timedelta(days=2)
            )

    @property
    def is_main(self) -> bool:
        return self.state is None or self.state.is_main_process

    def barrier(self) -> None:
        if self.state is not None:
            self.state.wait_for_everyone()


def run_plan(
    recipe: Recipe, instances: list[StageInstance], echo=print, verify: bool = False, invocation: dict | None = None
) -> dict[str, dict]:
    """Run every instance not yet complete; returns {instance name: summary}.

    verify: check the sha256 of every finished stage's outputs, not only their sizes.
    invocation: provenance.invocation() of this process, recorded in every stage.json run."""
    dist = _Dist()
    dirs = {i.name: i.out_dir for i in instances}
    hashes = {i.name: i.hash for i in instances}
    summaries: dict[str, dict] = {}
    if dist.is_main:
        root = Path(recipe.runs_dir) / recipe.name
        try:
            (root / "plans").mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ReasonDistillError(f"cannot create the run directory {root}: {e.strerror}") from None
        plan = {"invocation": invocation, "stages": {i.name: str(i.out_dir) for i in instances}}
        stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%S")
        write_json_atomic(root / "plans" / f"{stamp}-{os.getpid()}.json", plan)  # one per invocation
        write_json_atomic(root / "plan.json", plan)  # the latest
    for n, inst in enumerate(instances, 1):
        head = f"[{n}/{len(instances)}] {inst.name} ({inst.kind})"
        if inst.done:
            summaries[inst.name] = _verified_marker(inst, verify)
            if dist.is_main:
                echo(f"{head}: done, skipped  {inst.out_dir}")
            continue
        stage = STAGES.get(inst.kind)()
        if stage.distributed or dist.is_main:
            # Rank 0 holds the stage's lock while any rank runs it; a second run fails at once.
            with StageLock(inst.out_dir, inst.name) if dist.is_main else nullcontext():
                if inst.done:  # finished by another run while this one waited to plan
                    summaries[inst.name] = _verified_marker(inst, verify)
                    echo(f"{head}: done (by another run), skipped  {inst.out_dir}")
                    continue
                summaries[inst.name] = _run_one(stage, inst, head, dirs, hashes, dist, echo, invocation)
        dist.barrier()
        if not inst.done:
            raise ReasonDistillError(f"stage {inst.name} did not complete on rank 0")
        summaries.setdefault(inst.name, _read_marker(inst))
    return summaries


def _run_one(stage, inst: StageInstance, head: str, dirs, hashes, dist: _Dist, echo, invocation) -> dict:
    """Run one stage (on this rank) and, on rank 0, write its marker last."""
    if dist.is_main:
        echo(f"{head}: {'resuming' if (inst.out_dir / 'stage.json').exists() else 'running'}  {inst.out_dir}")
        meta = _write_meta(inst, dirs, hashes, invocation)
    if stage.distributed:
        dist.barrier()  # rank 0 has written the metadata before any rank starts
    t0 = time.time()
    ctx = StageContext(inst.name, inst.cfg, inst.out_dir, inst.coords, dirs)
    try:
        summary = stage.run(ctx) or {}
    except BaseException:
        if dist.is_main:
            _drop_if_empty(inst.out_dir)
        raise
    summary = {"seconds": round(time.time() - t0, 2), **summary}
    if dist.is_main:
        write_json_atomic(inst.out_dir / "stage.json", {**meta, "finished": now(), "seconds": summary["seconds"]})
        # Recorded last, over every file the stage and this runner wrote: what a rerun checks.
        write_json_atomic(inst.out_dir / MARKER, {**summary, "files": record_outputs(inst.out_dir)})
        echo(f"{head}: finished in {summary['seconds']:.1f}s")
    return summary


def _write_meta(inst: StageInstance, dirs: dict, hashes: dict, invocation: dict | None) -> dict:
    inst.out_dir.mkdir(parents=True, exist_ok=True)
    cfg = inst.cfg.model_dump(mode="json")
    (inst.out_dir / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    meta = {
        "name": inst.name,
        "kind": inst.kind,
        "coords": inst.coords,
        "hash": inst.hash,
        "inputs": inst.deps,
        "input_dirs": {d: {"dir": str(dirs[d]), "hash": hashes[d]} for d in inst.deps},
        "started": now(),
        "invocation": invocation,
    }
    if inst.iteration is not None:
        meta["iteration"] = inst.iteration  # reports draw per-iteration curves from it
    write_json_atomic(inst.out_dir / "stage.json", meta)
    return meta


def _drop_if_empty(out_dir: Path) -> None:
    """A stage that failed before writing any output leaves no directory behind."""
    if out_dir.exists() and {p.name for p in out_dir.iterdir()} <= _META:
        shutil.rmtree(out_dir, ignore_errors=True)


def _read_marker(inst: StageInstance) -> dict:
    """The stage's summary (its marker without the recorded output files)."""
    marker = json.loads((inst.out_dir / MARKER).read_text(encoding="utf-8"))
    marker.pop("files", None)
    return marker


def _verified_marker(inst: StageInstance, full: bool) -> dict:
    """The summary of a finished stage after checking its outputs against the marker."""
    marker = json.loads((inst.out_dir / MARKER).read_text(encoding="utf-8"))
    check_outputs(inst.out_dir, inst.name, marker.pop("files", None), full)
    return marker
