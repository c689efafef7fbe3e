"""Building preference events for tests from the examples, with overrides."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples" / "couples"


def example(name: str = "maya-and-sam") -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EXAMPLES / f"{name}.json").read_text())
    return data


def envelope(type_: str, data: dict[str, Any], occurred_at: datetime | None = None) -> bytes:
    event = {
        "type": type_,
        "event_id": str(uuid.uuid4()),
        "occurred_at": (occurred_at or datetime.now(UTC)).isoformat(),
        "producer": "tests",
        "data": data,
    }
    return json.dumps(event).encode()


def preferences(
    couple_id: str = "c1", revision: int = 1, occurred_at: datetime | None = None, **overrides: Any
) -> bytes:
    data = example()["data"]
    data["couple_id"] = couple_id
    data["revision"] = revision
    data.update(overrides)
    return envelope("preferences.set.v1", data, occurred_at)
