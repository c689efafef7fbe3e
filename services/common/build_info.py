"""What this process is built from: the versions behind the `nudge_build_info` gauge.

Read once from the installed distributions' metadata (importlib.metadata), never from the
environment; a distribution that is not installed (a source checkout without `pip install`)
reads as "unknown", so the gauge is always there.
"""

from __future__ import annotations

import platform
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from typing import Final, NamedTuple

__all__ = ["DISTRIBUTION", "BuildInfo", "build_info"]

DISTRIBUTION: Final = "couples-nudge"
UNKNOWN: Final = "unknown"


def _version(distribution: str) -> str:
    try:
        return version(distribution)
    except PackageNotFoundError:
        return UNKNOWN


class BuildInfo(NamedTuple):
    """The labels of `nudge_build_info`."""

    version: str  # of this distribution (couples-nudge)
    python: str
    redis_py: str
    faststream: str
    tzdata: str  # the tz database's release the zones are read from (common/zones.py)


@cache
def build_info() -> BuildInfo:
    """This process's versions (computed once: they do not change while it runs)."""
    return BuildInfo(
        version=_version(DISTRIBUTION),
        python=platform.python_version(),
        redis_py=_version("redis"),
        faststream=_version("faststream"),
        tzdata=_version("tzdata"),
    )
