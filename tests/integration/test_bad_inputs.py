"""A corpus of bad inputs driven through the CLI: recipes, overrides, data files, model directories,
`serve` and `eval` invocations. Each must end with exit code 2 and one `error:` line naming the
thing, no traceback, and no stage directory left without its completion marker.

Most cases fail at plan time and run in-process (`cli.main`); a few run the real console entry
point in a subprocess, where a traceback or a wrong exit code would really show.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shlex
import shutil
import socket
from pathlib import Path

import pytest

from reasondistill.cli import main
from reasondistill.train.config import TRACKERS
from tests.integration.conftest import run_cli

QS = "recipes/quickstart.yaml"
DATA = "data: {kind: data, task: arithmetic, config: {terms: 2, digits: 1}, splits: {test: {n: 2}}}"


def _recipe(stages: str, extra: str = "") -> str:
    return f"name: bad\n{extra}stages:\n" + "".join(f"  {line}\n" for line in stages.strip().splitlines())


def _jsonl_recipe(path: str, **config) -> str:
    cfg = ", ".join(f"{k}: {v}" for k, v in {"path": path, **config}.items())
    return _recipe(f"data: {{kind: data, task: jsonl, config: {{{cfg}}}, splits: {{test: {{}}}}}}")


def _eval_recipe(model: str) -> str:
    return _recipe(f"{DATA}\nev: {{kind: evaluate, model: {{path: {model}}}, data: data, splits: [test], max_new_tokens: 2}}")


@pytest.fixture(scope="session")
def world(tmp_path_factory) -> dict[str, Path]:
    """Tiny model directories (good and broken), data files and recipes, made once."""
    from safetensors.torch import load_file, save_file

    from tests.unit.helpers_tiny import tiny_model, tiny_tokenizer

    root = tmp_path_factory.mktemp("bad_inputs")
    m = root / "models"
    tok = tiny_tokenizer()
    tiny_model(tok).save_pretrained(m / "good")
    tok.save_pretrained(m / "good")

    def broken(name: str) -> Path:
        shutil.copytree(m / "good", m / name)
        return m / name

    weights = m / "good" / "model.safetensors"
    with open(broken("trunc") / "model.safetensors", "r+b") as f:
        f.truncate(weights.stat().st_size // 2)  # a download or copy cut short
    (broken("garbage") / "model.safetensors").write_bytes(b"\0" * 64)
    (broken("noweights") / "model.safetensors").unlink()
    (broken("badcfg") / "config.json").write_text("{not json")
    for f in broken("notok").glob("tokenizer*"):
        f.unlink()
    cfg = json.loads((m / "good" / "config.json").read_text())
    (broken("shape") / "config.json").write_text(json.dumps({**cfg, "intermediate_size": 128}))
    sd = load_file(weights)
    sd.pop("model.layers.1.mlp.up_proj.weight")
    save_file(sd, broken("missing") / "model.safetensors", metadata={"format": "pt"})
    (m / "nocfg").mkdir()
    (m / "afile").write_text("x")

    d = root / "data"
    d.mkdir()
    good = '{"question": "1+1?", "answer": "2"}\n'
    files = {
        "nonutf8.jsonl": good.encode() + b'{"question": "caf\xe9?", "answer": "1"}\n',
        "badjson.jsonl": (good + '{"question": "2+2?", "answer": \n').encode(),
        "notobj.jsonl": (good + "[1, 2]\n").encode(),
        "nofield.jsonl": (good + '{"q": "x", "answer": "1"}\n').encode(),
        "empty.jsonl": b"\n\n",
        "gsm8k.jsonl": b'{"question": "x?", "answer": "it is 4"}\n',
        "emptyanswer.jsonl": b'{"question": "x?", "answer": "  "}\n',
        "cot.jsonl": b'{"source": "q", "target": "a", "rationale": "r\xff"}\n',
    }
    for name, raw in files.items():
        (d / name).write_bytes(raw)
    (d / "bbh").mkdir()
    (d / "bbh" / "t.json").write_bytes(b'{"examples": [{"input": "caf\xe9", "target": "A"}]}')
    (d / "bbh_bad").mkdir()
    (d / "bbh_bad" / "t.json").write_text('{"examples": []}')
    (d / "bbh_ok").mkdir()
    (d / "bbh_ok" / "t.json").write_text('{"examples": [{"input": "x", "target": "A"}]}')
    (d / "prompts").mkdir()
    (d / "prompts" / "t.txt").write_bytes(b"desc\n\nQ: x\nA: Let's think step by step. \xff So the answer is A.\n")

    r = root / "recipes"
    r.mkdir()
    recipes = {
        "malformed": "name: x\nstages: [unclosed\n",
        "dupkey": "name: x\nstages:\n  a: {kind: data}\n  a: {kind: data}\n",
        "empty": "",
        "toplist": "- name: x\n",
        "noname": _recipe(DATA).replace("name: bad\n", ""),
        "badname": _recipe(DATA).replace("name: bad", "name: my recipe"),
        "topkey": _recipe(DATA, extra="stagez: {}\n"),
        "stageslist": "name: x\nstages: [a, b]\n",
        "nokind": _recipe("data: {task: arithmetic}"),
        "kind": _recipe("data: {kind: dta}"),
        "cycle": _recipe("a: {kind: filter, traces: b}\nb: {kind: filter, traces: a}"),
        "extends": "extends: nowhere.yaml\noverrides: {seed: 1}\n",
        "matrix": _recipe(f"{DATA}\ns: {{kind: format, source: {{stage: data, split: test}}, matrix: {{placement: []}}}}"),
        "repeat": _recipe("loop: {repeat: 0, stages: {}}"),
        "jsonl_missing": _jsonl_recipe(str(d / "nope.jsonl")),
        "bbh_nonutf8": _recipe(f"data: {{kind: data, task: bbh, config: {{path: {d / 'bbh'}}}, splits: {{test: {{}}}}}}"),
        "bbh_bad": _recipe(f"data: {{kind: data, task: bbh, config: {{path: {d / 'bbh_bad'}}}, splits: {{test: {{}}}}}}"),
        "cot_nonutf8": _recipe(
            f"data: {{kind: data, task: cot_collection, config: {{path: {d / 'cot.jsonl'}}}, splits: {{test: {{}}}}}}"
        ),
        "gsm8k": _jsonl_recipe(str(d / "gsm8k.jsonl"), answer_format="gsm8k"),
        "eval_afile": _eval_recipe(str(m / "afile")),
        "eval_nocfg": _eval_recipe(str(m / "nocfg")),
    }
    for name in ("nonutf8", "badjson", "notobj", "nofield", "empty", "emptyanswer"):
        recipes[f"jsonl_{name}"] = _jsonl_recipe(str(d / f"{name}.jsonl"))
    for name in ("trunc", "garbage", "noweights", "badcfg", "notok", "shape", "missing"):
        recipes[f"eval_{name}"] = _eval_recipe(str(m / name))
    for name, text in recipes.items():
        (r / f"{name}.yaml").write_text(text, encoding="utf-8")
    (r / "nonutf8.yaml").write_bytes(b"name: caf\xe9\nstages: {}\n")
    (r / "adir.yaml").mkdir()
    return {"m": m, "d": d, "r": r}


# (id, argv after `reasondistill`, what the error line must contain). {m} models, {d} data, {r} recipes.
PLAN = [
    # recipe files
    ("recipe-missing", "run {r}/nope.yaml", "recipe file not found"),
    ("recipe-directory", "run {r}/adir.yaml", "adir.yaml is a directory"),
    ("recipe-malformed-yaml", "run {r}/malformed.yaml", "not valid YAML (line"),
    ("recipe-duplicate-key", "run {r}/dupkey.yaml", "duplicate key 'a'"),
    ("recipe-not-utf8", "run {r}/nonutf8.yaml", "line 1: not UTF-8"),
    ("recipe-empty", "run {r}/empty.yaml", "empty.yaml"),
    ("recipe-top-level-list", "run {r}/toplist.yaml", "toplist.yaml"),
    ("recipe-no-name", "run {r}/noname.yaml", "name: missing"),
    ("recipe-bad-name", "run {r}/badname.yaml", "name:"),
    ("recipe-unknown-top-key", "run {r}/topkey.yaml", "stagez: unknown key; did you mean `stages`?"),
    ("recipe-stages-not-mapping", "run {r}/stageslist.yaml", "stages"),
    ("recipe-stage-without-kind", "run {r}/nokind.yaml", "stages.data"),
    ("recipe-unknown-kind", "run {r}/kind.yaml", "stages.data.kind: unknown stage kind 'dta'"),
    ("recipe-cycle", "run {r}/cycle.yaml", "cycle"),
    ("recipe-extends-missing", "run {r}/extends.yaml", "nowhere.yaml"),
    ("recipe-empty-matrix", "run {r}/matrix.yaml", "stages.s.matrix"),
    ("recipe-repeat-zero", "run {r}/repeat.yaml", "stages.loop"),
    # overrides and flags
    ("override-unknown-key", f"run {QS} stages.teacher.train.lrr=1", "did you mean `lr`"),
    ("override-bad-type", f"run {QS} stages.teacher.train.max_steps=many", "stages.teacher.train.max_steps"),
    ("override-bad-yaml-value", f"run {QS} stages.teacher.train.lr=[1,", "stages.teacher.train.lr"),
    ("override-into-scalar", f"run {QS} seed.x=1", "seed"),
    ("override-negative-n", f"run {QS} stages.data.splits.test_id.n=-3", "stages.data.splits.test_id.n"),
    ("override-split-typo", f"run {QS} stages.traces.data.split=poo", "no split 'poo' in stage 'data'"),
    ("override-model-path", f"run {QS} 'stages.teacher.model={{{{path: /no/such}}}}'", "'/no/such' does not exist"),
    ("override-wrong-artifact", f"run {QS} stages.student.rows=data", "stage 'data' is a data stage"),
    ("override-unknown-tracker", f"run {QS} stages.teacher.train.report_to=[tensorbored]",
     "stages.teacher.train.report_to: unknown tracker 'tensorbored'"),
    *[("override-tracker-not-installed", f"run {QS} stages.teacher.train.report_to=[{t}]", f"pip install {t}")
      for t in [n for n, m in TRACKERS.items() if importlib.util.find_spec(m) is None][:1]],  # whichever is absent
    ("flag-until-unknown", f"run {QS} --until nope", "--until: unknown stage 'nope'"),
    ("flag-unknown", f"run {QS} --frob", "unrecognized arguments: --frob"),
    ("command-unknown", "frobnicate", "invalid choice: 'frobnicate'"),
    # data files (read when the recipe is planned)
    ("data-jsonl-missing", "run {r}/jsonl_missing.yaml", "no such file"),
    ("data-jsonl-not-utf8", "run {r}/jsonl_nonutf8.yaml", "nonutf8.jsonl, line 2: not UTF-8 text (byte 0xe9"),
    ("data-jsonl-bad-json", "run {r}/jsonl_badjson.yaml", "badjson.jsonl, line 2: invalid JSON"),
    ("data-jsonl-not-object", "run {r}/jsonl_notobj.yaml", "notobj.jsonl, line 2: expected a JSON object"),
    ("data-jsonl-missing-field", "run {r}/jsonl_nofield.yaml", "nofield.jsonl, line 2: missing field 'question'"),
    ("data-jsonl-empty", "run {r}/jsonl_empty.yaml", "empty.jsonl: no rows"),
    ("data-jsonl-empty-answer", "run {r}/jsonl_emptyanswer.yaml", "line 1: field 'answer' must be a non-empty"),
    ("data-gsm8k-no-marker", "run {r}/gsm8k.yaml", "gsm8k.jsonl, line 1: no '#### <answer>' marker"),
    ("data-bbh-not-utf8", "run {r}/bbh_nonutf8.yaml", "t.json, line 1: not UTF-8 text"),
    ("data-bbh-no-examples", "run {r}/bbh_bad.yaml", "t.json: expected"),
    ("data-cot-not-utf8", "run {r}/cot_nonutf8.yaml", "cot.jsonl, line 1: not UTF-8 text (byte 0xff"),
    # model directories refused at plan time
    ("model-path-is-file", "run {r}/eval_afile.yaml", "is not a model directory"),
    ("model-dir-without-config", "run {r}/eval_nocfg.yaml", "no config.json"),
    # serve and eval flags (checked before any model is loaded)
    ("serve-missing-dir", "serve {m}/nope", "does not exist"),
    ("serve-port-range", "serve {m}/good --port 70000", "--port 70000: must be 0..65535"),
    ("serve-batch-size", "serve {m}/good --max-batch-size 0", "--max-batch-size 0: must be >= 1"),
    ("serve-threads", "serve {m}/good --threads 0", "--threads 0: must be >= 1"),
    ("serve-dtype", "serve {m}/good --dtype float7", "--dtype float7"),
    ("serve-log-level", "serve {m}/good --log-level loud", "--log-level loud"),
    ("serve-api-key-env", "serve {m}/good --api-key-env RD_SURELY_UNSET_VAR", "RD_SURELY_UNSET_VAR is not set"),
    ("eval-bbh-missing", "eval {m}/good --bbh-dir {d}/nope", "no such file or directory"),
    ("eval-limit", "eval {m}/good --bbh-dir {d}/bbh_ok --limit 0", "--limit must be >= 1"),
    ("eval-prompt-not-utf8", "eval {m}/good --bbh-dir {d}/bbh_ok --prompts-dir {d}/prompts", "t.txt, line 4: not UTF-8"),
    ("eval-out-dir-missing", "eval {m}/good --bbh-dir {d}/bbh_ok --out {d}/no/x.json", "does not exist"),
    ("show-not-a-stage", "show {d}", "not a stage directory"),
    ("compare-not-stages", "compare {d} {m}", "not a stage directory"),
    ("models-pull-unknown", "models pull no-such-model", "no-such-model"),
]

# Fail when a stage starts (the model is loaded): exercised end to end, stage directories included.
RUN = [
    ("model-truncated-weights", "eval_trunc", "truncated or corrupt"),
    ("model-garbage-weights", "eval_garbage", "truncated or corrupt"),
    ("model-no-weights", "eval_noweights", "no file named model.safetensors"),
    ("model-config-not-json", "eval_badcfg", "not a valid JSON file"),
    ("model-no-tokenizer", "eval_notok", "Couldn't instantiate the backend tokenizer"),
    ("model-shape-mismatch", "eval_shape", "tensor shapes in the weights differ from its config.json"),
    ("model-missing-tensor", "eval_missing", "lack 1 tensor(s)"),
]


def _argv(template: str, world: dict[str, Path], runs: Path) -> list[str]:
    argv = [a.format(**world) for a in shlex.split(template)]
    return [*argv, "--runs-dir", str(runs)] if argv[0] == "run" else argv


def check_one_error(code: int, err: str, expect: str) -> None:
    """Exit 2, exactly one `error:` line (the last), naming the thing; no traceback."""
    lines = err.strip().splitlines()
    errors = [x for x in lines if x.startswith("error:")]
    assert code == 2, err
    assert "Traceback" not in err, err
    assert len(errors) == 1 and lines[-1] == errors[0], err
    assert expect in errors[0], errors[0]


def check_no_partial_stage(runs: Path) -> None:
    """Every stage directory a failed run left behind is a finished one."""
    if not runs.exists():
        return
    for recipe in runs.iterdir():
        for d in recipe.iterdir():
            if d.is_dir() and d.name != "plans":
                assert (d / "_COMPLETE").is_file(), f"half-written stage directory {d}: {sorted(os.listdir(d))}"


@pytest.mark.parametrize("case, template, expect", PLAN, ids=[c[0] for c in PLAN])
def test_refused_before_anything_runs(world, tmp_path, capsys, case, template, expect):
    runs = tmp_path / "runs"
    try:
        code = main(_argv(template, world, runs))
    except SystemExit as e:  # argparse usage errors
        code = e.code
    err = capsys.readouterr().err
    check_one_error(code, err, expect)
    assert not runs.exists()  # refused before the run directory was made
    assert len(err.strip().splitlines()) == 1, err  # nothing ran: the error line is all there is


@pytest.mark.parametrize("case, recipe, expect", RUN, ids=[c[0] for c in RUN])
def test_bad_model_fails_at_stage_start_and_leaves_no_partial_stage(world, tmp_path, capsys, case, recipe, expect):
    runs = tmp_path / "runs"
    code = main(["run", str(world["r"] / f"{recipe}.yaml"), "--runs-dir", str(runs)])
    err = capsys.readouterr().err
    check_one_error(code, err, expect)
    assert f"cannot load model '{world['m'] / recipe.removeprefix('eval_')}'" in err  # names the directory
    check_no_partial_stage(runs)
    assert [d.name.split("-")[0] for d in (runs / "bad").iterdir() if d.is_dir() and d.name != "plans"] == ["data"]


@pytest.mark.parametrize(
    "argv, expect",
    [
        (["run", "{r}/eval_trunc.yaml"], "truncated or corrupt"),
        (["serve", "{m}/trunc", "--port", "0"], "truncated or corrupt"),
        (["run", "{r}/jsonl_nonutf8.yaml"], "nonutf8.jsonl, line 2: not UTF-8 text"),
    ],
    ids=["evaluate-truncated-weights", "serve-truncated-weights", "data-not-utf8"],
)
def test_real_process_exit_code_and_stderr(world, tmp_path, argv, expect):
    runs = tmp_path / "runs"
    args = _argv(" ".join(argv), world, runs)
    proc = run_cli(*args, check=False, timeout=120)
    check_one_error(proc.returncode, proc.stderr, expect)
    check_no_partial_stage(runs)


def test_serve_port_in_use(world, capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        code = main(["serve", str(world["m"] / "good"), "--port", str(s.getsockname()[1])])
    check_one_error(code, capsys.readouterr().err, "cannot listen on 127.0.0.1:")


def test_torn_finished_output_is_refused_on_rerun(world, tmp_path, capsys):
    """A finished stage's file cut short is never read as if whole (the marker's sizes catch it)."""
    runs = tmp_path / "runs"
    recipe = world["r"] / "eval_good.yaml"
    recipe.write_text(_recipe(DATA))
    assert main(["run", str(recipe), "--runs-dir", str(runs)]) == 0
    (split,) = (runs / "bad").glob("data-*/test.jsonl")
    split.write_bytes(split.read_bytes()[:-5])
    capsys.readouterr()
    check_one_error(main(["run", str(recipe), "--runs-dir", str(runs)]), capsys.readouterr().err, "test.jsonl")


def test_the_corpus_covers_every_kind_of_input():
    kinds = {case.split("-")[0] for case, *_ in PLAN + RUN}
    assert {"recipe", "override", "flag", "data", "model", "serve", "eval"} <= kinds and len(PLAN) + len(RUN) >= 40
