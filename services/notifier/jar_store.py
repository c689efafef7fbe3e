"""The notifier's Redis edge for the couple's date jar: one atomic draw.

The scheduler owns the jar's ideas (datejar events); the notifier only records its draws, in
the couple's draws hash (keys.py): the ideas drawn since the last refill and, per draw key,
the idea drawn, so that both partners and every redelivery of a nudge get the same idea.
"""

from __future__ import annotations

from typing import Final, cast

import redis.asyncio as aioredis

from couples_nudge.common.autopipeline import AutoPipeline
from couples_nudge.common.keys import Keys
from couples_nudge.notifier.jar import JarIdea, draw_pick, parse_draw

__all__ = ["DRAW", "JarStore"]

DRAW: Final = """
-- Draw an idea from a couple's date jar without replacement: the same one again for a draw
-- key already drawn (while that idea is still in the jar); else one of the ideas not drawn
-- since the last refill (all drawn: forget them, a refill). Draw records older than `keep`
-- are trimmed. Writes nothing when the couple is gone (an erasure won).
-- KEYS: 1 couple hash, 2 jar hash, 3 jar draws hash
-- ARGV: 1 draw key, 2 pick (an integer below 2^31), 3 now ms, 4 keep draw records ms
-- Returns {idea id, entry JSON}, or {} when the jar is empty or the couple is gone.
if redis.call('EXISTS', KEYS[1]) == 0 then return {} end
local record = 'o:' .. ARGV[1]
local now, keep = tonumber(ARGV[3]), tonumber(ARGV[4])
local drawn, old, prior = {}, {}, false
local rows = redis.call('HGETALL', KEYS[3])
for i = 1, #rows, 2 do
  local field, value = rows[i], rows[i + 1]
  if string.sub(field, 1, 2) == 'd:' then
    drawn[string.sub(field, 3)] = true
  elseif field == record then
    prior = string.match(value, '^(.*)|')
  else
    local at = tonumber(string.match(value, '|(%d+)$'))
    if at and at < now - keep then old[#old + 1] = field end
  end
end
for _, field in ipairs(old) do redis.call('HDEL', KEYS[3], field) end
if prior then
  local entry = redis.call('HGET', KEYS[2], prior)
  if entry then return {prior, entry} end
end
local ids = redis.call('HKEYS', KEYS[2])
if #ids == 0 then return {} end
table.sort(ids)
local fresh = {}
for _, id in ipairs(ids) do
  if not drawn[id] then fresh[#fresh + 1] = id end
end
if #fresh == 0 then
  for id in pairs(drawn) do redis.call('HDEL', KEYS[3], 'd:' .. id) end
  fresh = ids
end
local id = fresh[tonumber(ARGV[2]) % #fresh + 1]
redis.call('HSET', KEYS[3], 'd:' .. id, ARGV[3], record, id .. '|' .. ARGV[3])
return {id, redis.call('HGET', KEYS[2], id)}
"""


class JarStore:
    def __init__(self, redis: aioredis.Redis, keys: Keys, pipe: AutoPipeline) -> None:
        self.keys = keys
        self.pipe = pipe
        self._draw = redis.register_script(DRAW)

    async def draw(self, couple_id: str, key: str, *, now_ms: int, keep_ms: int) -> JarIdea | None:
        """The idea drawn under `key` (drawn now if it was not yet); None: an empty jar."""
        reply = cast(
            "list[bytes]",
            await self.pipe.script(
                self._draw,
                [
                    self.keys.couple(couple_id),
                    self.keys.jar(couple_id),
                    self.keys.jar_draws(couple_id),
                ],
                [key, draw_pick(key), now_ms, keep_ms],
            ),
        )
        return parse_draw(reply[0], reply[1]) if reply else None
