"""What the HTTP channels (Web Push, webhook) share: one pooled client, one error mapping.

2xx                       delivered
gone statuses (404/410)   PermanentSendError(gone=True): the subscription/recipient is dead
429, 5xx                  TransientSendError: retry with backoff
timeouts, network errors  TransientSendError
any other status          PermanentSendError: retrying will not help; the channel stays
"""

from __future__ import annotations

import ssl
from collections.abc import Collection, Mapping

import httpx

from services.notifier.errors import PermanentSendError, TransientSendError

__all__ = ["HttpSender", "classify_status"]

USER_AGENT = "couples-nudge/0.1"


def classify_status(
    channel: str, status: int, *, gone: Collection[int]
) -> TransientSendError | PermanentSendError | None:
    """None for success, else the error to raise. Details carry the status code only."""
    if 200 <= status < 300:
        return None
    detail = f"HTTP {status}"
    if status in gone:
        return PermanentSendError(channel, detail, gone=True)
    if status == 429 or status >= 500:
        return TransientSendError(channel, detail)
    return PermanentSendError(channel, detail)


class HttpSender:
    """One httpx.AsyncClient per channel: connections are pooled, every request times out."""

    def __init__(
        self,
        channel: str,
        *,
        timeout: float,
        concurrency: int,
        gone: Collection[int],
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        self._channel = channel
        self._gone = frozenset(gone)
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout),
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
            headers={"User-Agent": USER_AGENT},
            follow_redirects=False,
            verify=verify,
            trust_env=False,
        )

    async def post(self, url: str, *, content: bytes, headers: Mapping[str, str]) -> None:
        try:
            response = await self._client.post(url, content=content, headers=dict(headers))
        except httpx.TimeoutException:
            raise TransientSendError(self._channel, "timeout") from None
        except httpx.HTTPError as exc:  # connection refused, reset, TLS failure, ...
            raise TransientSendError(self._channel, type(exc).__name__) from None
        error = classify_status(self._channel, response.status_code, gone=self._gone)
        if error is not None:
            raise error

    async def close(self) -> None:
        await self._client.aclose()
