"""The domain model as SQLAlchemy 2 tables.

Money is an integer amount in fen (1/100 yuan) plus an ISO 4217 currency code; times are UTC.
Secrets (API tokens, room stream keys) are stored as SHA-256 digests only: they are long random
strings, so a fast hash is enough and lets us look them up by digest.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from livebase.gi import GiSystem

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use timezone-aware UTC datetimes")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Role(enum.StrEnum):
    ADMIN = "admin"
    BASE_MANAGER = "base_manager"
    MERCHANT = "merchant"
    HOST = "host"


class ProductStatus(enum.StrEnum):
    DRAFT = "draft"
    ACTIVE = "active"
    ARCHIVED = "archived"


class SessionStatus(enum.StrEnum):
    PLANNED = "planned"
    LIVE = "live"
    ENDED = "ended"


class DestinationProtocol(enum.StrEnum):
    RTMP = "rtmp"
    RTMPS = "rtmps"
    SRT = "srt"


class OrderStatus(enum.StrEnum):
    PAID = "paid"
    REFUNDED = "refunded"
    CANCELLED = "cancelled"


class StockState(enum.StrEnum):
    """What an order did to stock: nothing yet, took it, was refused it, or gave it back."""

    NONE = "none"
    TAKEN = "taken"
    REFUSED = "refused"
    RETURNED = "returned"


def _enum(cls: type[enum.StrEnum], name: str, length: int = 16) -> Enum:
    return Enum(
        cls,
        name=name,
        native_enum=False,
        length=length,
        values_callable=lambda e: [m.value for m in e],
    )


class Model(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Timestamps:
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class Base(Timestamps, Model):
    """A live-streaming base of the city (a building with studios)."""

    __tablename__ = "bases"
    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(63), unique=True)
    name_zh: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Shanghai")


class Theme(Timestamps, Model):
    __tablename__ = "themes"
    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(63), unique=True)
    name_zh: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200))


class Room(Timestamps, Model):
    """A studio of a base; hosts publish to it with the room's stream key."""

    __tablename__ = "rooms"
    __table_args__ = (UniqueConstraint("base_id", "slug", name="uq_rooms_base_slug"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    base_id: Mapped[int] = mapped_column(ForeignKey("bases.id", ondelete="CASCADE"), index=True)
    slug: Mapped[str] = mapped_column(String(63))
    name_zh: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200))
    stream_key_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    stream_key_hint: Mapped[str | None] = mapped_column(String(16))
    stream_key_rotated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    base: Mapped[Base] = relationship(lazy="raise")


class Host(Timestamps, Model):
    """A streamer (主播) who works at a base, usually in one home studio."""

    __tablename__ = "hosts"
    id: Mapped[int] = mapped_column(primary_key=True)
    base_id: Mapped[int] = mapped_column(ForeignKey("bases.id", ondelete="CASCADE"), index=True)
    room_id: Mapped[int | None] = mapped_column(ForeignKey("rooms.id", ondelete="SET NULL"))
    display_name: Mapped[str] = mapped_column(String(100))
    handle: Mapped[str | None] = mapped_column(String(100))


class Merchant(Timestamps, Model):
    __tablename__ = "merchants"
    id: Mapped[int] = mapped_column(primary_key=True)
    base_id: Mapped[int] = mapped_column(ForeignKey("bases.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    credit_code: Mapped[str | None] = mapped_column(String(18))


class Product(Timestamps, Model):
    """A product listing of a merchant.

    ``price_fen`` and ``stock`` are derived from the SKUs (the lowest price and the total stock)
    and kept in step by ``livebase.listings.store``, so that filters, orders and reports can read
    them without loading the SKUs. Every product has at least one SKU.
    """

    __tablename__ = "products"
    __table_args__ = (
        CheckConstraint("price_fen >= 0", name="price_nonnegative"),
        CheckConstraint("stock >= 0", name="stock_nonnegative"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    base_id: Mapped[int] = mapped_column(ForeignKey("bases.id", ondelete="CASCADE"), index=True)
    merchant_id: Mapped[int] = mapped_column(
        ForeignKey("merchants.id", ondelete="CASCADE"), index=True
    )
    title_zh: Mapped[str] = mapped_column(String(200))
    title_en: Mapped[str | None] = mapped_column(String(200))
    description_zh: Mapped[str | None] = mapped_column(Text)
    description_en: Mapped[str | None] = mapped_column(Text)
    price_fen: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    stock: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[ProductStatus] = mapped_column(
        _enum(ProductStatus, "product_status"), default=ProductStatus.DRAFT
    )
    category: Mapped[str | None] = mapped_column(String(63))
    # Loaded with the product (selectin), so a product serialises without further queries.
    skus: Mapped[list[ProductSku]] = relationship(
        lazy="selectin", cascade="all, delete-orphan", order_by="ProductSku.position"
    )
    images: Mapped[list[ProductImage]] = relationship(
        lazy="selectin", cascade="all, delete-orphan", order_by="ProductImage.position"
    )
    themes: Mapped[list[Theme]] = relationship(
        secondary="product_themes", lazy="selectin", order_by="Theme.slug"
    )
    gi: Mapped[GiClaimRecord | None] = relationship(
        lazy="selectin", cascade="all, delete-orphan", uselist=False
    )


class ProductSku(Timestamps, Model):
    """A stock-keeping unit of a product: one spec (size, grade, pack) with its price and stock."""

    __tablename__ = "product_skus"
    __table_args__ = (
        UniqueConstraint("product_id", "sku", name="uq_product_skus_product_sku"),
        CheckConstraint("price_fen >= 0", name="price_nonnegative"),
        CheckConstraint("stock >= 0", name="stock_nonnegative"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"))
    sku: Mapped[str] = mapped_column(String(64))
    spec_zh: Mapped[str] = mapped_column(String(200), default="")
    spec_en: Mapped[str | None] = mapped_column(String(200))
    price_fen: Mapped[int] = mapped_column(BigInteger)
    stock: Mapped[int] = mapped_column(Integer, default=0)
    # Always the product's currency: a product is priced in one currency.
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    position: Mapped[int] = mapped_column(Integer, default=0)


class ProductImage(Model):
    """An image of a product, in display order: an external URL or an uploaded file.

    Uploaded files are stored once under ``<data_dir>/images/`` by content hash; ``sha256`` is
    set for them and ``url`` is where the API serves them.
    """

    __tablename__ = "product_images"
    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(
        ForeignKey("products.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer, default=0)
    url: Mapped[str] = mapped_column(String(1000))
    sha256: Mapped[str | None] = mapped_column(String(64))
    content_type: Mapped[str | None] = mapped_column(String(32))
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    size_bytes: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ProductTheme(Model):
    """The themes (直播+文旅康养, 地理标志农产品 …) a product suits."""

    __tablename__ = "product_themes"
    product_id: Mapped[int] = mapped_column(
        ForeignKey("products.id", ondelete="CASCADE"), primary_key=True
    )
    theme_id: Mapped[int] = mapped_column(
        ForeignKey("themes.id", ondelete="CASCADE"), primary_key=True
    )


class GiClaimRecord(Timestamps, Model):
    """A product's geographical-indication claim (see ``livebase.gi``); one per product.

    Fields may be empty while the listing is a draft; the claim must be complete before the
    product goes active or is pinned.
    """

    __tablename__ = "product_gi_claims"
    product_id: Mapped[int] = mapped_column(
        ForeignKey("products.id", ondelete="CASCADE"), primary_key=True
    )
    system: Mapped[GiSystem] = mapped_column(_enum(GiSystem, "gi_system", length=24))
    registered_name: Mapped[str | None] = mapped_column(String(100))
    registration_number: Mapped[str | None] = mapped_column(String(100))
    holder: Mapped[str | None] = mapped_column(String(200))
    protected_area: Mapped[str | None] = mapped_column(Text)
    standard_code: Mapped[str | None] = mapped_column(String(64))
    credit_code: Mapped[str | None] = mapped_column(String(18))
    authorisation_ref: Mapped[str | None] = mapped_column(String(500))


class LiveSession(Timestamps, Model):
    """One broadcast: planned → live → ended, in a room, by a host, on a theme."""

    __tablename__ = "live_sessions"
    id: Mapped[int] = mapped_column(primary_key=True)
    base_id: Mapped[int] = mapped_column(ForeignKey("bases.id", ondelete="CASCADE"), index=True)
    room_id: Mapped[int] = mapped_column(ForeignKey("rooms.id", ondelete="CASCADE"), index=True)
    host_id: Mapped[int | None] = mapped_column(
        ForeignKey("hosts.id", ondelete="SET NULL"), index=True
    )
    theme_id: Mapped[int | None] = mapped_column(ForeignKey("themes.id", ondelete="SET NULL"))
    title: Mapped[str] = mapped_column(String(200))
    status: Mapped[SessionStatus] = mapped_column(
        _enum(SessionStatus, "session_status"), default=SessionStatus.PLANNED
    )
    scheduled_start: Mapped[datetime | None] = mapped_column(UTCDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class LineupItem(Model):
    """A product in a session's lineup, in running order."""

    __tablename__ = "session_lineup"
    session_id: Mapped[int] = mapped_column(
        ForeignKey("live_sessions.id", ondelete="CASCADE"), primary_key=True
    )
    product_id: Mapped[int] = mapped_column(
        ForeignKey("products.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, default=0)


class Destination(Timestamps, Model):
    """A platform push target (Douyin, Kuaishou, Channels …) for a room or one session."""

    __tablename__ = "destinations"
    __table_args__ = (
        CheckConstraint(
            "(room_id IS NOT NULL) <> (session_id IS NOT NULL)", name="room_xor_session"
        ),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    base_id: Mapped[int] = mapped_column(ForeignKey("bases.id", ondelete="CASCADE"), index=True)
    room_id: Mapped[int | None] = mapped_column(
        ForeignKey("rooms.id", ondelete="CASCADE"), index=True
    )
    session_id: Mapped[int | None] = mapped_column(
        ForeignKey("live_sessions.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    platform: Mapped[str] = mapped_column(String(32), default="custom")
    protocol: Mapped[DestinationProtocol] = mapped_column(
        _enum(DestinationProtocol, "destination_protocol")
    )
    url: Mapped[str] = mapped_column(String(1000))
    # The platform's push key must be sent to the platform, so it cannot be hashed; the API
    # only ever shows its last characters.
    stream_key: Mapped[str] = mapped_column(String(500), default="")
    enabled: Mapped[bool] = mapped_column(default=True)
    # Relay state as the ingest node last reported it: idle (not live), connecting, live,
    # retrying, failed, stopped.
    state: Mapped[str] = mapped_column(String(16), default="idle")
    last_error: Mapped[str] = mapped_column(String(500), default="")
    state_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class RelayIncident(Model):
    """A session's relay to one destination broke (retried) or gave up (failed).

    The destination row keeps only its current state, which goes back to ``idle`` when the
    session ends; this keeps what happened, one row per session and destination, so that the
    daily report can name the sessions whose relay failed.
    """

    __tablename__ = "relay_incidents"
    session_id: Mapped[int] = mapped_column(
        ForeignKey("live_sessions.id", ondelete="CASCADE"), primary_key=True
    )
    destination_id: Mapped[int] = mapped_column(
        ForeignKey("destinations.id", ondelete="CASCADE"), primary_key=True
    )
    base_id: Mapped[int] = mapped_column(ForeignKey("bases.id", ondelete="CASCADE"), index=True)
    retries: Mapped[int] = mapped_column(Integer, default=0)  #: times it broke and was retried
    failed: Mapped[bool] = mapped_column(default=False)  #: gave up (the platform refused)
    last_error: Mapped[str] = mapped_column(String(500), default="")
    first_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    last_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Pin(Model):
    """A product pinned during a live session, from pinned_at until unpinned_at."""

    __tablename__ = "pins"
    __table_args__ = (
        Index("ix_pins_session_pinned", "session_id", "pinned_at"),
        # Crediting an order looks for its products' pins still open or ended lately.
        Index("ix_pins_product_unpinned", "product_id", "unpinned_at"),
        # Pinning ends the session's open pin.
        Index("ix_pins_session_unpinned", "session_id", "unpinned_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    base_id: Mapped[int] = mapped_column(ForeignKey("bases.id", ondelete="CASCADE"), index=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("live_sessions.id", ondelete="CASCADE"))
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"))
    pinned_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    unpinned_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    stream_offset_ms: Mapped[int | None] = mapped_column(BigInteger)


class Order(Timestamps, Model):
    """A storefront order, once per platform order id, credited to a session, host, product."""

    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("platform", "platform_order_id", name="uq_orders_platform_order"),
        CheckConstraint("amount_fen >= 0", name="amount_nonnegative"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
        Index("ix_orders_base_placed", "base_id", "placed_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    base_id: Mapped[int] = mapped_column(ForeignKey("bases.id", ondelete="CASCADE"))
    merchant_id: Mapped[int | None] = mapped_column(
        ForeignKey("merchants.id", ondelete="SET NULL"), index=True
    )
    product_id: Mapped[int | None] = mapped_column(ForeignKey("products.id", ondelete="SET NULL"))
    session_id: Mapped[int | None] = mapped_column(
        ForeignKey("live_sessions.id", ondelete="SET NULL"), index=True
    )
    host_id: Mapped[int | None] = mapped_column(ForeignKey("hosts.id", ondelete="SET NULL"))
    platform: Mapped[str] = mapped_column(String(32))
    platform_order_id: Mapped[str] = mapped_column(String(128))
    quantity: Mapped[int] = mapped_column(Integer, default=1)
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    status: Mapped[OrderStatus] = mapped_column(
        _enum(OrderStatus, "order_status"), default=OrderStatus.PAID
    )
    placed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Orders from a connected shop (webhooks, pulls); None for orders entered through the API.
    connection_id: Mapped[int | None] = mapped_column(
        ForeignKey("shop_connections.id", ondelete="SET NULL"), index=True
    )
    refunded_fen: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    stock_state: Mapped[StockState] = mapped_column(
        _enum(StockState, "stock_state"), default=StockState.NONE, server_default="none"
    )
    # How the session was found: "tracking" (lb_* parameters), "pin", or "" (not credited by
    # the order intake: entered through the API, or no session matched).
    credited_by: Mapped[str] = mapped_column(String(16), default="", server_default="")
    buyer_ref: Mapped[str | None] = mapped_column(String(128))


class OrderLine(Model):
    """One line of a shop order: the platform's product and SKU, and ours they map to."""

    __tablename__ = "order_lines"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("amount_fen >= 0", name="amount_nonnegative"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    product_id: Mapped[int | None] = mapped_column(ForeignKey("products.id", ondelete="SET NULL"))
    sku_id: Mapped[int | None] = mapped_column(ForeignKey("product_skus.id", ondelete="SET NULL"))
    external_product_id: Mapped[str] = mapped_column(String(128))
    external_sku_id: Mapped[str] = mapped_column(String(128), default="")
    quantity: Mapped[int] = mapped_column(Integer)
    amount_fen: Mapped[int] = mapped_column(BigInteger)


class ShopConnection(Timestamps, Model):
    """A store (Shopify, WooCommerce, Douyin Shop, Youzan) connected to a base or a merchant.

    The platform credentials are one Fernet token (``livebase.orders.secrets``): encrypted at
    rest with the service's secret key, decrypted only to build an adapter.
    """

    __tablename__ = "shop_connections"
    __table_args__ = (
        UniqueConstraint("platform", "shop_ref", name="uq_shop_connections_platform_shop"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    base_id: Mapped[int] = mapped_column(ForeignKey("bases.id", ondelete="CASCADE"), index=True)
    merchant_id: Mapped[int | None] = mapped_column(
        ForeignKey("merchants.id", ondelete="CASCADE"), index=True
    )
    platform: Mapped[str] = mapped_column(String(32))
    shop_ref: Mapped[str] = mapped_column(String(128))
    name: Mapped[str] = mapped_column(String(100), default="")
    api_base_url: Mapped[str] = mapped_column(String(500))
    credentials_encrypted: Mapped[str] = mapped_column(Text)
    # Which credential fields hold a value ("key,secret"), so answers can say so unencrypted.
    credential_fields: Mapped[str] = mapped_column(String(200), default="")
    options: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    enabled: Mapped[bool] = mapped_column(default=True)
    pull_cursor: Mapped[str | None] = mapped_column(Text)
    pulled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ShopListing(Model):
    """Which of our products (and SKU) a platform product (and SKU) of a connected shop is.

    ``external_sku_id`` is empty for a mapping of the whole product: its lines then find our SKU
    by the SKU code, or take the product's only SKU.
    """

    __tablename__ = "shop_listings"
    __table_args__ = (
        UniqueConstraint(
            "connection_id",
            "external_product_id",
            "external_sku_id",
            name="uq_shop_listings_connection_external",
        ),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    connection_id: Mapped[int] = mapped_column(
        ForeignKey("shop_connections.id", ondelete="CASCADE")
    )
    external_product_id: Mapped[str] = mapped_column(String(128))
    external_sku_id: Mapped[str] = mapped_column(String(128), default="")
    product_id: Mapped[int] = mapped_column(
        ForeignKey("products.id", ondelete="CASCADE"), index=True
    )
    sku_id: Mapped[int | None] = mapped_column(ForeignKey("product_skus.id", ondelete="CASCADE"))


class WebhookReceipt(Model):
    """A webhook delivery already taken in; written in the transaction of its orders."""

    __tablename__ = "webhook_receipts"
    connection_id: Mapped[int] = mapped_column(
        ForeignKey("shop_connections.id", ondelete="CASCADE"), primary_key=True
    )
    delivery_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)


class ApiToken(Model):
    """An API token; only its SHA-256 digest is stored, the token is shown once."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(100), default="")
    role: Mapped[Role] = mapped_column(_enum(Role, "role"))
    base_id: Mapped[int | None] = mapped_column(ForeignKey("bases.id", ondelete="CASCADE"))
    merchant_id: Mapped[int | None] = mapped_column(ForeignKey("merchants.id", ondelete="CASCADE"))
    host_id: Mapped[int | None] = mapped_column(ForeignKey("hosts.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
