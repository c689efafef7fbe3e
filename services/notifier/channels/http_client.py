"""What the HTTP channels (Web Push, webhook) share: one pooled client, one error mapping.

2xx                       delivered
gone statuses (404/410)   PermanentSendError(gone=True): the subscription/recipient is dead
429, 5xx                  TransientSendError: retry with backoff
timeouts, network errors  TransientSendError
any other status          PermanentSendError: retrying will not help; the channel stays
a URL httpx cannot use    PermanentSendError, gone when the URL is the address (push endpoint)
any other exception       PermanentSendError (unexpected): the channel stays

httpx returns every connection to its pool (or closes it) on all of these paths.
"""

from __future__ import annotations

import ssl
from collections.abc import Collection, Mapping

import httpx

from services.notifier.errors import PermanentSendError, TransientSendError, unexpected

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
        url_is_address: bool = False,
    ) -> None:
        self._channel = channel
        self._gone = frozenset(gone)
        self._url_is_address = url_is_address  # a URL that cannot work: the address is gone
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
        except (httpx.InvalidURL, httpx.UnsupportedProtocol, httpx.LocalProtocolError) as exc:
            # Not a URL httpx can use (or a request it cannot write): never works as it is.
            raise unexpected(self._channel, exc, gone=self._url_is_address) from None
        except httpx.HTTPError as exc:  # connection refused, reset, TLS failure, ...
            raise TransientSendError(self._channel, type(exc).__name__) from None
        except Exception as exc:  # e.g. ValueError for a malformed URL
            raise unexpected(self._channel, exc, gone=self._url_is_address) from None
        error = classify_status(self._channel, response.status_code, gone=self._gone)
        if error is not None:
            raise error

    async def close(self) -> None:
        await self._client.aclose()
