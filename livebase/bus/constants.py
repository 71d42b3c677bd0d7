"""Names the bus shares with Redis and with the rest of the app, kept in one place.

Every Redis key the bus touches is ``<key prefix><stream name>``; the prefix is a constructor
argument so that tests (and several deployments on one Redis) stay apart.
"""

from typing import Final

#: Prefix of every stream key written by ``RedisStreamsBus`` unless another one is given.
DEFAULT_KEY_PREFIX: Final = "livebase:stream:"

#: The field of a stream entry holding one encoded event.
FIELD_EVENT: Final = "event"

#: The field of a packed entry instead: a JSON array of encoded events, written by one XADD.
#: Its events share the entry's message id and are acknowledged together.
FIELD_EVENTS: Final = "events"

#: Longest single ``XREADGROUP BLOCK``. Longer waits are sliced so that a blocked read stays under
#: the client's socket timeout (redis-py defaults to 5 s) instead of failing with a timeout.
BLOCK_SLICE_MS: Final = 1_000

#: Stream of domain events (stream started/ended, pins, viewers, orders).
STREAM_DOMAIN: Final = "domain"

EVENT_STREAM_STARTED: Final = "stream.started"
EVENT_STREAM_ENDED: Final = "stream.ended"
EVENT_PIN_CREATED: Final = "pin.created"
EVENT_PIN_REMOVED: Final = "pin.removed"
EVENT_VIEWER_JOINED: Final = "viewer.joined"
EVENT_VIEWER_HEARTBEAT: Final = "viewer.heartbeat"
EVENT_VIEWER_LEFT: Final = "viewer.left"
EVENT_ORDER_CREATED: Final = "order.created"
EVENT_ORDER_PAID: Final = "order.paid"
