"""Store platform figures for a base: match each broadcast, then insert or replace it.

Matching: the broadcast's account is compared with the base's hosts (display name or handle,
ignoring case and spaces); for a matched host, the live session of that host whose start
(actual, else scheduled) is nearest the broadcast's, within :data:`MATCH_WINDOW`, is the
session, and the session's room and theme come with it. A broadcast with no session is kept as
an *external* one (with its host when the account matched one), so its figures still count for
the base and the host.

Idempotent on ``(platform, row_key)``: the same figures again change nothing (not even
``imported_at``); new figures for a known broadcast replace the old ones, since platforms
revise their numbers (late payments, refunds) for days.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

from sqlalchemy import func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from analytics.platform.figures import PlatformFigures
from analytics.platform.models import PlatformSession
from livebase.db.models import Host, LiveSession

MATCH_WINDOW: Final = timedelta(minutes=30)


@dataclass(slots=True)
class Saved:
    """What an import did, and what each broadcast was matched to."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    matched_sessions: int = 0
    external: int = 0
    rows: list[dict[str, object]] = field(default_factory=list)


def _key(name: str | None) -> str:
    return "".join((name or "").split()).casefold()


async def _hosts(db: AsyncSession, base_id: int) -> dict[str, int]:
    found: dict[str, int] = {}
    for host in await db.scalars(select(Host).where(Host.base_id == base_id).order_by(Host.id)):
        for name in (host.display_name, host.handle):
            if name:
                found.setdefault(_key(name), host.id)
    return found


async def _sessions(
    db: AsyncSession, base_id: int, host_ids: set[int], figures: Sequence[PlatformFigures]
) -> dict[int, list[tuple[datetime, LiveSession]]]:
    """The hosts' sessions that start (actually, else as scheduled) near any broadcast."""
    if not host_ids or not figures:
        return {}
    start = func.coalesce(LiveSession.started_at, LiveSession.scheduled_start)
    low = min(f.started_at for f in figures) - MATCH_WINDOW
    high = max(f.started_at for f in figures) + MATCH_WINDOW
    rows = await db.scalars(
        select(LiveSession).where(
            LiveSession.base_id == base_id,
            LiveSession.host_id.in_(sorted(host_ids)),
            start.between(low, high),
        )
    )
    found: dict[int, list[tuple[datetime, LiveSession]]] = {}
    for session in rows:
        at = session.started_at or session.scheduled_start
        if at is not None and session.host_id is not None:
            found.setdefault(session.host_id, []).append((at, session))
    return found


def _nearest(
    candidates: list[tuple[datetime, LiveSession]], started: datetime
) -> LiveSession | None:
    near = [
        (abs(at - started), s.id, s) for at, s in candidates if abs(at - started) <= MATCH_WINDOW
    ]
    return min(near, key=lambda n: (n[0], n[1]))[2] if near else None


async def save_figures(
    db: AsyncSession,
    base_id: int,
    figures: Sequence[PlatformFigures],
    *,
    now: datetime | None = None,
) -> Saved:
    """Match and store ``figures`` in the caller's transaction."""
    now = now or datetime.now(UTC)
    hosts = await _hosts(db, base_id)
    keys = [(f.platform, f.row_key) for f in figures]
    existing = {
        (row.platform, row.row_key): row
        for row in await db.scalars(
            select(PlatformSession).where(
                tuple_(PlatformSession.platform, PlatformSession.row_key).in_(keys)
            )
        )
    }
    matched = {f.row_key: hosts.get(_key(f.account)) for f in figures}
    sessions = await _sessions(db, base_id, {h for h in matched.values() if h}, figures)
    saved = Saved()
    for fig in figures:
        host_id = matched[fig.row_key]
        session = _nearest(sessions.get(host_id, []), fig.started_at) if host_id else None
        values: dict[str, object] = {
            "base_id": base_id,
            "account": fig.account,
            "started_at": fig.started_at,
            "session_id": session.id if session else None,
            "host_id": host_id,
            "room_id": session.room_id if session else None,
            "theme_id": session.theme_id if session else None,
            **fig.counts(),
        }
        row = existing.get((fig.platform, fig.row_key))
        if row is None:
            db.add(PlatformSession(platform=fig.platform, row_key=fig.row_key, imported_at=now,
                                   **values))  # fmt: skip
            outcome = "created"
        elif any(getattr(row, k) != v for k, v in values.items()):
            for k, v in values.items():
                setattr(row, k, v)
            row.imported_at = now
            outcome = "updated"
        else:
            outcome = "unchanged"
        setattr(saved, outcome, getattr(saved, outcome) + 1)
        if session is not None:
            saved.matched_sessions += 1
        else:
            saved.external += 1
        saved.rows.append({
            "line": fig.line, "row_key": fig.row_key, "account": fig.account,
            "started_at": fig.started_at, "outcome": outcome,
            "session_id": values["session_id"], "host_id": host_id,
        })  # fmt: skip
    await db.flush()
    return saved
