"""Room stream keys: rotated (shown once), revoked, and checked for a publish.

Only the key's SHA-256 digest and its last characters are stored. A publish looks the room up
by digest and then compares in constant time.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from livebase import credentials
from livebase.db.models import Base, Room, utcnow


@dataclass(frozen=True, slots=True)
class RoomRef:
    """The room a valid stream key opens, as ingest needs it."""

    room_id: int
    room_slug: str
    base_id: int
    base_slug: str


async def rotate(db: AsyncSession, room: Room) -> str:
    """Give the room a new key, invalidating the old one; returns the key (show it once)."""
    key = credentials.new_secret(credentials.STREAM_KEY_PREFIX)
    room.stream_key_hash = credentials.digest(key)
    room.stream_key_hint = key[-4:]
    room.stream_key_rotated_at = utcnow()
    await db.flush()
    return key


async def revoke(db: AsyncSession, room: Room) -> None:
    room.stream_key_hash = None
    room.stream_key_hint = None
    room.stream_key_rotated_at = utcnow()
    await db.flush()


async def room_for_key(db: AsyncSession, key: str) -> RoomRef | None:
    """The room whose current key is ``key``, or None for a wrong, revoked or empty key."""
    if not key or len(key) > 200:
        return None
    row = (
        await db.execute(
            select(Room, Base.slug)
            .join(Base, Base.id == Room.base_id)
            .where(Room.stream_key_hash == credentials.digest(key))
        )
    ).first()
    if row is None:
        return None
    room, base_slug = row
    if room.stream_key_hash is None or not credentials.matches(key, room.stream_key_hash):
        return None
    return RoomRef(room.id, room.slug, room.base_id, base_slug)
