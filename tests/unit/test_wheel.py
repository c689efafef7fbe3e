"""The wheels as users install them: names under the project's own, the package data inside,
and `nudge` working from an installed wheel outside the repository.

The repository keeps the folders the design fixed (services/, schemas/); what is installed is
`couples_nudge` and `couples_nudge_schemas` (pyproject.toml's package-dir), so no other project's
`services` or `schemas` package is shadowed or shadows ours.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest

from tests.support.events import REPO
from tests.support.wheels import FreshVenv, build_wheel, wheel_names

INSTALLED: dict[str, str] = {"couples_nudge": "services", "couples_nudge_schemas": "schemas"}


@pytest.fixture(scope="module")
def service_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_wheel("service", tmp_path_factory.mktemp("service"))


@pytest.fixture(scope="module")
def schemas_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_wheel("schemas", tmp_path_factory.mktemp("schemas"))


def _top_level(names: list[str]) -> set[str]:
    return {
        name.split("/", 1)[0] for name in names if not name.split("/", 1)[0].endswith(".dist-info")
    }


def _repo_files(folder: str, pattern: str) -> set[str]:
    root = REPO / folder
    return {
        path.relative_to(root).as_posix()
        for path in root.rglob(pattern)
        if "__pycache__" not in path.parts and "build" not in path.parts
    }


class TestServiceWheel:
    def test_only_the_projects_own_names_are_installed(self, service_wheel: Path) -> None:
        assert _top_level(wheel_names(service_wheel)) == set(INSTALLED)

    def test_every_module_and_data_file_of_the_repository_is_inside(
        self, service_wheel: Path
    ) -> None:
        """Every .py file, catalog, template and JSON Schema of services/ and schemas/ is in
        the wheel under its installed name (a package missing from pyproject's list fails)."""
        names = set(wheel_names(service_wheel))
        for installed, folder in INSTALLED.items():
            repo = {
                f
                for f in _repo_files(folder, "*")
                if (REPO / folder / f).is_file()
                and not f.endswith((".pyc", "pyproject.toml", "README.md"))
            }
            inside = {
                n.removeprefix(f"{installed}/") for n in names if n.startswith(f"{installed}/")
            }
            assert repo - inside == set(), f"{folder}/ files missing from the wheel"
            assert inside - repo == set(), f"wheel files with no source in {folder}/"
        catalogs = [
            n for n in names if re.match(r"couples_nudge/notifier/catalog/\w+/.+\.toml$", n)
        ]
        assert len(catalogs) >= 3
        assert "couples_nudge_schemas/json/preference-event.schema.json" in names

    def test_console_script_points_at_the_installed_name(self, service_wheel: Path) -> None:
        project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
        assert project["scripts"] == {"nudge": "couples_nudge.entry:main"}

    def test_nudge_runs_from_the_wheel_outside_the_repository(
        self, service_wheel: Path, tmp_path: Path
    ) -> None:
        """Installed in a new environment (its libraries borrowed from the test environment, so
        no network), `nudge --help` works in an empty folder, the catalog loads from the
        installed package data, and the modules come from the environment, not the checkout."""
        env = FreshVenv.create(tmp_path / "venv", borrow_site_packages=True)
        env.pip_install("--no-deps", "--no-index", str(service_wheel))
        work = tmp_path / "elsewhere"
        work.mkdir()
        shown = env.run("nudge", "--help", cwd=work)
        assert shown.returncode == 0, shown.stderr[-2000:]
        assert "scheduler" in shown.stdout
        assert "notifier" in shown.stdout
        where = env.run(
            "python",
            "-c",
            "import json, couples_nudge, couples_nudge_schemas\n"
            "from couples_nudge.notifier.catalog import load_catalog\n"
            "print(json.dumps([couples_nudge.__file__, couples_nudge_schemas.__file__,"
            " sorted(load_catalog().locales)]))",
            cwd=work,
        )
        assert where.returncode == 0, where.stderr[-2000:]
        service_file, schemas_file, locales = json.loads(where.stdout)
        for path in (service_file, schemas_file):
            assert Path(path).is_relative_to(env.root), path
        assert {"en", "es", "de"} <= set(locales)
        old_names = env.run("python", "-c", "import services", cwd=work)
        assert "No module named 'services'" in old_names.stderr


class TestSchemasWheel:
    def test_the_light_distribution_holds_only_the_schemas(self, schemas_wheel: Path) -> None:
        names = wheel_names(schemas_wheel)
        assert _top_level(names) == {"couples_nudge_schemas"}
        repo = set(_repo_files("schemas", "*.py")) | {
            f"json/{p.name}" for p in (REPO / "schemas" / "json").glob("*.json")
        }
        inside = {n.removeprefix("couples_nudge_schemas/") for n in names}
        assert repo <= inside

    def test_its_dependencies_are_few_and_its_version_is_the_services(
        self, schemas_wheel: Path
    ) -> None:
        light = tomllib.loads((REPO / "schemas" / "pyproject.toml").read_text())["project"]
        service = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
        names = {re.split(r"[<>=\[; ]", d, maxsplit=1)[0] for d in light["dependencies"]}
        assert names == {"pydantic", "tzdata", "croniter"}
        assert light["optional-dependencies"] == {"redis": ["redis>=5.2,<9"]}
        assert light["version"] == service["version"]
        assert f"-{service['version']}-" in schemas_wheel.name


def test_no_module_imports_the_repository_folder_names() -> None:
    """Code says `couples_nudge` / `couples_nudge_schemas`: the folder names import only from
    a checkout (its root on sys.path), never from an installed wheel."""
    pattern = re.compile(r"^\s*(?:from|import) (?:services|schemas)\b", re.M)
    offenders = [
        path.relative_to(REPO).as_posix()
        for folder in ("services", "schemas", "tests", "benchmarks")
        for path in (REPO / folder).rglob("*.py")
        if pattern.search(path.read_text())
    ]
    assert offenders == []
