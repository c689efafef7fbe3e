"""The Makefile's first minutes on a newcomer's machine."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.events import REPO

PYENV_SHIM = '#!/bin/sh\necho "pyenv: $(basename "$0"): command not found" >&2\nexit 127\n'


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
class TestPythonDetection:
    def test_pyenv_shims_of_missing_versions_are_skipped_silently(self, tmp_path: Path) -> None:
        """Shims that exist on PATH but fail print nothing; a working Python is chosen."""
        for name in ("python3.13", "python3.12"):
            shim = tmp_path / name
            shim.write_text(PYENV_SHIM)
            shim.chmod(0o755)
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHON", "MAKEFLAGS")}
        env["PATH"] = f"{tmp_path}{os.pathsep}{env['PATH']}"
        done = subprocess.run(
            ["make", "-s", "--eval", "which-python: ; @echo $(PYTHON)", "which-python"],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert done.stderr == ""
        chosen = done.stdout.strip()
        assert chosen in ("python3.11", "python3")
