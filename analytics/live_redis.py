"""Live counters in Redis, shared by every API process and aggregator on the same Redis.

Key names are built in :mod:`analytics.constants`. Each multi-key change of one scope is one
Lua script (atomic), and a batch's scripts go in one ``MULTI`` pipeline, so a reader never sees
half a batch. The scripts implement the same rules as :class:`~analytics.live.MemoryCounters`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
import redis.exceptions
from redis.asyncio import Redis

from analytics.constants import (
    DEFAULT_LIVE_PREFIX,
    KEY_COUNTERS,
    KEY_MINUTE,
    KEY_ORDERS,
    KEY_PRESENT,
    KEY_PRODUCT_ORDERS,
    KEY_PRODUCTS,
    KEY_ROOMS,
    LIVE_TTL,
    MINUTE_SET_TTL,
    PRESENCE_WINDOW_MS,
    TOP_PRODUCTS,
    live_key,
)
from analytics.live import CounterUpdate, LiveCounters, Snapshot, now_ms, top
from livebase.bus import BusUnavailableError
from livebase.bus.redis_streams import client_from_url

# KEYS: present, minute set, counters. ARGV: now ms, window ms, ttl s, minute ttl s, then the
# news as one MessagePack array of two columns, [viewers] and [2 × ms + left] (one argument:
# redis-py encodes each argument in Python, msgspec the whole array in C; columns, because
# cmsgpack makes a Lua table of every array, and a table per viewer cost Redis a quarter of
# its time). Presence keeps the newest news per viewer (negative: left); viewers are read and
# written a chunk at a time, one ZMSCORE, ZADD and SADD each.
PRESENCE = """
local now, window = tonumber(ARGV[1]), tonumber(ARGV[2])
local news = cmsgpack.unpack(ARGV[5])
local viewers, codes = news[1], news[2]
for first = 1, #viewers, 500 do
  local last = math.min(first + 499, #viewers)
  local members = {unpack(viewers, first, last)}
  local stored = redis.call('ZMSCORE', KEYS[1], unpack(members))
  local known, changed, n = {}, {}, 0
  for k = 1, #members do
    local member, code = members[k], codes[first + k - 1]
    local at, left = math.floor(code / 2), code % 2 == 1
    local cur = known[member]
    if cur == nil then cur = stored[k] and tonumber(stored[k]) end
    if (not cur) or at > math.abs(cur) or (left and at == math.abs(cur)) then
      cur = left and -at or at
      if changed[member] == nil then
        n = n + 1
        changed[member] = n
      end
    end
    known[member] = cur
  end
  if n > 0 then
    local adds = {}
    for member, i in pairs(changed) do
      adds[2 * i - 1], adds[2 * i] = known[member], member
    end
    redis.call('ZADD', KEYS[1], unpack(adds))
  end
  redis.call('SADD', KEYS[2], unpack(members))
end
local cutoff = now - window
redis.call('ZREMRANGEBYSCORE', KEYS[1], '(' .. -cutoff, '(' .. cutoff)
local seen = redis.call('SCARD', KEYS[2])
if seen > tonumber(redis.call('HGET', KEYS[3], 'peak') or '0') then
  redis.call('HSET', KEYS[3], 'peak', seen)
end
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[4])
"""

# KEYS: orders set, counters, products, product orders. ARGV: ttl s, then (order, fen, product)
# triples; an order counts the first time it joins the set.
ORDERS = """
for i = 2, #ARGV, 3 do
  if redis.call('SADD', KEYS[1], ARGV[i]) == 1 then
    local fen = tonumber(ARGV[i + 1])
    redis.call('HINCRBY', KEYS[2], 'gmv_fen', fen)
    redis.call('HINCRBY', KEYS[2], 'orders', 1)
    if ARGV[i + 2] ~= '' then
      redis.call('ZINCRBY', KEYS[3], fen, ARGV[i + 2])
      redis.call('HINCRBY', KEYS[4], ARGV[i + 2], 1)
    end
  end
end
for k = 1, 4 do redis.call('EXPIRE', KEYS[k], ARGV[1]) end
"""

# KEYS: counters. ARGV: ttl s. Every update of a scope moves its version.
TOUCH = """
redis.call('HINCRBY', KEYS[1], 'version', 1)
redis.call('EXPIRE', KEYS[1], ARGV[1])
"""

# KEYS: the base's rooms hash. ARGV: ttl s, then (room, session) pairs; the newest session wins.
ROOMS = """
for i = 2, #ARGV, 2 do
  local cur = tonumber(redis.call('HGET', KEYS[1], ARGV[i]) or '0')
  if tonumber(ARGV[i + 1]) > cur then redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
end
redis.call('EXPIRE', KEYS[1], ARGV[1])
"""

TTL_S = int(LIVE_TTL.total_seconds())
MINUTE_TTL_S = int(MINUTE_SET_TTL.total_seconds())


_msgpack: Callable[[Any], bytes] = msgspec.msgpack.Encoder().encode


def _int(value: Any) -> int:
    return 0 if value is None else int(value)


class RedisCounters(LiveCounters):
    """Live counters in Redis. A client passed in stays the caller's; a URL's is closed here."""

    def __init__(self, redis: str | Redis, *, prefix: str = DEFAULT_LIVE_PREFIX) -> None:
        if isinstance(redis, str):
            self._client: Redis = client_from_url(redis)
            self._owns_client = True
        else:
            self._client, self._owns_client = redis, False
        self.prefix = prefix
        self._presence = self._client.register_script(PRESENCE)
        self._orders = self._client.register_script(ORDERS)
        self._touch = self._client.register_script(TOUCH)
        self._rooms = self._client.register_script(ROOMS)

    def key(self, kind: str, scope: str) -> str:
        return live_key(self.prefix, kind, scope)

    async def apply(self, update: CounterUpdate) -> None:
        try:
            await self._apply(update)
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
            # Said as the bus says it, so the consumer waits it out like a bus outage.
            raise BusUnavailableError(f"Redis unavailable for live counters: {exc}") from exc

    async def _apply(self, update: CounterUpdate) -> None:
        now = now_ms()
        async with self._client.pipeline(transaction=True) as pipe:
            for scope, change in update.scopes.items():
                counters = self.key(KEY_COUNTERS, scope)
                for minute, news in change.presence.items():
                    keys = [self.key(KEY_PRESENT, scope), self.key(KEY_MINUTE, f"{scope}:{minute}")]
                    argv: list[int | bytes] = [now, PRESENCE_WINDOW_MS, TTL_S, MINUTE_TTL_S]
                    argv.append(_msgpack(news))
                    await self._presence(keys=[*keys, counters], args=argv, client=pipe)
                if change.orders:
                    keys = [
                        self.key(KEY_ORDERS, scope),
                        counters,
                        self.key(KEY_PRODUCTS, scope),
                        self.key(KEY_PRODUCT_ORDERS, scope),
                    ]
                    args = [x for k, fen, p in change.orders for x in (k, fen, p or "")]
                    await self._orders(keys=keys, args=[TTL_S, *args], client=pipe)
                await self._touch(keys=[counters], args=[TTL_S], client=pipe)
            for base, rooms in update.rooms.items():
                args = [x for room, session in rooms.items() for x in (room, session)]
                await self._rooms(
                    keys=[self.key(KEY_ROOMS, base)], args=[TTL_S, *args], client=pipe
                )
            await pipe.execute()

    async def snapshot(self, scope: str, at_ms: int | None = None) -> Snapshot:
        cutoff = (now_ms() if at_ms is None else at_ms) - PRESENCE_WINDOW_MS
        async with self._client.pipeline(transaction=False) as pipe:
            pipe.zcount(self.key(KEY_PRESENT, scope), cutoff, "+inf")
            pipe.hgetall(self.key(KEY_COUNTERS, scope))
            # A few more than shown, so ties on GMV are broken the same way in both stores.
            pipe.zrevrange(self.key(KEY_PRODUCTS, scope), 0, TOP_PRODUCTS * 2, withscores=True)
            present, counters, best = await pipe.execute()
        counters = {_text(k): v for k, v in counters.items()}
        ids = [int(_text(member)) for member, _ in best]
        orders = await self._client.hmget(self.key(KEY_PRODUCT_ORDERS, scope), ids) if ids else []
        products = {
            pid: (int(fen), _int(n)) for pid, (_, fen), n in zip(ids, best, orders, strict=True)
        }
        return Snapshot(
            concurrent_viewers=int(present),
            peak_concurrent_viewers=_int(counters.get("peak")),
            gmv_fen=_int(counters.get("gmv_fen")),
            orders=_int(counters.get("orders")),
            top_products=top(products),
            version=_int(counters.get("version")),
        )

    async def version(self, scope: str) -> int:
        return _int(await self._client.hget(self.key(KEY_COUNTERS, scope), "version"))

    async def rooms(self, base: str) -> dict[str, int]:
        found = await self._client.hgetall(self.key(KEY_ROOMS, base))
        return {_text(room): int(session) for room, session in found.items()}

    async def close(self) -> None:
        if self._owns_client:
            await self._client.aclose()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
