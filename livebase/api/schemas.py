"""Request and response models: they validate requests and generate the OpenAPI document."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Generic, TypeVar
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from livebase.db.models import (
    DestinationProtocol,
    OrderStatus,
    ProductStatus,
    Role,
    SessionStatus,
)
from livebase.settings import SLUG_RE

Slug = Annotated[str, StringConstraints(pattern=SLUG_RE)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]
ShortText = Annotated[str, StringConstraints(max_length=200)]
LongText = Annotated[str, StringConstraints(max_length=20_000)]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
Fen = Annotated[int, Field(ge=0, le=10**13, description="amount in fen (1/100 of a yuan)")]
Id = Annotated[int, Field(ge=1, le=2**53)]


class Strict(BaseModel):
    """Unknown fields are refused: a typo must not be silently ignored."""

    model_config = ConfigDict(extra="forbid")


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(
        description="pass as ?cursor= to get the next page; null on the last page"
    )


class ListQuery(Strict):
    limit: int | None = Field(default=None, ge=1, le=1000)
    cursor: str | None = Field(default=None, max_length=200)


# --- bases and themes -------------------------------------------------------------------------


class BaseCreate(Strict):
    slug: Slug
    name_zh: Name
    name_en: Name
    timezone: str = "Asia/Shanghai"

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value


class BaseUpdate(Strict):
    name_zh: Name | None = None
    name_en: Name | None = None


class BaseOut(Out):
    id: int
    slug: str
    name_zh: str
    name_en: str
    timezone: str


class ThemeCreate(Strict):
    slug: Slug
    name_zh: Name
    name_en: Name


class ThemeUpdate(Strict):
    name_zh: Name | None = None
    name_en: Name | None = None


class ThemeOut(Out):
    id: int
    slug: str
    name_zh: str
    name_en: str


# --- rooms, hosts, merchants ------------------------------------------------------------------


class RoomCreate(Strict):
    slug: Slug
    name_zh: Name
    name_en: Name


class RoomUpdate(Strict):
    name_zh: Name | None = None
    name_en: Name | None = None


class RoomOut(Out):
    id: int
    slug: str
    name_zh: str
    name_en: str
    stream_key_hint: str | None = Field(description="last characters of the stream key, if set")
    stream_key_rotated_at: datetime | None


class RoomQuery(ListQuery):
    pass


class StreamKeyOut(BaseModel):
    room: str
    stream_key: str = Field(description="shown once; only a digest is stored")
    rtmp_server: str
    whip_url: str


class IngestOut(BaseModel):
    room: str
    rtmp_server: str
    stream_key_hint: str | None
    rtmp_url_hint: str | None
    whip_url: str
    key_set: bool


class HostCreate(Strict):
    display_name: Name
    handle: ShortText | None = None
    room_id: Id | None = None


class HostUpdate(Strict):
    display_name: Name | None = None
    handle: ShortText | None = None
    room_id: Id | None = None


class HostOut(Out):
    id: int
    base_id: int
    room_id: int | None
    display_name: str
    handle: str | None


class HostQuery(ListQuery):
    room_id: Id | None = None


class MerchantCreate(Strict):
    name: Name
    credit_code: Annotated[str, StringConstraints(pattern=r"^[0-9A-HJ-NPQRTUWXY]{18}$")] | None = (
        None
    )


class MerchantUpdate(Strict):
    name: Name | None = None
    credit_code: Annotated[str, StringConstraints(pattern=r"^[0-9A-HJ-NPQRTUWXY]{18}$")] | None = (
        None
    )


class MerchantOut(Out):
    id: int
    base_id: int
    name: str
    credit_code: str | None


# --- products ---------------------------------------------------------------------------------


class ProductCreate(Strict):
    merchant_id: Id | None = Field(default=None, description="required unless a merchant calls")
    title_zh: Name
    title_en: Name | None = None
    description_zh: LongText | None = None
    description_en: LongText | None = None
    price_fen: Fen
    currency: Currency = "CNY"
    stock: int = Field(default=0, ge=0, le=10**9)
    status: ProductStatus = ProductStatus.DRAFT


class ProductUpdate(Strict):
    title_zh: Name | None = None
    title_en: Name | None = None
    description_zh: LongText | None = None
    description_en: LongText | None = None
    price_fen: Fen | None = None
    currency: Currency | None = None
    stock: int | None = Field(default=None, ge=0, le=10**9)
    status: ProductStatus | None = None


class ProductOut(Out):
    id: int
    base_id: int
    merchant_id: int
    title_zh: str
    title_en: str | None
    description_zh: str | None
    description_en: str | None
    price_fen: int
    currency: str
    stock: int
    status: ProductStatus


class ProductQuery(ListQuery):
    merchant_id: Id | None = None
    status: ProductStatus | None = None


# --- sessions, lineup, destinations, pins -----------------------------------------------------


class SessionCreate(Strict):
    room_id: Id
    host_id: Id | None = None
    theme_id: Id | None = None
    title: Name
    scheduled_start: datetime | None = None


class SessionUpdate(Strict):
    host_id: Id | None = None
    theme_id: Id | None = None
    title: Name | None = None
    scheduled_start: datetime | None = None
    status: SessionStatus | None = Field(
        default=None, description="planned → live → ended; no other transition is allowed"
    )


class SessionOut(Out):
    id: int
    base_id: int
    room_id: int
    host_id: int | None
    theme_id: int | None
    title: str
    status: SessionStatus
    scheduled_start: datetime | None
    started_at: datetime | None
    ended_at: datetime | None


class SessionQuery(ListQuery):
    room_id: Id | None = None
    host_id: Id | None = None
    status: SessionStatus | None = None


class LineupIn(Strict):
    product_ids: list[Id] = Field(max_length=500)


class LineupOut(BaseModel):
    session_id: int
    product_ids: list[int]


FORBIDDEN_URL_CHARS = frozenset(" \t\r\n\0|")


class DestinationCreate(Strict):
    room_id: Id | None = None
    session_id: Id | None = None
    name: Name
    platform: Annotated[str, StringConstraints(pattern=r"^[a-z0-9_-]{1,32}$")] = "custom"
    url: Annotated[str, StringConstraints(min_length=8, max_length=1000)]
    stream_key: Annotated[str, StringConstraints(max_length=500)] = ""
    enabled: bool = True

    @field_validator("url")
    @classmethod
    def _push_url(cls, value: str) -> str:
        return check_push_url(value)


class DestinationUpdate(Strict):
    name: Name | None = None
    url: Annotated[str, StringConstraints(min_length=8, max_length=1000)] | None = None
    stream_key: Annotated[str, StringConstraints(max_length=500)] | None = None
    enabled: bool | None = None

    @field_validator("url")
    @classmethod
    def _push_url(cls, value: str | None) -> str | None:
        return None if value is None else check_push_url(value)


def check_push_url(value: str) -> str:
    """Only rtmp, rtmps and srt URLs with a host; nothing ffmpeg could read as another protocol
    or an option."""
    if value.startswith("-") or any(ch in FORBIDDEN_URL_CHARS for ch in value):
        raise ValueError("the URL contains characters that are not allowed")
    parts = urlsplit(value)
    if parts.scheme not in {p.value for p in DestinationProtocol}:
        raise ValueError("only rtmp://, rtmps:// and srt:// push URLs are accepted")
    if not parts.hostname:
        raise ValueError("the URL has no host")
    return value


class DestinationOut(Out):
    id: int
    room_id: int | None
    session_id: int | None
    name: str
    platform: str
    protocol: DestinationProtocol
    url: str
    stream_key_hint: str
    enabled: bool
    state: str = Field(description="relay state: idle, connecting, live, retrying, failed, stopped")
    last_error: str
    state_changed_at: datetime | None


class DestinationQuery(ListQuery):
    room_id: Id | None = None
    session_id: Id | None = None


class PinCreate(Strict):
    product_id: Id
    stream_offset_ms: int | None = Field(default=None, ge=0)


class PinOut(Out):
    id: int
    session_id: int
    product_id: int
    pinned_at: datetime
    unpinned_at: datetime | None
    stream_offset_ms: int | None


# --- orders -----------------------------------------------------------------------------------


class OrderCreate(Strict):
    platform: Annotated[str, StringConstraints(pattern=r"^[a-z0-9_-]{1,32}$")]
    platform_order_id: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    product_id: Id | None = None
    session_id: Id | None = None
    quantity: int = Field(default=1, ge=1, le=100_000)
    amount_fen: Fen
    currency: Currency = "CNY"
    placed_at: datetime


class OrderUpdate(Strict):
    status: OrderStatus


class OrderOut(Out):
    id: int
    base_id: int
    merchant_id: int | None
    product_id: int | None
    session_id: int | None
    host_id: int | None
    platform: str
    platform_order_id: str
    quantity: int
    amount_fen: int
    currency: str
    status: OrderStatus
    placed_at: datetime


class OrderQuery(ListQuery):
    session_id: Id | None = None
    product_id: Id | None = None
    status: OrderStatus | None = None
    placed_from: datetime | None = None
    placed_to: datetime | None = None


# --- tokens -----------------------------------------------------------------------------------


class TokenCreate(Strict):
    role: Role
    base: Slug | None = None
    merchant_id: Id | None = None
    host_id: Id | None = None
    name: ShortText = ""
    expires_at: datetime | None = None


class TokenOut(Out):
    id: int
    prefix: str
    name: str
    role: Role
    base_id: int | None
    merchant_id: int | None
    host_id: int | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


class TokenIssued(TokenOut):
    token: str = Field(description="shown once; only a digest is stored")


class Health(BaseModel):
    status: str
    database: str
    bus: str
    version: str
