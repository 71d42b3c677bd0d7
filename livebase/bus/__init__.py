"""The event bus: publish domain events, consume them in consumer groups (at-least-once).

``create_bus(settings.redis_url)`` gives Redis Streams when a URL is configured and the
in-process bus otherwise; both honour the contract in :mod:`livebase.bus.base`.
"""

from livebase.bus.base import EventBus, RawEntry
from livebase.bus.constants import DEFAULT_KEY_PREFIX, STREAM_DOMAIN
from livebase.bus.errors import (
    BusClosedError,
    BusDecodeError,
    BusEncodeError,
    BusError,
    BusUnavailableError,
    NoSuchGroupError,
)
from livebase.bus.events import Delivery, Event, decode_event, encode_event
from livebase.bus.memory import InProcessBus
from livebase.bus.redis_streams import RedisStreamsBus

__all__ = (
    "DEFAULT_KEY_PREFIX",
    "STREAM_DOMAIN",
    "BusClosedError",
    "BusDecodeError",
    "BusEncodeError",
    "BusError",
    "BusUnavailableError",
    "Delivery",
    "Event",
    "EventBus",
    "InProcessBus",
    "NoSuchGroupError",
    "RawEntry",
    "RedisStreamsBus",
    "create_bus",
    "decode_event",
    "encode_event",
)


def create_bus(
    redis_url: str, *, key_prefix: str = DEFAULT_KEY_PREFIX, maxlen: int | None = None
) -> EventBus:
    """Redis Streams at ``redis_url``, or the in-process bus when it is empty."""
    if redis_url:
        return RedisStreamsBus(redis_url, key_prefix=key_prefix, maxlen=maxlen)
    return InProcessBus(maxlen=maxlen)
