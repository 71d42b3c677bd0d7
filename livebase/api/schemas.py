"""Request and response models: they validate requests and generate the OpenAPI document."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar
from urllib.parse import urlsplit

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)
from pydantic import (
    Strict as StrictMode,
)

from livebase.db.models import (
    DestinationProtocol,
    OrderStatus,
    ProductStatus,
    Role,
    SessionStatus,
)
from livebase.gi import GiSystem
from livebase.listings.models import (
    Count,
    CreditCode,
    Currency,
    Fen,
    GiClaimIn,
    ImageUrl,
    ListingFields,
    LongText,
    Name,
    SkuCode,
    SkuCreate,
    SkuIn,
    Slug,
    Text200,
)

# Request bodies are JSON: numbers must be numbers (``true`` is not 1), and times must say
# their time zone. Query parameters arrive as text, so their ids (``QueryId``) are parsed.
# The listing types (Slug, Name, Fen …) are defined with the listings, which share them.
Name100 = Annotated[str, StringConstraints(min_length=1, max_length=100, strip_whitespace=True)]
ShortText = Annotated[str, StringConstraints(max_length=200)]
Text100 = Annotated[str, StringConstraints(max_length=100)]
Id = Annotated[int, StrictMode(), Field(ge=1, le=2**31 - 1)]
QueryId = Annotated[int, Field(ge=1, le=2**31 - 1)]
Instant = AwareDatetime


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


class RtmpKit(BaseModel):
    server: str = Field(description="OBS: Settings → Stream → Server")
    stream_key: str = Field(description="the key, or a placeholder when it is not shown")
    url: str


class SrtKit(BaseModel):
    url: str
    stream_id: str
    note: str


class WhipKit(BaseModel):
    url: str
    bearer_token: str


class GoLiveKit(BaseModel):
    """What a host pastes into OBS for a room (see livebase/golive.py)."""

    room: str
    key_set: bool
    stream_key_hint: str | None
    rtmp: RtmpKit
    srt: SrtKit
    whip: WhipKit
    encoder: dict[str, Any] = Field(description="recommended encoder settings")
    obs_service_json: dict[str, Any] = Field(description="an OBS profile's service.json (RTMP)")
    obs_whip_service_json: dict[str, Any] = Field(description="the same for WHIP (OBS 30+)")


class StreamKeyOut(GoLiveKit):
    stream_key: str = Field(description="shown once; only a digest is stored")


class HostCreate(Strict):
    display_name: Name100
    handle: Text100 | None = None
    room_id: Id | None = None


class HostUpdate(Strict):
    display_name: Name100 | None = None
    handle: Text100 | None = None
    room_id: Id | None = None


class HostOut(Out):
    id: int
    base_id: int
    room_id: int | None
    display_name: str
    handle: str | None


class HostQuery(ListQuery):
    room_id: QueryId | None = None


class MerchantCreate(Strict):
    name: Name
    credit_code: CreditCode = None


class MerchantUpdate(Strict):
    name: Name | None = None
    credit_code: CreditCode = None


class MerchantOut(Out):
    id: int
    base_id: int
    name: str
    credit_code: str | None


# --- products ---------------------------------------------------------------------------------


class ProductCreate(ListingFields):
    merchant_id: Id | None = Field(default=None, description="required unless a merchant calls")
    price_fen: Fen = Field(
        description="amount in fen: the price of the one default SKU, or of each listed SKU "
        "that gives none"
    )
    stock: Count = Field(default=0, description="stock of the default SKU (when no skus given)")
    skus: list[SkuCreate] | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="the SKUs; without them the product gets one SKU, 'default'",
    )


class ProductUpdate(Strict):
    """Fields left out keep their value; lists (skus, themes, images) and gi are replaced."""

    title_zh: Name | None = None
    title_en: Name | None = None
    description_zh: LongText | None = None
    description_en: LongText | None = None
    price_fen: Fen | None = Field(default=None, description="only for a product with one SKU")
    currency: Currency | None = None
    stock: Count | None = Field(default=None, description="only for a product with one SKU")
    status: ProductStatus | None = None
    category: Slug | None = None
    themes: list[Slug] | None = Field(default=None, max_length=20)
    images: list[ImageUrl] | None = Field(default=None, max_length=20)
    skus: list[SkuIn] | None = Field(default=None, min_length=1, max_length=200)
    gi: GiClaimIn | None = Field(default=None, description="the whole claim; null removes it")


class SkuOut(Out):
    sku: str
    spec_zh: str
    spec_en: str | None
    price_fen: int
    stock: int
    currency: str


class ImageOut(Out):
    id: int
    url: str
    uploaded: bool = Field(description="an uploaded file served by Livebase")
    content_type: str | None
    width: int | None
    height: int | None


class GiClaimOut(Out):
    system: GiSystem
    system_zh: str
    registered_name: str | None
    registration_number: str | None
    holder: str | None
    protected_area: str | None
    standard_code: str | None
    credit_code: str | None
    authorisation_ref: str | None


class FieldErrorOut(BaseModel):
    field: str
    message: str


class ProductOut(Out):
    id: int
    base_id: int
    merchant_id: int
    title_zh: str
    title_en: str | None
    description_zh: str | None
    description_en: str | None
    price_fen: int = Field(description="the lowest SKU price")
    currency: str
    stock: int = Field(description="the stock of all SKUs together")
    status: ProductStatus
    category: str | None
    themes: list[str]
    skus: list[SkuOut]
    images: list[ImageOut]
    gi: GiClaimOut | None
    gi_complete: bool | None = Field(
        description="whether the GI claim has everything to go live; null without a claim"
    )
    gi_missing: list[FieldErrorOut] = Field(description="what the GI claim still lacks")


class ProductQuery(ListQuery):
    merchant_id: QueryId | None = None
    status: ProductStatus | None = None
    category: Slug | None = None


class SkusIn(Strict):
    skus: list[SkuIn] = Field(min_length=1, max_length=200)


class SkuPatch(Strict):
    """Change one SKU, named by its code."""

    sku: SkuCode
    spec_zh: Annotated[str, StringConstraints(max_length=200, strip_whitespace=True)] | None = None
    spec_en: Text200 = None
    price_fen: Fen | None = None
    stock: Count | None = None


class SkuList(BaseModel):
    product_id: int
    skus: list[SkuOut]


class ExportQuery(Strict):
    format: Literal["csv", "xlsx"] = "csv"
    merchant_id: QueryId | None = None
    status: ProductStatus | None = None
    category: Slug | None = None


class ImportQuery(Strict):
    format: Literal["csv", "xlsx"] | None = Field(
        default=None, description="csv or xlsx; detected from the file when left out"
    )
    mode: Literal["all_or_nothing", "good_rows"] = Field(
        default="all_or_nothing",
        description="all_or_nothing: any bad row stores nothing (422); good_rows: store the "
        "products whose rows are all good and report the others",
    )


class ImportProblem(BaseModel):
    line: int
    column: str
    message: str


class ImportReport(BaseModel):
    format: str
    encoding: str = Field(description="utf-8, utf-8-sig (with BOM), gbk or xlsx")
    mode: str
    rows: int
    created: list[int]
    updated: list[int]
    skipped_lines: list[int]
    problems: list[ImportProblem]


# --- sessions, lineup, destinations, pins -----------------------------------------------------


class SessionCreate(Strict):
    room_id: Id
    host_id: Id | None = None
    theme_id: Id | None = None
    title: Name
    scheduled_start: Instant | None = None


class SessionUpdate(Strict):
    host_id: Id | None = None
    theme_id: Id | None = None
    title: Name | None = None
    scheduled_start: Instant | None = None
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
    room_id: QueryId | None = None
    host_id: QueryId | None = None
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
    name: Name100
    platform: Annotated[str, StringConstraints(pattern=r"^[a-z0-9_-]{1,32}$")] = "custom"
    url: Annotated[str, StringConstraints(min_length=8, max_length=1000)]
    stream_key: Annotated[str, StringConstraints(max_length=500)] = ""
    enabled: bool = True

    @field_validator("url")
    @classmethod
    def _push_url(cls, value: str) -> str:
        return check_push_url(value)


class DestinationUpdate(Strict):
    name: Name100 | None = None
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
    return parts.scheme + value[len(parts.scheme) :]  # the scheme in lower case


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
    room_id: QueryId | None = None
    session_id: QueryId | None = None


class PinCreate(Strict):
    product_id: Id
    stream_offset_ms: Annotated[int, StrictMode(), Field(ge=0, le=2**53)] | None = None


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
    quantity: Annotated[int, StrictMode(), Field(ge=1, le=100_000)] = 1
    amount_fen: Fen
    currency: Currency = "CNY"
    placed_at: Instant


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
    session_id: QueryId | None = None
    product_id: QueryId | None = None
    status: OrderStatus | None = None
    placed_from: Instant | None = None
    placed_to: Instant | None = None


# --- tokens -----------------------------------------------------------------------------------


class TokenCreate(Strict):
    role: Role
    base: Slug | None = None
    merchant_id: Id | None = None
    host_id: Id | None = None
    name: ShortText = ""
    expires_at: Instant | None = None


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
