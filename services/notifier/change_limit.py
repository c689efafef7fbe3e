"""How many changes a partner may make through the public pages in a minute. Redis edge.

The manage page (action_routes.py) and the unsubscribe link (unsubscribe_routes.py) publish
new events for every POST: each is a deliberate change, with fresh ids, so none is deduped.
Their links never expire and an email can be forwarded, so anyone holding one could POST it
in a loop and put two events a request on the streams (a review measured 22 a second from
one client), filling the preferences and outcomes streams up to their caps. A partner
(per page) gets CHANGES_PER_MINUTE changes in a fixed minute; past it the page answers 429
with Retry-After until the minute ends. A person clicking never comes near it.

    <prefix>:limit:<page>:<digest>     string  changes counted this minute (COUNT); expires
                                               with it. The digest is of "<couple>|<partner>":
                                               no id is kept in the key's name
"""

from __future__ import annotations

import hashlib
from typing import Final, TypeVar

import redis.asyncio as aioredis
from starlette.responses import Response

from couples_nudge.common.keys import Keys

__all__ = ["CHANGES_PER_MINUTE", "COUNT", "RETRY_AFTER_S", "ChangeLimit", "too_many"]

CHANGES_PER_MINUTE: Final = 20
RETRY_AFTER_S: Final = 60

_Page = TypeVar("_Page", bound=Response)

COUNT: Final = """
-- Count one change. KEYS: 1 the counter   ARGV: 1 window ms
-- Returns the changes counted in the window so far, this one included.
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n
"""


class ChangeLimit:
    def __init__(self, redis: aioredis.Redis, keys: Keys, page: str) -> None:
        self.keys = keys
        self.page = page
        self._count = redis.register_script(COUNT)

    async def allow(self, couple_id: str, partner_id: str) -> bool:
        """Counts a change; False once the partner made CHANGES_PER_MINUTE this minute."""
        digest = hashlib.blake2b(f"{couple_id}|{partner_id}".encode(), digest_size=16)
        key = self.keys.change_limit(self.page, digest.hexdigest())
        n = await self._count(keys=[key], args=[RETRY_AFTER_S * 1000])
        return int(n) <= CHANGES_PER_MINUTE


def too_many(page: _Page) -> _Page:
    """A page refusing a change past the minute's budget (429), saying when to try again."""
    page.headers["Retry-After"] = str(RETRY_AFTER_S)
    return page
