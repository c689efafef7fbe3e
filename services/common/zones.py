"""The tz database every process reads: the tzdata package requirements.lock pins.

zoneinfo reads the host's zone files first (/usr/share/zoneinfo: the machine's or the base
image's tzdata) and the tzdata package only for a name the host lacks. So the rules in force
were the host's: replicas built from different images, or the scheduler and `nudge preview` on
a laptop, put one couple's 09:00 at different instants. On a host with tzdata 2025b, 09:00 in
Vancouver on 7 December 2026 was 17:00Z; under the pinned 2026f (British Columbia keeps UTC-7
all year) it is 16:00Z. `pin_zone_database` makes a process read the package alone (as
PYTHONTZPATH="" would); `nudge_build_info` reports its version (the `tzdata` label).
"""

from __future__ import annotations

import zoneinfo

__all__ = ["pin_zone_database"]


def pin_zone_database() -> None:
    """Read zones from the tzdata package only, from now on (zones read before are dropped)."""
    zoneinfo.reset_tzpath(to=[])
    zoneinfo.ZoneInfo.clear_cache()
