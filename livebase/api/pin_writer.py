"""The one writer of pins per process: pins and unpins queue here and commit in batches.

A pin or unpin call authenticates, checks its input and hands a :class:`PinJob` to
:meth:`PinWriter.submit`. The writer takes every job waiting and applies them in arrival
order in one transaction: one read of the batch's sessions, one of the products of their
lineups (stock, GI claim), one of the pins to unpin, then at most two updates and one insert,
whatever the batch's size. Each job is still judged on its own (not live, not in
the lineup, out of stock, GI claim incomplete, no such pin): a refused job gets its own
error and the others go in. After the commit the writer publishes the batch's events (the
viewers' hub and the HLS cue writer follow them on the bus) and then answers each call.

Through SQLAlchemy and aiosqlite a statement costs about 250 µs of CPU, and a pin used
three of them plus the commit: batching turns a burst of pins into a few statements in all.
Nothing a pin is judged by is cached: the batch reads it, so a lineup, stock or session
change committed before the batch is seen by it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiohttp import web
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from livebase.api import schemas as s
from livebase.api.state import BUS, DB_SESSIONS, WRITE_QUEUE, WriteTurn
from livebase.auth import Principal
from livebase.batching import BatchWriter, Committed
from livebase.bus import STREAM_DOMAIN, Event, EventBus
from livebase.db.models import (
    Base,
    GiClaimRecord,
    LineupItem,
    LiveSession,
    Pin,
    Product,
    Role,
    SessionStatus,
    utcnow,
)
from livebase.errors import ApiError, Conflict, FieldError, NotFound, ValidationFailed
from livebase.listings import store

log = logging.getLogger("livebase.api.pins")
MAX_BATCH = 500

# The batch's statements, built once: building one costs more CPU than a batch's judging.
_SESSIONS = (
    select(LiveSession.id, Base.slug, LiveSession.base_id, LiveSession.status, LiveSession.host_id)
    .join(Base, Base.id == LiveSession.base_id)
    .where(LiveSession.id.in_(bindparam("sessions", expanding=True)))
)
_OFFERED = (
    select(LineupItem.session_id, Product.id, Product.stock, GiClaimRecord)
    .join(Product, Product.id == LineupItem.product_id)
    .outerjoin(GiClaimRecord, GiClaimRecord.product_id == Product.id)
    .where(
        LineupItem.session_id.in_(bindparam("sessions", expanding=True)),
        LineupItem.product_id.in_(bindparam("products", expanding=True)),
    )
)
_PINS = select(Pin).where(Pin.id.in_(bindparam("pins", expanding=True)))
_UNPIN = (
    update(Pin)
    .where(Pin.id.in_(bindparam("pins", expanding=True)), Pin.unpinned_at.is_(None))
    .values(unpinned_at=bindparam("now"))
    .returning(Pin.id)
    .execution_options(synchronize_session=False)
)
# One product is pinned at a time: a pin ends its session's current pin.
_END_CURRENT = (
    update(Pin)
    .where(Pin.session_id.in_(bindparam("sessions", expanding=True)), Pin.unpinned_at.is_(None))
    .values(unpinned_at=bindparam("now"))
    .execution_options(synchronize_session=False)
)
_INSERT = insert(Pin).returning(Pin.id, sort_by_parameter_order=True)


@dataclass(frozen=True, slots=True)
class PinJob:
    """A pin (``product_id`` set) or an unpin (``pin_id`` set) of the path's session."""

    principal: Principal
    base_slug: str
    session_id: int
    product_id: int | None = None
    stream_offset_ms: int | None = None
    pin_id: int | None = None
    pin_raw: str = ""


# What a job gets: the pin as stored, None when its session is not found (the caller
# raises the generic lookup errors), or its own error.
Outcome = s.PinOut | None | ApiError
# The batch's products by (session, product) in the session's lineup: stock and GI claim.
Lineup = dict[tuple[int, int], tuple[int, GiClaimRecord | None]]


@dataclass(slots=True)
class _SessionRow:
    slug: str
    base_id: int
    status: SessionStatus
    host_id: int | None


@dataclass(slots=True)
class _Plan:
    """The batch's writes, worked out in job order before any is made."""

    now: datetime
    outcomes: list[Outcome] = field(default_factory=list)
    new_pins: list[tuple[int, dict[str, Any]]] = field(default_factory=list)  # (job, values)
    sessions_pinned: set[int] = field(default_factory=set)
    to_unpin: dict[int, int] = field(default_factory=dict)  # pin id -> job index
    # (job, event type, base slug, data); a new pin's data gets its id once inserted
    events: list[tuple[int, str, str, dict[str, Any]]] = field(default_factory=list)


def _visible(job: PinJob, row: _SessionRow | None) -> bool:
    """The session is in the path's base, a base the caller sees, and within the caller's
    write scope (``SESSIONS.write``: a host writes only their own sessions)."""
    p = job.principal
    if row is None or row.slug != job.base_slug or not p.can_see_base(row.base_id):
        return False
    return p.role is not Role.HOST or row.host_id == p.host_id


def _check_pinnable(product_id: int, stock: int, claim: GiClaimRecord | None) -> None:
    """Viewers buy what is pinned: it must be in stock and any GI claim must hold up."""
    if stock == 0:
        raise Conflict(
            f"product {product_id} is out of stock (every SKU has 0 left); restock it first",
            code="out_of_stock",
        )
    missing = store.gi_problems(store.claim_from(claim))
    if missing:
        raise ValidationFailed(
            f"product {product_id} claims a geographical indication that is incomplete; "
            "complete the claim before pinning it",
            fields=missing,
            code="gi_incomplete",
        )


class PinWriter(BatchWriter[PinJob, s.PinOut | None]):
    """Owns the pins' write transactions; start with :meth:`run` as a task, one per app.

    :meth:`submit` gives the pin as committed, or None when the job's session is not there
    for its caller.
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        bus: EventBus,
        write_lock: asyncio.Lock | None,
        *,
        max_batch: int = MAX_BATCH,
    ) -> None:
        super().__init__(max_batch=max_batch, log=log, what="pin")
        self._sessions = sessions
        self._bus = bus
        self._write_lock = write_lock

    async def _commit(self, jobs: Sequence[PinJob]) -> Committed[s.PinOut | None]:
        turn = WriteTurn(self._write_lock)
        try:
            async with self._sessions() as db, db.begin():
                plan = await self._plan(db, jobs)
                await turn.take()
                await self._write(db, plan)
        finally:
            turn.release()
        if not plan.events:
            return Committed(plan.outcomes)
        events = [Event(type=kind, base=slug, data=data) for _, kind, slug, data in plan.events]

        async def publish() -> None:  # the viewers' hub and the HLS cue writer follow these
            await self._bus.publish_many(STREAM_DOMAIN, events)

        return Committed(plan.outcomes, publish, frozenset(i for i, *_ in plan.events))

    async def _plan(self, db: AsyncSession, jobs: Sequence[PinJob]) -> _Plan:
        session_ids = {j.session_id for j in jobs}
        product_ids = {j.product_id for j in jobs if j.product_id is not None}
        pin_ids = {j.pin_id for j in jobs if j.pin_id is not None}
        rows = await db.execute(_SESSIONS, {"sessions": list(session_ids)})
        found = {r[0]: _SessionRow(r[1], r[2], r[3], r[4]) for r in rows}
        lineup: Lineup = {}
        if product_ids:
            params = {"sessions": list(session_ids), "products": list(product_ids)}
            offered = await db.execute(_OFFERED, params)
            lineup = {(r[0], r[1]): (r[2], r[3]) for r in offered}
        pins: dict[int, Pin] = {}
        if pin_ids:
            pins = {p.id: p for p in await db.scalars(_PINS, {"pins": list(pin_ids)})}
        plan = _Plan(now=utcnow())
        ended: set[int] = set()  # pins this batch has ended so far, in job order
        for i, job in enumerate(jobs):
            row = found.get(job.session_id)
            if not _visible(job, row):
                plan.outcomes.append(None)
                continue
            assert row is not None
            try:
                if job.product_id is not None:
                    self._pin(plan, i, job, row, job.product_id, lineup)
                else:
                    self._unpin(plan, i, job, row, pins.get(job.pin_id or -1), ended)
            except ApiError as exc:
                plan.outcomes.append(exc)
        return plan

    @staticmethod
    def _pin(
        plan: _Plan,
        i: int,
        job: PinJob,
        row: _SessionRow,
        product_id: int,
        lineup: Lineup,
    ) -> None:
        if row.status is not SessionStatus.LIVE:
            raise Conflict(
                f"products can be pinned only while the session is live (it is {row.status})",
                code="session_not_live",
            )
        judged = lineup.get((job.session_id, product_id))
        if judged is None:
            raise ValidationFailed(
                "the product is not in this session's lineup",
                fields=[FieldError("product_id", "not in the lineup")],
            )
        _check_pinnable(product_id, *judged)
        # One product is pinned at a time: pinning another ends the session's current pin,
        # whether it was pinned before this batch or earlier in it.
        for _, earlier in plan.new_pins:
            if earlier["session_id"] == job.session_id:
                earlier["unpinned_at"] = plan.now
        plan.sessions_pinned.add(job.session_id)
        values: dict[str, Any] = {
            "base_id": row.base_id,
            "session_id": job.session_id,
            "product_id": product_id,
            "pinned_at": plan.now,
            "unpinned_at": None,
            "stream_offset_ms": job.stream_offset_ms,
        }
        plan.new_pins.append((i, values))
        plan.outcomes.append(None)  # replaced by the pin once inserted
        data = {"session_id": job.session_id, "product_id": product_id, "pin_id": None}
        plan.events.append((i, "pin.created", row.slug, data))

    @staticmethod
    def _unpin(
        plan: _Plan, i: int, job: PinJob, row: _SessionRow, pin: Pin | None, ended: set[int]
    ) -> None:
        if pin is None or pin.session_id != job.session_id:
            raise NotFound(f"no pin {job.pin_raw!r} in session {job.session_id}")
        out = s.PinOut.model_validate(pin)
        open_now = (
            out.unpinned_at is None
            and out.id not in ended
            and not any(
                v["session_id"] == pin.session_id for _, v in plan.new_pins
            )  # a pin earlier in the batch ended it
        )
        if out.unpinned_at is None and not open_now:
            out.unpinned_at = plan.now
        elif open_now:
            ended.add(out.id)
            plan.to_unpin[out.id] = i
            out.unpinned_at = plan.now
            data = {"session_id": pin.session_id, "product_id": pin.product_id, "pin_id": pin.id}
            plan.events.append((i, "pin.removed", row.slug, data))
        plan.outcomes.append(out)

    @staticmethod
    async def _write(db: AsyncSession, plan: _Plan) -> None:
        now = plan.now
        if plan.to_unpin:
            done = await db.execute(_UNPIN, {"pins": list(plan.to_unpin), "now": now})
            raced = set(plan.to_unpin) - set(done.scalars())
            if raced:
                await _answer_raced(db, plan, raced)
        if plan.sessions_pinned:
            await db.execute(_END_CURRENT, {"sessions": list(plan.sessions_pinned), "now": now})
        if plan.new_pins:
            ids = await db.scalars(_INSERT, [values for _, values in plan.new_pins])
            created: dict[int, int] = {}
            for (i, values), pin_id in zip(plan.new_pins, ids, strict=True):
                plan.outcomes[i] = s.PinOut(id=pin_id, **values)
                created[i] = pin_id
            for i, kind, _, data in plan.events:
                if kind == "pin.created":
                    data["pin_id"] = created[i]


async def _answer_raced(db: AsyncSession, plan: _Plan, raced: set[int]) -> None:
    """Unpins of pins another process ended meanwhile: answer its time, announce nothing."""
    rows = await db.execute(select(Pin.id, Pin.unpinned_at).where(Pin.id.in_(raced)))
    for pin_id, unpinned_at in rows:
        i = plan.to_unpin[pin_id]
        out = plan.outcomes[i]
        assert isinstance(out, s.PinOut)
        out.unpinned_at = unpinned_at
    plan.events = [
        e for e in plan.events if not (e[1] == "pin.removed" and e[3]["pin_id"] in raced)
    ]


PIN_WRITER = web.AppKey("pin_writer", PinWriter)


async def pin_writer_ctx(app: web.Application) -> AsyncIterator[None]:
    """Owns the pin writer's task; stops after the server has stopped taking calls."""
    writer = PinWriter(app[DB_SESSIONS], app[BUS], app[WRITE_QUEUE])
    app[PIN_WRITER] = writer
    async with writer.running("pin-writer"):
        yield
