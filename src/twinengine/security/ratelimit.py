"""Token-bucket rate limits: in-process by default, Redis when several processes serve."""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod

log = logging.getLogger(__name__)


class RateLimiter(ABC):
    """Answers whether one more request for ``key`` fits its bucket."""

    @abstractmethod
    def allow(self, key: str, *, rate: float, burst: int) -> tuple[bool, float]:
        """(allowed, seconds until a token is available)."""


class MemoryRateLimiter(RateLimiter):
    """Buckets in a dict; exact within one process."""

    def __init__(self, max_keys: int = 100_000) -> None:
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, last refill)
        self._max_keys = max_keys

    def allow(self, key: str, *, rate: float, burst: int) -> tuple[bool, float]:
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key, (float(burst), now))
            tokens = min(float(burst), tokens + (now - last) * rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                return True, 0.0
            self._buckets[key] = (tokens, now)
            if len(self._buckets) > self._max_keys:  # bound memory under an address scan
                self._buckets.clear()
            return False, (1.0 - tokens) / rate if rate > 0 else 60.0


# One round trip, atomic in Redis: refill, take, and expire idle buckets.
_LUA = """
local key = KEYS[1]
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local b = redis.call('HMGET', key, 't', 'ts')
local tokens = tonumber(b[1]) or burst
local ts = tonumber(b[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local ok = 0
if tokens >= 1 then tokens = tokens - 1 ok = 1 end
redis.call('HSET', key, 't', tokens, 'ts', now)
redis.call('EXPIRE', key, math.ceil(burst / rate) + 1)
return {ok, tostring(tokens)}
"""


class RedisRateLimiter(RateLimiter):
    """Buckets in Redis, shared by every API process; falls open if Redis is down."""

    def __init__(self, url: str) -> None:
        import redis

        self._redis = redis.Redis.from_url(url, socket_timeout=0.2, socket_connect_timeout=0.5)
        self._script = self._redis.register_script(_LUA)

    def allow(self, key: str, *, rate: float, burst: int) -> tuple[bool, float]:
        try:
            ok, tokens = self._script(keys=[f"te:rl:{key}"], args=[rate, burst, time.time()])
        except Exception as exc:  # a limiter outage must not take the API down
            log.warning("rate limiter unavailable, allowing request: %s", exc)
            return True, 0.0
        if int(ok):
            return True, 0.0
        return False, (1.0 - float(tokens)) / rate if rate > 0 else 60.0


def make_rate_limiter(redis_url: str) -> RateLimiter:
    """Redis-backed when a URL is configured, else in-process."""
    return RedisRateLimiter(redis_url) if redis_url else MemoryRateLimiter()
