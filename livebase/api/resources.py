"""The base-scoped entities and who may see and change them.

| entity       | admin | base_manager | merchant         | host                          |
|--------------|-------|--------------|------------------|-------------------------------|
| rooms        | all   | own base     | —                | read own room                 |
| hosts        | all   | own base     | —                | read self                     |
| merchants    | all   | own base     | read self        | —                             |
| products     | all   | own base     | own listings     | read base's listings          |
| sessions     | all   | own base     | —                | own sessions (in own room)    |
| destinations | all   | own base     | —                | read own sessions' and room's |
| orders       | all   | own base     | read own orders  | —                             |

A product's SKUs and image uploads, and imports, follow the products' write rules; exports
follow the read rules (``livebase.api.products``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, ScalarSelect, or_, select

from livebase.api import schemas as s
from livebase.api.crud import CrudSpec, Scope
from livebase.api.products import ProductSpec, product_out
from livebase.api.routing import Context
from livebase.auth import Principal
from livebase.bus import Event
from livebase.credentials import mask, mask_secrets
from livebase.db.models import (
    Base,
    Destination,
    DestinationProtocol,
    Host,
    LiveSession,
    Merchant,
    Order,
    OrderStatus,
    Product,
    Role,
    Room,
    SessionStatus,
    Theme,
    utcnow,
)
from livebase.errors import Conflict, FieldError, Forbidden, ValidationFailed

ADMINS: dict[Role, Scope] = {Role.ADMIN: None, Role.BASE_MANAGER: None}


def _nothing(_: Principal) -> dict[str, Any]:
    return {}


MANAGERS_CREATE = {Role.ADMIN: _nothing, Role.BASE_MANAGER: _nothing}


def host_room_id(p: Principal) -> ScalarSelect[int | None]:
    return select(Host.room_id).where(Host.id == p.host_id).scalar_subquery()


def _own_room(p: Principal) -> ColumnElement[bool]:
    return Room.id == host_room_id(p)


def _own_sessions(p: Principal) -> ColumnElement[bool]:
    return LiveSession.host_id == p.host_id


ROOMS = CrudSpec(
    name="rooms",
    singular="room",
    model=Room,
    out=s.RoomOut,
    create=s.RoomCreate,
    update=s.RoomUpdate,
    query=s.RoomQuery,
    read={**ADMINS, Role.HOST: _own_room},
    write=ADMINS,
    create_as=MANAGERS_CREATE,
    lookup="slug",
)

HOSTS = CrudSpec(
    name="hosts",
    singular="host",
    model=Host,
    out=s.HostOut,
    create=s.HostCreate,
    update=s.HostUpdate,
    query=s.HostQuery,
    read={**ADMINS, Role.HOST: lambda p: Host.id == p.host_id},
    write=ADMINS,
    create_as=MANAGERS_CREATE,
    refs={"room_id": Room},
)

MERCHANTS = CrudSpec(
    name="merchants",
    singular="merchant",
    model=Merchant,
    out=s.MerchantOut,
    create=s.MerchantCreate,
    update=s.MerchantUpdate,
    query=s.ListQuery,
    read={**ADMINS, Role.MERCHANT: lambda p: Merchant.id == p.merchant_id},
    write=ADMINS,
    create_as=MANAGERS_CREATE,
)


PRODUCTS = ProductSpec(
    name="products",
    singular="product",
    model=Product,
    out=s.ProductOut,
    create=s.ProductCreate,
    update=s.ProductUpdate,
    query=s.ProductQuery,
    read={**ADMINS, Role.MERCHANT: lambda p: Product.merchant_id == p.merchant_id, Role.HOST: None},
    write={**ADMINS, Role.MERCHANT: lambda p: Product.merchant_id == p.merchant_id},
    create_as={**MANAGERS_CREATE, Role.MERCHANT: lambda p: {"merchant_id": p.merchant_id}},
    refs={"merchant_id": Merchant},
    serialize=product_out,
)

TRANSITIONS = {
    SessionStatus.PLANNED: {SessionStatus.LIVE, SessionStatus.ENDED},
    SessionStatus.LIVE: {SessionStatus.ENDED},
    SessionStatus.ENDED: set(),
}


async def _check_theme(ctx: Context, values: dict[str, Any]) -> None:
    theme_id = values.get("theme_id")
    if theme_id is not None and await ctx.db.get(Theme, theme_id) is None:
        raise ValidationFailed(
            "unknown theme", fields=[FieldError("theme_id", f"no theme #{theme_id}")]
        )


async def _session_create(ctx: Context, base: Base, row: Any, values: dict[str, Any]) -> None:
    await _check_theme(ctx, values)
    if ctx.principal.role is Role.HOST:
        own_room = await ctx.db.scalar(select(Host.room_id).where(Host.id == ctx.principal.host_id))
        if values["room_id"] != own_room:
            raise Forbidden("a host can plan sessions only in their own room")


async def _session_update(ctx: Context, base: Base, row: Any, changes: dict[str, Any]) -> None:
    await _check_theme(ctx, changes)
    if ctx.principal.role is Role.HOST and "host_id" in changes:
        raise Forbidden("a host cannot hand a session to another host")
    new = changes.get("status")
    if new is None or new == row.status:
        return
    if new not in TRANSITIONS[row.status]:
        raise Conflict(
            f"a session cannot go from {row.status.value} to {new.value}",
            code="invalid_transition",
        )
    if new is SessionStatus.LIVE:
        changes["started_at"] = utcnow()
    else:
        changes["ended_at"] = utcnow()
    ctx.events.append(
        Event(
            type=f"session.{new.value}",
            base=base.slug,
            data={
                "session_id": row.id,
                "room_id": row.room_id,
                "host_id": row.host_id,
            },
        )
    )


SESSIONS = CrudSpec(
    name="sessions",
    singular="session",
    model=LiveSession,
    out=s.SessionOut,
    create=s.SessionCreate,
    update=s.SessionUpdate,
    query=s.SessionQuery,
    read={**ADMINS, Role.HOST: _own_sessions},
    write={**ADMINS, Role.HOST: _own_sessions},
    create_as={**MANAGERS_CREATE, Role.HOST: lambda p: {"host_id": p.host_id}},
    refs={"room_id": Room, "host_id": Host},
    before_create=_session_create,
    before_update=_session_update,
)


def _destination_out(row: Destination) -> s.DestinationOut:
    return s.DestinationOut(
        id=row.id,
        room_id=row.room_id,
        session_id=row.session_id,
        name=row.name,
        platform=row.platform,
        protocol=row.protocol,
        url=mask_secrets(row.url),
        stream_key_hint=mask(row.stream_key) if row.stream_key else "",
        enabled=row.enabled,
        state=row.state,
        last_error=row.last_error,
        state_changed_at=row.state_changed_at,
    )


def _destination_changed(ctx: Context, base: Base, row: Any, action: str) -> None:
    # Ingest nodes follow these to add, replace or drop a relay while a session is live.
    ctx.events.append(
        Event(
            type=f"destination.{action}",
            base=base.slug,
            data={"destination_id": row.id, "session_id": row.session_id, "room_id": row.room_id},
        )
    )


def _host_destinations(p: Principal) -> ColumnElement[bool]:
    own_sessions = select(LiveSession.id).where(LiveSession.host_id == p.host_id)
    return or_(Destination.session_id.in_(own_sessions), Destination.room_id == host_room_id(p))


async def _destination_create(ctx: Context, base: Base, row: Any, values: dict[str, Any]) -> None:
    if (values.get("room_id") is None) == (values.get("session_id") is None):
        raise ValidationFailed(
            "a destination belongs to exactly one of a room or a session",
            fields=[FieldError("room_id", "give room_id or session_id, not both")],
        )
    values["protocol"] = DestinationProtocol(values["url"].split(":", 1)[0])


async def _destination_update(ctx: Context, base: Base, row: Any, changes: dict[str, Any]) -> None:
    if changes.get("url"):
        changes["protocol"] = DestinationProtocol(changes["url"].split(":", 1)[0])


DESTINATIONS = CrudSpec(
    name="destinations",
    singular="destination",
    model=Destination,
    out=s.DestinationOut,
    create=s.DestinationCreate,
    update=s.DestinationUpdate,
    query=s.DestinationQuery,
    read={**ADMINS, Role.HOST: _host_destinations},
    write=ADMINS,
    create_as=MANAGERS_CREATE,
    refs={"room_id": Room, "session_id": LiveSession},
    serialize=_destination_out,
    after_change=_destination_changed,
    before_create=_destination_create,
    before_update=_destination_update,
)


async def _order_create(ctx: Context, base: Base, row: Any, values: dict[str, Any]) -> None:
    if values.get("product_id") is not None:
        product = await ctx.db.get(Product, values["product_id"])
        values["merchant_id"] = product.merchant_id if product else None
    if values.get("session_id") is not None:
        session = await ctx.db.get(LiveSession, values["session_id"])
        values["host_id"] = session.host_id if session else None


ORDER_TRANSITIONS = {
    OrderStatus.PAID: {OrderStatus.REFUNDED, OrderStatus.CANCELLED},
    OrderStatus.REFUNDED: set(),
    OrderStatus.CANCELLED: set(),
}


async def _order_update(ctx: Context, base: Base, row: Any, changes: dict[str, Any]) -> None:
    new = changes.get("status")
    if new is not None and new != row.status and new not in ORDER_TRANSITIONS[row.status]:
        raise Conflict(
            f"an order cannot go from {row.status.value} to {new.value}",
            code="invalid_transition",
        )


ORDERS = CrudSpec(
    name="orders",
    singular="order",
    model=Order,
    out=s.OrderOut,
    create=s.OrderCreate,
    update=s.OrderUpdate,
    query=s.OrderQuery,
    read={**ADMINS, Role.MERCHANT: lambda p: Order.merchant_id == p.merchant_id},
    write=ADMINS,
    create_as=MANAGERS_CREATE,
    refs={"product_id": Product, "session_id": LiveSession},
    before_create=_order_create,
    before_update=_order_update,
)

SPECS = (ROOMS, HOSTS, MERCHANTS, PRODUCTS, SESSIONS, DESTINATIONS, ORDERS)
