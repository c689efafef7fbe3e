"""What the HTTP channels (Web Push, webhook, FCM, APNs) share: one pooled client, one error
mapping.

2xx                       delivered
gone statuses (404/410)   PermanentSendError(gone=True): the subscription/recipient is dead
429, 5xx                  TransientSendError: retry with backoff, not before Retry-After
timeouts, network errors  TransientSendError ("timeout": `timeout` bounds the whole request,
                          not only each read: a far end answering a byte at a time is cut off)
any other status          PermanentSendError: retrying will not help; the channel stays
a URL httpx cannot use    PermanentSendError, gone when the URL is the address (push endpoint)
any other exception       PermanentSendError (unexpected): the channel stays

httpx returns every connection to its pool (or closes it) on all of these paths. FCM and APNs
read the answer themselves (`exchange`): their vendors say more in the body than the status.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Final

import httpx

from couples_nudge.notifier.errors import PermanentSendError, TransientSendError, unexpected

__all__ = ["HttpSender", "classify_status", "retry_after"]

USER_AGENT = "couples-nudge/0.1"
MAX_RETRY_AFTER: Final = 24 * 3600.0  # a far end cannot park a nudge for longer


def retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), bounded; None when
    absent or unreadable."""
    if not value:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():  # "²" is a digit to isdigit, not to float
        seconds = float(text[:9])
    else:
        try:
            when = parsedate_to_datetime(text[:64])
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def classify_status(
    channel: str, status: int, *, gone: Collection[int], retry_after_s: float | None = None
) -> TransientSendError | PermanentSendError | None:
    """None for success, else the error to raise. Details carry the status code only;
    `retry_after_s` (the answer's Retry-After) goes with a transient one."""
    if 200 <= status < 300:
        return None
    detail = f"HTTP {status}"
    if status in gone:
        return PermanentSendError(channel, detail, gone=True)
    if status == 429 or status >= 500:
        return TransientSendError(channel, detail, retry_after=retry_after_s)
    return PermanentSendError(channel, detail)


class HttpSender:
    """One httpx.AsyncClient per channel: connections are pooled, every request ends within
    `timeout` seconds (waiting for a connection included)."""

    def __init__(
        self,
        channel: str,
        *,
        timeout: float,
        concurrency: int,
        gone: Collection[int],
        verify: ssl.SSLContext | bool = True,
        url_is_address: bool = False,
        http2: bool = False,
    ) -> None:
        self._channel = channel
        self._gone = frozenset(gone)
        self._url_is_address = url_is_address  # a URL that cannot work: the address is gone
        self._timeout = timeout
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout),
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
            headers={"User-Agent": USER_AGENT},
            follow_redirects=False,
            verify=verify,
            trust_env=False,
            http2=http2,
        )

    async def post(self, url: str, *, content: bytes, headers: Mapping[str, str]) -> None:
        response = await self.exchange(url, content=content, headers=headers)
        status = response.status_code
        if 200 <= status < 300:
            return
        # A push service's or receiver's 429/503 may say when to come back (RFC 8030 8.4).
        wait = retry_after(response.headers.get("retry-after"))
        error = classify_status(self._channel, status, gone=self._gone, retry_after_s=wait)
        if error is not None:
            raise error

    async def exchange(
        self, url: str, *, content: bytes, headers: Mapping[str, str]
    ) -> httpx.Response:
        """POST and read the whole answer; network failures raised as send errors."""
        try:
            # httpx's timeout restarts with every byte read; this one bounds the request.
            async with asyncio.timeout(self._timeout):
                return await self._client.post(url, content=content, headers=dict(headers))
        except (httpx.TimeoutException, TimeoutError):
            raise TransientSendError(self._channel, "timeout") from None
        except (httpx.InvalidURL, httpx.UnsupportedProtocol, httpx.LocalProtocolError) as exc:
            # Not a URL httpx can use (or a request it cannot write): never works as it is.
            raise unexpected(self._channel, exc, gone=self._url_is_address) from None
        except httpx.HTTPError as exc:  # connection refused, reset, TLS failure, ...
            raise TransientSendError(self._channel, type(exc).__name__) from None
        except Exception as exc:  # e.g. ValueError for a malformed URL
            raise unexpected(self._channel, exc, gone=self._url_is_address) from None

    async def close(self) -> None:
        await self._client.aclose()
