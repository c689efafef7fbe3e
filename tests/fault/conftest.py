"""Fault tests report what was lost or doubled; the lines are printed at the end of the run."""

from __future__ import annotations

import pytest

REPORT: list[str] = []


@pytest.fixture
def fault_report() -> list[str]:
    return REPORT


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if REPORT:
        terminalreporter.section("fault tests: lost / doubled")
        for line in REPORT:
            terminalreporter.write_line(line)
