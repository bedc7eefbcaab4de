"""The API key never reaches logs, run directories, resolved configs or reports.

A distinctive key is put in the environment; `reasondistill serve` requires it as a Bearer
token; generation runs through the CLI (against a running server, and with the server
started by the stage itself). Then every file under the runs directory, the server logs and
the captured stdout/stderr are searched for the key. A wrong key must fail fast, naming the
problem without printing either key.
"""

from __future__ import annotations

from pathlib import Path

from reasondistill.teachers.openai.serve import served_model
from tests.integration.conftest import run_cli, stage_dirs
from tests.integration.test_served_generation import model_dir, write_recipe  # noqa: F401 (fixture)

ENV = "RD_TEST_TEACHER_KEY"
SECRET = "sk-rd-SECRET-3b1f0c9e7a5d4b2c"
WRONG = "sk-rd-WRONG-8e6a4c2e0b9d7f5a"


def _leaks(root: Path, needle: str) -> list[str]:
    return [str(p) for p in root.rglob("*") if p.is_file() and needle.encode() in p.read_bytes()]


def test_api_key_never_leaks(tmp_path, monkeypatch, model_dir):  # noqa: F811 (fixture)
    monkeypatch.setenv(ENV, SECRET)
    outputs = []
    with served_model(str(model_dir), tmp_path / "serve_logs", api_key_env=ENV) as url:
        teacher = {"base_url": url, "model": str(model_dir), "api_key_env": ENV, "concurrency": 4}
        recipe = write_recipe(tmp_path, teacher, name="secret")
        runs = tmp_path / "runs"
        outputs.append(run_cli("run", str(recipe), "--runs-dir", str(runs), "--dry-run"))
        outputs.append(run_cli("run", str(recipe), "--runs-dir", str(runs)))
        traces = stage_dirs(runs, "secret")["traces"]
        assert (traces / "traces.jsonl").read_text().count("\n") == 40  # the key was accepted

        monkeypatch.setenv(ENV, WRONG)
        bad = run_cli("run", str(recipe), "--runs-dir", str(tmp_path / "bad"), check=False)
        assert bad.returncode == 2 and "HTTP 401" in bad.stderr
        assert WRONG not in bad.stdout + bad.stderr
        outputs.append(bad)
        monkeypatch.setenv(ENV, SECRET)

    # The stage starts its own server, which requires the key too.
    served = write_recipe(
        tmp_path, {"serve": {"path": str(model_dir)}, "api_key_env": ENV}, name="secret_served"
    )
    outputs.append(run_cli("run", str(served), "--runs-dir", str(runs)))
    served_dir = stage_dirs(runs, "secret_served")["traces"]
    assert "API key required" in (served_dir / "serve.log").read_text()

    for proc in outputs:
        assert SECRET not in proc.stdout + proc.stderr
    assert _leaks(tmp_path, SECRET) == []  # runs, caches, configs, usage, serve logs, recipes
    assert ENV in (traces / "config.yaml").read_text()  # the variable's name is what gets recorded
