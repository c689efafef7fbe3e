"""`python -m couples_nudge.healthcheck`: exit 0 when this container's service answers /healthz.

For the image's HEALTHCHECK (and any orchestrator that runs a command): it asks the operator
listener (NUDGE_OPERATOR_PORT, else NUDGE_HTTP_PORT) on this host, with the same settings the
service read. It imports no more than the settings, so it is cheap to run every few seconds.
Exit 0: healthy; 1: not answering or not ok (one line on stderr says why, never a secret).
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request
from typing import Final

from couples_nudge.common.settings import CommonSettings

__all__ = ["healthz_url", "main"]

TIMEOUT_SECONDS: Final = 3.0
_ANY: Final = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}  # noqa: S104 (matched)


def healthz_url(settings: CommonSettings) -> str | None:
    """Where this process's /healthz is, from its settings; None when no port is set."""
    port = settings.operator_port if settings.operator_port is not None else settings.http_port
    if not port:  # unset, or 0 (a free port chosen at start: nobody else can know it)
        return None
    host = _ANY.get(settings.http_host, settings.http_host)
    return f"http://{f'[{host}]' if ':' in host else host}:{port}/healthz"


def main() -> int:
    url = healthz_url(CommonSettings())
    if url is None:
        print("unhealthy: no NUDGE_OPERATOR_PORT or NUDGE_HTTP_PORT is set", file=sys.stderr)
        return 1
    try:
        # An http:// URL built above from the settings' host and port, never from input.
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as answer:  # noqa: S310
            status = answer.status
    except (urllib.error.URLError, OSError) as exc:
        print(f"unhealthy: no answer from /healthz ({type(exc).__name__})", file=sys.stderr)
        return 1
    if status != 200:
        print(f"unhealthy: /healthz answered {status}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
