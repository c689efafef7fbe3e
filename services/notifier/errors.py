"""The notifier's errors. Transient ones are retried with backoff; permanent ones are not.

    NotifierError
    └── SendError                  a channel could not deliver one message
        ├── TransientSendError     timeouts, SMTP 4xx, HTTP 429/5xx: retry later (not before
        │                          `retry_after` seconds when the far end said so)
        └── PermanentSendError     SMTP 5xx recipient errors, push 404/410: mark channel dead;
                                   and any exception a channel did not expect (`unexpected`):
                                   retrying what nobody foresaw would only repeat it

Messages carry error classes and codes only, never addresses or content.
"""

from __future__ import annotations

from collections.abc import Awaitable

__all__ = [
    "NotifierError",
    "PermanentSendError",
    "SendError",
    "TransientSendError",
    "unexpected",
]


class NotifierError(Exception):
    pass


class SendError(NotifierError):
    def __init__(self, channel: str, detail: str) -> None:
        super().__init__(f"{channel}: {detail}")
        self.channel = channel
        self.detail = detail


class TransientSendError(SendError):
    permanent = False

    def __init__(self, channel: str, detail: str, *, retry_after: float | None = None) -> None:
        super().__init__(channel, detail)
        self.retry_after = retry_after  # seconds the far end asked us to wait (Retry-After)


class PermanentSendError(SendError):
    permanent = True

    def __init__(self, channel: str, detail: str, *, gone: bool = False) -> None:
        super().__init__(channel, detail)
        self.gone = gone  # the address/subscription itself is dead: stop using the channel


def unexpected(channel: str, exc: BaseException, *, gone: bool = False) -> PermanentSendError:
    """An exception no channel classified: permanent (only its class is kept: the message may
    quote an address). `gone` when it is known to be about the address itself."""
    return PermanentSendError(channel, f"unexpected {type(exc).__name__}", gone=gone)


async def classified(channel: str, attempt: Awaitable[None]) -> None:
    """Await one send attempt so that only a SendError leaves it: anything a channel did not
    classify becomes permanent (`unexpected`), so a redelivery never retries it forever."""
    try:
        await attempt
    except SendError:
        raise
    except Exception as exc:  # an exception nobody classified: permanent
        raise unexpected(channel, exc) from None
