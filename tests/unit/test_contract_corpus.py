"""The exported JSON Schemas and the service agree, event for event: every example is valid
for both, and every refused event is refused by both, except where JSON Schema cannot say the
rule (each such case names why). A disagreement is listed, not just counted."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from tests.support.contracts import (
    EXAMPLES,
    STREAM_STEMS,
    event_types,
    refused_corpus,
    stem_of,
    valid_examples,
    verdict,
)

STEMS = ("preference-event", "nudge-due", "outcome-event")  # one per stream


class TestValidExamples:
    def test_every_example_is_valid_for_the_service_and_the_json_schema(self) -> None:
        """Each example passes the service's parser and a Draft 2020-12 validator with its
        FormatChecker on; a disagreement names the example and what each side said."""
        disagreements = []
        examples = valid_examples()
        for name, event in examples:
            seen = verdict(stem_of(event["type"]), event)
            if not (seen.service_accepts and seen.schema_accepts):
                disagreements.append((name, seen.service_reason, seen.schema_errors[:3]))
        print(f"\n{len(examples)} valid examples checked, {len(disagreements)} disagreements")
        assert examples
        assert disagreements == []

    def test_every_event_type_has_an_example(self) -> None:
        """examples/events/ holds one event of each type the exported schemas define."""
        types = set().union(*(event_types(stem) for stem in STEMS))
        named = {path.stem for path in (EXAMPLES / "events").glob("*.json")}
        assert types - named == set(), "add examples/events/<type>.json"
        assert named - types == set(), "an example of a type no schema defines"

    def test_examples_are_named_for_their_type(self) -> None:
        """examples/events/<type>.json holds an event of that type (cloudevents/ too)."""
        paths = [*(EXAMPLES / "events").glob("*.json"), *(EXAMPLES / "cloudevents").glob("*")]
        for path in paths:
            assert json.loads(path.read_text())["type"] == path.stem


class TestRefusedCorpus:
    def test_the_service_and_the_json_schema_refuse_alike(self) -> None:
        """Every refused event: the service refuses it with the reason written beside it, and
        the JSON Schema refuses it too, unless the case says why JSON Schema cannot."""
        corpus = refused_corpus()
        disagreements = []
        gaps = 0
        for case in corpus:
            seen = verdict(STREAM_STEMS[case.stream], case.event)
            if seen.service_accepts or case.reason not in (seen.service_reason or ""):
                disagreements.append((case.name, f"service said: {seen.service_reason}"))
            expected = case.json_schema == "refuses"
            if seen.schema_accepts == expected:
                said = "accepts" if seen.schema_accepts else "refuses"
                disagreements.append((case.name, f"json schema {said}; corpus: {case.json_schema}"))
            gaps += not expected
        print(
            f"\n{len(corpus)} refused events checked: {len(corpus) - gaps} refused by both, "
            f"{gaps} by the service alone (rules JSON Schema cannot express); "
            f"{len(disagreements)} disagreements"
        )
        for item in disagreements:
            print("  disagreement:", *item)
        assert len(corpus) >= 30
        assert disagreements == []

    def test_each_gap_says_why(self) -> None:
        """A case the JSON Schema accepts carries the reason JSON Schema cannot refuse it."""
        for case in refused_corpus():
            assert case.json_schema in {"refuses", "accepts"}, case.name
            assert (case.json_schema == "accepts") == bool(case.why_the_json_schema_cannot)

    def test_reasons_never_quote_the_refused_value(self) -> None:
        """The service's reason names the field and the rule, never the value refused (words
        of the contract itself, such as `weekly` or `email`, may appear as locations)."""
        quoted = []
        for case in refused_corpus():
            reason = verdict(STREAM_STEMS[case.stream], case.event).service_reason or ""
            for value in _strings(case.event):
                if len(value) >= 4 and value in reason and not _CONTRACT_WORD.fullmatch(value):
                    quoted.append((case.name, value))
        assert quoted == []


# Field names, type names and enum values a reason may name: they are the contract's words.
_CONTRACT_WORD = re.compile(r"[a-z0-9_.]+")


def _strings(node: Any) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for v in node.values() for s in _strings(v)]
    if isinstance(node, list):
        return [s for v in node for s in _strings(v)]
    return []


def test_the_corpus_folders_exist() -> None:
    """The corpus lives where docs/publishers.md says."""
    assert Path(EXAMPLES / "events").is_dir()
    assert Path(EXAMPLES / "refused").is_dir()
