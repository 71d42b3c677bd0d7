"""Names the analytics pipeline shares with the bus, Redis and the database, in one place.

Every Redis key the live counters write is ``<prefix><kind>:<scope>`` with the prefix below
(a constructor argument, so tests and several deployments on one Redis stay apart). A scope is
``session:<id>`` (a room's broadcast) or ``base:<slug>:<YYYY-MM-DD>`` (a base's local day).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Final

#: The bus stream analytics events travel on. Kept apart from ``domain`` so that the consumers
#: of domain events (the ingest registry) never wade through viewer heartbeats.
STREAM_ANALYTICS: Final = "analytics"

#: Consumer groups on :data:`STREAM_ANALYTICS`; each sees every event once (at least).
GROUP_COUNTERS: Final = "analytics-counters"
GROUP_ROLLUPS: Final = "analytics-rollups"
GROUP_ARCHIVE: Final = "analytics-archive"

#: Largest batch ``POST /api/v1/events`` takes; the body size limit usually bites first.
MAX_BATCH_EVENTS: Final = 5_000

#: A viewer is "watching now" while their last viewer event is younger than this. Players and
#: the HLS hook beat every 30 s, so two missed beats (and some slack) mean they left.
PRESENCE_WINDOW_MS: Final = 70_000

#: How many products a live snapshot lists, by GMV.
TOP_PRODUCTS: Final = 10

#: Live counters of a scope live this long after its last update (Redis ``EXPIRE``).
LIVE_TTL: Final = timedelta(hours=48)

#: A minute's viewer set is kept this long for the peak; later events of that minute still
#: reach the rollups, which are the number of record.
MINUTE_SET_TTL: Final = timedelta(minutes=10)

# --- Redis keys of the live counters ---------------------------------------------------------

DEFAULT_LIVE_PREFIX: Final = "livebase:live:"
KEY_PRESENT: Final = "present"  #: sorted set: viewer → last seen ms (negative once they left)
KEY_MINUTE: Final = "minute"  #: set per scope and minute: viewers seen in that minute
KEY_COUNTERS: Final = "counters"  #: hash: gmv_fen, orders, peak, version
KEY_ORDERS: Final = "orders"  #: set of "<platform>:<order_id>" counted
KEY_PRODUCTS: Final = "products"  #: sorted set: product id → GMV in fen
KEY_PRODUCT_ORDERS: Final = "product-orders"  #: hash: product id → paid orders
KEY_ROOMS: Final = "rooms"  #: hash per base: room slug → its latest session id


def session_scope(session_id: int) -> str:
    return f"session:{session_id}"


def base_scope(base: str, day: str) -> str:
    return f"base:{base}:{day}"


def live_key(prefix: str, kind: str, scope: str) -> str:
    return f"{prefix}{kind}:{scope}"
