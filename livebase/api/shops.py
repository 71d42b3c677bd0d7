"""Connected shops: their credentials (write-only), listing mappings, and order pulls.

| endpoint                          | admin | base_manager | merchant              | host |
|-----------------------------------|-------|--------------|-----------------------|------|
| ``…/shops`` CRUD                  | all   | own base     | own shops (its own)   | —    |
| ``…/shops/{id}/listings`` GET/PUT | all   | own base     | own shops             | —    |
| ``…/shops/{id}/pull`` POST        | all   | own base     | own shops             | —    |

Credentials go in and never come out: answers say which fields are set, not their values.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import Field, SecretStr, StringConstraints, field_validator
from sqlalchemy import delete, select

from livebase.api.crud import PREFIX, CrudSpec, Scope, flush_or_conflict, resolve_base
from livebase.api.orders import SHOPS, PlatformUnavailable, ingest
from livebase.api.routing import Context, Endpoint
from livebase.api.schemas import Id, ListQuery, Out, Strict
from livebase.auth import Principal
from livebase.db.models import (
    Base,
    Merchant,
    Product,
    ProductSku,
    Role,
    ShopConnection,
    ShopListing,
)
from livebase.errors import FieldError, ValidationFailed
from livebase.orders import Shop
from storefront_adapters import ADAPTERS, StorefrontError, collect_orders

ExternalId = Annotated[str, StringConstraints(min_length=1, max_length=128, strip_whitespace=True)]
Secret = Annotated[SecretStr, Field(min_length=1, max_length=2000)]
ShortValue = Annotated[str, StringConstraints(max_length=200)]
SHOP_ROLES: dict[Role, Scope] = {
    Role.ADMIN: None,
    Role.BASE_MANAGER: None,
    Role.MERCHANT: lambda p: ShopConnection.merchant_id == p.merchant_id,
}


class CredentialsIn(Strict):
    """As ``storefront_adapters.Credentials`` names them, per platform."""

    key: Secret | None = None
    secret: Secret
    access_token: Secret | None = None
    webhook_secret: Secret | None = None
    account_id: Annotated[str, StringConstraints(max_length=128)] = ""

    def fields(self) -> dict[str, str]:
        out = {"secret": self.secret.get_secret_value(), "account_id": self.account_id}
        for name in ("key", "access_token", "webhook_secret"):
            value: SecretStr | None = getattr(self, name)
            if value is not None:
                out[name] = value.get_secret_value()
        return out


def _http_url(value: str) -> str:
    if not value.startswith(("https://", "http://")):
        raise ValueError("must be an http(s) URL")
    return value.rstrip("/")


class ShopCreate(Strict):
    platform: str
    shop_ref: ExternalId = Field(description="the platform's id or domain of the shop")
    name: Annotated[str, StringConstraints(max_length=100)] = ""
    api_base_url: Annotated[str, StringConstraints(max_length=500)]
    credentials: CredentialsIn
    options: dict[Annotated[str, StringConstraints(max_length=64)], ShortValue] = Field(
        default_factory=dict
    )
    merchant_id: Id | None = None
    enabled: bool = True

    @field_validator("platform")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in ADAPTERS:
            raise ValueError(f"unknown platform (known: {', '.join(sorted(ADAPTERS))})")
        return value

    _url = field_validator("api_base_url")(_http_url)


class ShopUpdate(Strict):
    name: Annotated[str, StringConstraints(max_length=100)] | None = None
    api_base_url: Annotated[str, StringConstraints(max_length=500)] | None = None
    credentials: CredentialsIn | None = None
    options: dict[Annotated[str, StringConstraints(max_length=64)], ShortValue] | None = None
    enabled: bool | None = None

    @field_validator("credentials", "options", "enabled")
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("may not be null; leave it out to keep it")
        return value

    @field_validator("api_base_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else _http_url(value)


class ShopOut(Out):
    id: int
    base_id: int
    merchant_id: int | None
    platform: str
    shop_ref: str
    name: str
    api_base_url: str
    options: dict[str, str]
    enabled: bool
    credentials_set: list[str] = Field(description="which credential fields hold a value")
    webhook_path: str = Field(description="where the platform sends its webhooks")
    pulled_at: datetime | None = None


class ShopQuery(ListQuery):
    platform: Annotated[str, StringConstraints(max_length=32)] | None = None
    merchant_id: Annotated[int, Field(ge=1, le=2**31 - 1)] | None = None


class ListingIn(Strict):
    external_product_id: ExternalId
    external_sku_id: Annotated[str, StringConstraints(max_length=128)] = ""
    product_id: Id
    sku: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = Field(
        default=None, description="our SKU code; omitted: found by the line's SKU code"
    )


class ListingsIn(Strict):
    listings: list[ListingIn] = Field(max_length=5000)


class ListingOut(Out):
    external_product_id: str
    external_sku_id: str
    product_id: int
    sku: str | None


class ListingsOut(Out):
    shop_id: int
    listings: list[ListingOut]


class PullOut(Out):
    orders: int
    created: int
    updated: int
    unchanged: int
    stock_accepted: int
    stock_refused: int


def _shop_out(row: ShopConnection) -> ShopOut:
    return ShopOut(
        id=row.id,
        base_id=row.base_id,
        merchant_id=row.merchant_id,
        platform=row.platform,
        shop_ref=row.shop_ref,
        name=row.name,
        api_base_url=row.api_base_url,
        options=dict(row.options or {}),
        enabled=row.enabled,
        credentials_set=[f for f in row.credential_fields.split(",") if f],
        webhook_path=f"/webhooks/{row.platform}/{row.id}",
        pulled_at=row.pulled_at,
    )


def _seal(ctx: Context, values: dict[str, Any], credentials: CredentialsIn) -> None:
    fields = credentials.fields()
    values.pop("credentials", None)
    values["credentials_encrypted"] = ctx.request.app[SHOPS].vault.seal(fields)
    values["credential_fields"] = ",".join(sorted(k for k, v in fields.items() if v))


async def _shop_create(ctx: Context, base: Base, row: Any, values: dict[str, Any]) -> None:
    _seal(ctx, values, ctx.body.credentials)


async def _shop_update(ctx: Context, base: Base, row: Any, changes: dict[str, Any]) -> None:
    if "credentials" in changes:
        _seal(ctx, changes, ctx.body.credentials)


def _shop_changed(ctx: Context, base: Base, row: Any, action: str) -> None:
    ctx.request.app[SHOPS].forget(row.id)


def _merchant_own(p: Principal) -> dict[str, Any]:
    return {"merchant_id": p.merchant_id}


SHOP_CONNECTIONS = CrudSpec(
    name="shops",
    singular="shop connection",
    model=ShopConnection,
    out=ShopOut,
    create=ShopCreate,
    update=ShopUpdate,
    query=ShopQuery,
    read=SHOP_ROLES,
    write=SHOP_ROLES,
    create_as={
        Role.ADMIN: lambda p: {},
        Role.BASE_MANAGER: lambda p: {},
        Role.MERCHANT: _merchant_own,
    },
    refs={"merchant_id": Merchant},
    serialize=_shop_out,
    before_create=_shop_create,
    before_update=_shop_update,
    after_change=_shop_changed,
)


async def _shop(ctx: Context, write: bool) -> tuple[Base, ShopConnection]:
    base = await resolve_base(ctx)
    rules = SHOP_CONNECTIONS.write if write else SHOP_CONNECTIONS.read
    conn: ShopConnection = await SHOP_CONNECTIONS.fetch(ctx, base, ctx.path("key"), rules)
    return base, conn


async def _listings_out(ctx: Context, conn: ShopConnection) -> ListingsOut:
    rows = await ctx.db.execute(
        select(ShopListing, ProductSku.sku)
        .outerjoin(ProductSku, ProductSku.id == ShopListing.sku_id)
        .where(ShopListing.connection_id == conn.id)
        .order_by(ShopListing.id)
    )
    return ListingsOut(
        shop_id=conn.id,
        listings=[
            ListingOut(
                external_product_id=m.external_product_id,
                external_sku_id=m.external_sku_id,
                product_id=m.product_id,
                sku=sku,
            )
            for m, sku in rows
        ],
    )


async def get_listings(ctx: Context) -> ListingsOut:
    _, conn = await _shop(ctx, write=False)
    return await _listings_out(ctx, conn)


async def put_listings(ctx: Context) -> ListingsOut:
    base, conn = await _shop(ctx, write=True)
    wanted: list[ListingIn] = ctx.body.listings
    product_ids = {m.product_id for m in wanted}
    stmt = select(Product.id).where(Product.id.in_(product_ids), Product.base_id == base.id)
    if conn.merchant_id is not None:  # a merchant's shop sells that merchant's products only
        stmt = stmt.where(Product.merchant_id == conn.merchant_id)
    found = set(await ctx.db.scalars(stmt))
    skus = {
        (pid, code): sid
        for sid, pid, code in await ctx.db.execute(
            select(ProductSku.id, ProductSku.product_id, ProductSku.sku).where(
                ProductSku.product_id.in_(found)
            )
        )
    }
    errors, seen, rows = [], set(), []
    for index, m in enumerate(wanted):
        pair = (m.external_product_id, m.external_sku_id)
        if pair in seen:
            errors.append(FieldError(f"listings.{index}", "this platform product/SKU twice"))
        seen.add(pair)
        if m.product_id not in found:
            errors.append(
                FieldError(f"listings.{index}.product_id", f"no product #{m.product_id} here")
            )
            continue
        sku_id = None
        if m.sku is not None:
            sku_id = skus.get((m.product_id, m.sku))
            if sku_id is None:
                errors.append(
                    FieldError(
                        f"listings.{index}.sku", f"product #{m.product_id} has no SKU {m.sku!r}"
                    )
                )
        rows.append(ShopListing(connection_id=conn.id, product_id=m.product_id, sku_id=sku_id,
                                external_product_id=m.external_product_id,
                                external_sku_id=m.external_sku_id))  # fmt: skip
    if errors:
        raise ValidationFailed("the listing mappings are not valid", fields=errors)
    await ctx.db.execute(delete(ShopListing).where(ShopListing.connection_id == conn.id))
    ctx.db.add_all(rows)
    await flush_or_conflict(ctx, "listing mapping")
    return await _listings_out(ctx, conn)


async def pull(ctx: Context) -> PullOut:
    base, conn = await _shop(ctx, write=True)
    adapter = ctx.request.app[SHOPS].adapter(conn)
    try:
        orders, cursor = await collect_orders(adapter, conn.pull_cursor)
    except StorefrontError as exc:
        raise PlatformUnavailable(f"could not pull orders from {conn.platform}: {exc}") from exc
    shop = Shop(conn.id, base.id, base.slug)
    # Its own transaction, so analytics hears of the orders only once they are committed.
    result = await ingest(ctx.request.app, shop, orders, pulled=True, pull_cursor=cursor)
    assert result is not None
    return PullOut(
        orders=len(orders),
        created=result.created,
        updated=result.updated,
        unchanged=result.unchanged,
        stock_accepted=result.accepted,
        stock_refused=result.refused,
    )


SHOP = PREFIX + "/shops/{key}"
OWNERS = frozenset(SHOP_ROLES)
ENDPOINTS = [
    *SHOP_CONNECTIONS.endpoints(),
    Endpoint("GET", SHOP + "/listings", get_listings, "A shop's product mappings", "shops",
             response=ListingsOut, roles=OWNERS),
    Endpoint("PUT", SHOP + "/listings", put_listings,
             "Replace a shop's mappings of platform products and SKUs to ours", "shops",
             response=ListingsOut, body=ListingsIn, roles=OWNERS),
    Endpoint("POST", SHOP + "/pull", pull, "Pull the shop's orders changed since the last pull",
             "shops", response=PullOut, roles=OWNERS, errors=(401, 403, 404, 409, 422, 502)),
]  # fmt: skip
