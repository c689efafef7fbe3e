"""The project's two distributions as built wheels, and fresh virtual environments to install
them in: what a user of `pip install couples-nudge` or `couples-nudge-schemas` gets.

Wheels are built from a copy of the sources (setuptools writes build/ and *.egg-info next to
what it builds), without build isolation: the test environment has setuptools (the `dev`
extra), so no network is needed to build.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from tests.support.events import REPO

__all__ = ["FreshVenv", "build_wheel", "wheel_names"]

_IGNORE: Final = shutil.ignore_patterns(
    "__pycache__", "*.pyc", "build", "*.egg-info", ".mypy_cache", "node_modules"
)


def build_wheel(project: str, into: Path) -> Path:
    """Build `project` ("service": the repository's pyproject, or "schemas": schemas/'s own)
    into folder `into`; returns the wheel's path."""
    source = into / f"src-{project}"
    if project == "service":
        source.mkdir(parents=True)
        for name in ("pyproject.toml", "README.md"):
            shutil.copy2(REPO / name, source / name)
        for folder in ("services", "schemas"):
            shutil.copytree(REPO / folder, source / folder, ignore=_IGNORE)
    else:
        shutil.copytree(REPO / "schemas", source, ignore=_IGNORE)
    out = into / f"wheel-{project}"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            str(out),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (wheel,) = out.glob("*.whl")
    return wheel


def wheel_names(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        return archive.namelist()


@dataclass(frozen=True, slots=True)
class FreshVenv:
    """A new virtual environment in `root`; `borrow_site_packages` lets it import the test
    environment's third-party libraries (a path line in a .pth file: the test environment's
    own .pth files, its editable install of this project among them, are not run)."""

    root: Path

    @classmethod
    def create(cls, root: Path, *, borrow_site_packages: bool = False) -> FreshVenv:
        venv.EnvBuilder(with_pip=True, clear=True).create(root)
        made = cls(root)
        if borrow_site_packages:
            purelib = sysconfig.get_path("purelib")
            (made.site_packages / "borrowed-test-libraries.pth").write_text(purelib + "\n")
        return made

    @property
    def bin(self) -> Path:
        return self.root / "bin"

    @property
    def python(self) -> Path:
        return self.bin / "python"

    @property
    def site_packages(self) -> Path:
        (found,) = (self.root / "lib").glob("python3*/site-packages")
        return found

    def pip_install(self, *args: str) -> None:
        done = subprocess.run(
            [
                str(self.python),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                *list(args),
            ],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-3000:]

    def run(self, *args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """A command of the environment (`python`, `nudge`...) in `cwd`, with a clean
        environment: no PYTHONPATH, and not the repository as the working directory."""
        return subprocess.run(
            [str(self.bin / args[0]), *args[1:]],
            cwd=cwd,
            env={"PATH": f"{self.bin}:/usr/bin:/bin", "HOME": str(self.root)},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
