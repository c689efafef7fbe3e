"""`nudge catalog`: items and coverage per kind, language, love language, focus and context."""

from __future__ import annotations

from typer.testing import CliRunner

from couples_nudge.cli import app
from couples_nudge.notifier.catalog import Catalog, Item, load_catalog
from couples_nudge.notifier.coverage import gaps, languages, sections


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["catalog", *args], env={"COLUMNS": "160"})
    return result.exit_code, result.output


def item(id_: str, focus: str, **tags: object) -> Item:
    base = Item(
        id=id_,
        kind="date_night",
        title=id_,
        body="Body",
        detail="",
        focus=frozenset({focus}),  # type: ignore[arg-type]
        love_languages=frozenset({"quality_time"}),
    )
    return Item(**{**{f: getattr(base, f) for f in base.__slots__}, **tags})


class TestCoverage:
    def test_counts_per_kind_and_context(self) -> None:
        """Every kind (check-ins per format) is counted per love language, focus and context;
        the context counts follow the notifier's rules."""
        by_name = {s.name: s for s in sections(load_catalog())}
        assert set(by_name) == {
            "date_night", "check_in (monthly_guide)", "check_in (question)", "appreciation"
        }  # fmt: skip
        dates = by_name["date_night"]
        assert dates.total == len(load_catalog().items("date_night"))
        assert dates.by_context["apart"] < dates.by_context["unknown"] <= dates.total
        assert sum(by_name["appreciation"].by_love.values()) >= by_name["appreciation"].total

    def test_a_thin_focus_area_is_a_gap(self) -> None:
        """A focus area with fewer items than four weekly date nights is reported, per context."""
        homely = [item(f"dn-{n}", "experiential", setting="home") for n in range(6)]
        items = (
            *homely,
            item("dn-talk", "conflict"),
            item("dn-call", "experiential", setting="apart"),
        )
        found = [g for g in gaps(Catalog({"en": items})) if g.rhythm == "date night weekly"]
        assert {
            (g.focus, g.items, g.needed) for g in found if g.context == "together, budget any"
        } >= {
            ("conflict", 1, 4),
            ("physical", 0, 4),
        }
        apart = [g for g in found if g.context.startswith("apart") and g.focus == "experiential"]
        assert apart
        assert all(g.items == 1 for g in apart)

    def test_languages_missing_items(self) -> None:
        """A language folder lacking English items is reported with how many it lacks."""
        en = (item("dn-a", "experiential"), item("dn-b", "experiential"))
        report = languages(Catalog({"en": en, "xx": en[:1]}))
        assert report["xx"] == ({"date_night": 1, "check_in": 0, "appreciation": 0}, ["dn-b"])


class TestCatalogCommand:
    def test_prints_coverage_and_gaps(self) -> None:
        """The report names every language, kind, love language, focus area and context."""
        code, output = run("--gaps", "3")
        assert code == 0, output
        for word in ("Languages", "date_night", "appreciation", "gifts", "conflict", "apart"):
            assert word in output
        assert "gaps" in output

    def test_lists_items(self) -> None:
        """--items --kind lists each item with its tags."""
        code, output = run("--items", "--kind", "date_night")
        assert code == 0, output
        assert "dn-cooking-class" in output

    def test_items_needs_a_kind(self) -> None:
        """--items without --kind is a usage error."""
        code, output = run("--items")
        assert code == 2
        assert "--kind" in output
