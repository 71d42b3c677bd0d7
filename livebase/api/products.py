"""Product listings over HTTP: CRUD with SKUs, themes, images and GI claims; image uploads;
CSV and XLSX import and export.

Products use the generic base-scoped CRUD (``crud.CrudSpec``) for listing, reading and
deleting; creating and updating go through ``livebase.listings.store``, which checks a change
as a whole before applying it. Files (images, sheets) are sent as the raw body or as
multipart/form-data, and are read here with their own size limits.
"""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from typing import Any

from aiohttp import BodyPartReader, web
from sqlalchemy import ColumnElement

from livebase.api import schemas as s
from livebase.api.crud import PREFIX, CrudSpec, flush_or_conflict, resolve_base
from livebase.api.routing import Context, Endpoint, FileBody
from livebase.api.state import SETTINGS
from livebase.db.models import GiClaimRecord, Product, Role
from livebase.errors import (
    BadRequest,
    Conflict,
    FieldError,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    UnsupportedMedia,
    ValidationFailed,
)
from livebase.listings import bulk, images, importer, store, tables
from livebase.listings.models import MAX_IMAGES, SkuCreate, SkuIn, duplicates

IMAGE_FILE = FileBody(
    media_types=("image/png", "image/jpeg", "image/webp", "image/gif", "application/octet-stream"),
    max_bytes=images.MAX_BYTES,
    description="A PNG, JPEG, WebP or GIF image; the format is read from its bytes.",
)
SHEET_FILE = FileBody(
    media_types=("text/csv", "text/plain", tables.XLSX_MEDIA_TYPE, "application/octet-stream",
                 "application/vnd.ms-excel"),
    max_bytes=4 * 1024 * 1024,
    description="A CSV (UTF-8 or GBK; a charset parameter on a text/* Content-Type is "
                "honoured) or XLSX sheet.",
)  # fmt: skip
NULLABLE = frozenset({"title_en", "description_zh", "description_en", "category", "gi"})
WRITE_ERRORS = (400, 401, 403, 404, 409, 413, 415, 422)


def product_out(product: Product) -> s.ProductOut:
    claim = store.claim_of(product)
    missing = store.gi_problems(claim)
    record = product.gi
    return s.ProductOut(
        id=product.id,
        base_id=product.base_id,
        merchant_id=product.merchant_id,
        title_zh=product.title_zh,
        title_en=product.title_en,
        description_zh=product.description_zh,
        description_en=product.description_en,
        price_fen=product.price_fen,
        currency=product.currency,
        stock=product.stock,
        status=product.status,
        category=product.category,
        themes=sorted(t.slug for t in product.themes),
        skus=[s.SkuOut.model_validate(sku) for sku in product.skus],
        images=[
            s.ImageOut(
                id=i.id,
                url=i.url,
                uploaded=i.sha256 is not None,
                content_type=i.content_type,
                width=i.width,
                height=i.height,
            )
            for i in product.images
        ],
        gi=None if record is None else _gi_out(record),
        gi_complete=None if claim is None else not missing,
        gi_missing=[s.FieldErrorOut(field=e.field, message=e.message) for e in missing],
    )


def _gi_out(record: GiClaimRecord) -> s.GiClaimOut:
    return s.GiClaimOut(
        system=record.system,
        system_zh=record.system.name_zh,
        registered_name=record.registered_name,
        registration_number=record.registration_number,
        holder=record.holder,
        protected_area=record.protected_area,
        standard_code=record.standard_code,
        credit_code=record.credit_code,
        authorisation_ref=record.authorisation_ref,
    )


def _refused(errors: list[FieldError]) -> ValidationFailed:
    if any(e.field.startswith("gi.") for e in errors):
        message = "a GI claim must be complete before the product goes active"
        return ValidationFailed(message, fields=errors, code="gi_incomplete")
    return ValidationFailed("the body refers to records that do not exist", fields=errors)


def _priced(sku: SkuCreate, default_price: int) -> SkuIn:
    price = default_price if sku.price_fen is None else sku.price_fen
    return SkuIn.model_validate({**sku.model_dump(), "price_fen": price})


def _unique_skus(skus: list[SkuIn]) -> None:
    repeated = duplicates([sku.sku for sku in skus])
    if repeated:
        raise ValidationFailed(
            "SKU codes must be unique within a product",
            fields=[
                FieldError("skus", f"SKU {code!r} appears more than once") for code in repeated
            ],
        )


async def read_file(request: web.Request, spec: FileBody) -> bytes:
    """The uploaded file: the raw body, or the first file of a multipart form."""
    limit, accepted = spec.max_bytes, spec.media_types
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"the file is larger than the limit of {limit} bytes")
    ctype = request.content_type
    if ctype == "multipart/form-data":
        try:
            reader = await request.multipart()
            while (part := await reader.next()) is not None:
                if isinstance(part, BodyPartReader) and (part.filename or part.name == "file"):
                    return await _limited(part.read_chunk, limit)
        except ValueError as exc:  # aiohttp's complaint about a malformed form
            raise BadRequest(f"the multipart form is malformed: {exc}") from exc
        raise ValidationFailed(
            "the form has no file", fields=[FieldError("file", "send the file as a file field")]
        )
    if ctype not in accepted:
        raise UnsupportedMedia(
            f"send the file as the body ({', '.join(accepted)}) or as multipart/form-data, "
            f"not {ctype or 'nothing'}"
        )
    return await _limited(request.content.read, limit)


async def _limited(read: Any, limit: int) -> bytes:
    chunks, size = [], 0
    while chunk := await read(65536):
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the file is larger than the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


class ProductSpec(CrudSpec):
    """Products: the generic CRUD, with creates and updates that carry a whole listing."""

    async def _product(self, ctx: Context, write: bool) -> Product:
        base = await resolve_base(ctx)
        product: Product = await self.fetch(
            ctx, base, ctx.path("key"), self.write if write else self.read
        )
        return product

    async def create_row(self, ctx: Context) -> s.ProductOut:
        base = await resolve_base(ctx)
        role = ctx.principal.role
        if role not in self.create_as:
            raise Forbidden(f"the {role.value} role may not create {self.name}")
        body: s.ProductCreate = ctx.body
        merchant_id = self.create_as[role](ctx.principal).get("merchant_id", body.merchant_id)
        if merchant_id is None:
            raise ValidationFailed(
                "merchant_id is required", fields=[FieldError("merchant_id", "Field required")]
            )
        await self.check_refs(ctx, base, {"merchant_id": merchant_id})
        if body.skus is not None and "stock" in body.model_fields_set:
            raise ValidationFailed(
                "with skus, give the stock of each SKU",
                fields=[FieldError("stock", "give stock in each of skus instead")],
            )
        skus = [_priced(sku, body.price_fen) for sku in body.skus or []] or [
            SkuIn(sku="default", price_fen=body.price_fen, stock=body.stock)
        ]
        _unique_skus(skus)
        change = store.Change(
            values={name: getattr(body, name) for name in store.SCALARS},
            skus=skus,
            themes=body.themes,
            images=body.images,
            gi=body.gi,
        )
        checked = await store.check(ctx.db, ctx.settings.data_dir, None, change)
        if checked.errors:
            raise _refused(checked.errors)
        product = store.new_product(base.id, merchant_id, checked)
        ctx.db.add(product)
        await flush_or_conflict(ctx, self.singular)
        return product_out(product)

    async def update_row(self, ctx: Context) -> s.ProductOut:
        product = await self._product(ctx, write=True)
        body: s.ProductUpdate = ctx.body
        given = body.model_fields_set
        nulls = [n for n in sorted(given) if getattr(body, n) is None and n not in NULLABLE]
        if nulls:
            raise ValidationFailed(
                "required fields cannot be cleared",
                fields=[FieldError(n, "may not be null") for n in nulls],
            )
        skus = body.skus
        if skus is not None:
            if given & {"price_fen", "stock"}:
                raise ValidationFailed(
                    "give skus, or price_fen and stock, not both",
                    fields=[FieldError(n, "not with skus") for n in ("price_fen", "stock")],
                )
            _unique_skus(skus)
        elif given & {"price_fen", "stock"}:
            if len(product.skus) != 1:
                raise Conflict(
                    f"this product has {len(product.skus)} SKUs; change the price and stock of "
                    "one with PATCH …/skus",
                    code="several_skus",
                )
            only = product.skus[0]
            skus = [
                SkuIn(
                    sku=only.sku,
                    spec_zh=only.spec_zh,
                    spec_en=only.spec_en,
                    price_fen=only.price_fen if body.price_fen is None else body.price_fen,
                    stock=only.stock if body.stock is None else body.stock,
                )
            ]
        change = store.Change(
            values={name: getattr(body, name) for name in store.SCALARS if name in given},
            skus=skus,
            themes=body.themes if "themes" in given else None,
            images=body.images if "images" in given else None,
            gi=body.gi if "gi" in given else store.KEEP,
        )
        checked = await store.check(ctx.db, ctx.settings.data_dir, product, change)
        if checked.errors:
            raise _refused(checked.errors)
        store.apply(product, checked)
        await flush_or_conflict(ctx, self.singular)
        return product_out(product)

    # --- SKUs ------------------------------------------------------------------------------

    async def list_skus(self, ctx: Context) -> s.SkuList:
        product = await self._product(ctx, write=False)
        return s.SkuList(
            product_id=product.id, skus=[s.SkuOut.model_validate(x) for x in product.skus]
        )

    async def put_skus(self, ctx: Context) -> s.SkuList:
        product = await self._product(ctx, write=True)
        body: s.SkusIn = ctx.body
        _unique_skus(body.skus)
        store.set_skus(product, body.skus)
        await flush_or_conflict(ctx, "SKU")
        return s.SkuList(
            product_id=product.id, skus=[s.SkuOut.model_validate(x) for x in product.skus]
        )

    async def patch_sku(self, ctx: Context) -> s.SkuList:
        product = await self._product(ctx, write=True)
        body: s.SkuPatch = ctx.body
        row = next((x for x in product.skus if x.sku == body.sku), None)
        if row is None:
            known = ", ".join(x.sku for x in product.skus)
            raise ValidationFailed(
                "the body names a SKU this product does not have",
                fields=[FieldError("sku", f"no SKU {body.sku!r} (this product has {known})")],
            )
        nulls = [
            n
            for n in ("spec_zh", "price_fen", "stock")
            if n in body.model_fields_set and getattr(body, n) is None
        ]
        if nulls:
            raise ValidationFailed(
                "required fields cannot be cleared",
                fields=[FieldError(n, "may not be null") for n in nulls],
            )
        for name in body.model_fields_set - {"sku"}:
            setattr(row, name, getattr(body, name))
        store.sync_totals(product)
        await flush_or_conflict(ctx, "SKU")
        return s.SkuList(
            product_id=product.id, skus=[s.SkuOut.model_validate(x) for x in product.skus]
        )

    # --- images ----------------------------------------------------------------------------

    async def upload_image(self, ctx: Context) -> s.ImageOut:
        product = await self._product(ctx, write=True)
        if len(product.images) >= MAX_IMAGES:
            raise Conflict(
                f"a product has at most {MAX_IMAGES} images; remove one first",
                code="too_many_images",
            )
        data = await read_file(ctx.request, IMAGE_FILE)
        directory = store.image_dir(ctx.settings.data_dir)
        try:
            info = await asyncio.to_thread(images.store, directory, data)
        except images.ImageRejected as exc:
            raise ValidationFailed(
                "the file is not an accepted image",
                fields=[FieldError("file", str(exc))],
                code="invalid_image",
            ) from exc
        row = store.add_image(product, info)
        await flush_or_conflict(ctx, "image")
        return s.ImageOut(
            id=row.id,
            url=row.url,
            uploaded=True,
            content_type=row.content_type,
            width=row.width,
            height=row.height,
        )

    # --- import and export -----------------------------------------------------------------

    def _bulk_scope(self, ctx: Context, base_id: int) -> bulk.Scope:
        if ctx.principal.role is Role.MERCHANT:
            return bulk.Scope(base_id, ctx.principal.merchant_id)
        return bulk.Scope(base_id)

    async def export(self, ctx: Context) -> web.Response:
        base = await resolve_base(ctx)
        query: s.ExportQuery = ctx.query
        filters: list[ColumnElement[bool]] = []
        for name in ("merchant_id", "status", "category"):
            value = getattr(query, name)
            if value is not None:
                filters.append(getattr(Product, name) == value)
        rows = await bulk.export_rows(ctx.db, self._bulk_scope(ctx, base.id), filters)
        writer = tables.write_xlsx if query.format == "xlsx" else tables.write_csv
        body = await asyncio.to_thread(writer, importer.COLUMNS, rows)
        stamp = datetime.now(UTC).strftime("%Y%m%d")
        media = tables.XLSX_MEDIA_TYPE if query.format == "xlsx" else "text/csv"
        return web.Response(
            body=body,
            content_type=media,
            charset="utf-8" if query.format == "csv" else None,
            headers={
                "Content-Disposition": (
                    f'attachment; filename="products-{base.slug}-{stamp}.{query.format}"'
                )
            },
        )

    async def import_(self, ctx: Context) -> s.ImportReport:
        base = await resolve_base(ctx)
        query: s.ImportQuery = ctx.query
        data = await read_file(ctx.request, SHEET_FILE)
        charset = ctx.request.charset if ctx.request.content_type.startswith("text/") else None
        try:
            sheet = await asyncio.to_thread(tables.read, data, query.format, charset)
            plan = await asyncio.to_thread(importer.plan, sheet)
        except tables.SheetError as exc:
            raise ValidationFailed(
                "the file cannot be read", fields=[FieldError("file", str(exc))], code="bad_file"
            ) from exc
        except importer.ImportRejected as exc:
            raise ValidationFailed(
                "the file's header is not valid; nothing was imported",
                fields=_row_fields(exc.problems),
                code="bad_file",
            ) from exc
        mode = bulk.Mode(query.mode)
        scope = self._bulk_scope(ctx, base.id)
        try:
            outcome = await bulk.run_import(ctx.db, ctx.settings.data_dir, scope, plan, mode)
        except bulk.ImportFailed as exc:
            lines = len({p.line for p in exc.problems})
            raise ValidationFailed(
                f"{len(exc.problems)} problems on {lines} lines; nothing was imported "
                "(with mode=good_rows the good products would be)",
                fields=_row_fields(exc.problems),
                code="bad_rows",
            ) from exc
        return s.ImportReport(
            format=tables.detect_format(data),
            encoding=sheet.encoding,
            mode=mode.value,
            rows=outcome.rows,
            created=outcome.created,
            updated=outcome.updated,
            skipped_lines=outcome.skipped_lines,
            problems=[
                s.ImportProblem(line=p.line, column=p.column, message=p.message)
                for p in outcome.problems
            ],
        )

    def endpoints(self) -> list[Endpoint]:
        coll = f"{PREFIX}/{self.name}"
        item = coll + "/{key}"
        readers, writers = frozenset(self.read), frozenset(self.write)
        tag = self.name
        # The fixed paths come before the CRUD ones, so "export" is not taken for a {key}.
        return [
            Endpoint("GET", coll + "/export", self.export,
                     "Export the listings as CSV (UTF-8 with BOM) or XLSX, one row per SKU", tag,
                     query=s.ExportQuery, roles=readers),
            Endpoint("POST", coll + "/import", self.import_,
                     "Import listings from CSV (UTF-8 or GBK) or XLSX, sent as the body or a "
                     "multipart file", tag, response=s.ImportReport, query=s.ImportQuery,
                     file=SHEET_FILE, roles=frozenset(self.create_as), errors=WRITE_ERRORS),
            *super().endpoints(),
            Endpoint("GET", item + "/skus", self.list_skus, "A product's SKUs", tag,
                     response=s.SkuList, roles=readers),
            Endpoint("PUT", item + "/skus", self.put_skus, "Replace a product's SKUs", tag,
                     response=s.SkuList, body=s.SkusIn, roles=writers, errors=WRITE_ERRORS),
            Endpoint("PATCH", item + "/skus", self.patch_sku,
                     "Change one SKU (price, stock, spec), named by its code", tag,
                     response=s.SkuList, body=s.SkuPatch, roles=writers, errors=WRITE_ERRORS),
            Endpoint("POST", item + "/images", self.upload_image,
                     "Upload an image (PNG, JPEG, WebP or GIF) as the body or a multipart file",
                     tag, response=s.ImageOut, file=IMAGE_FILE, status=201, roles=writers,
                     errors=WRITE_ERRORS),
        ]  # fmt: skip


def _row_fields(problems: list[importer.Problem]) -> list[FieldError]:
    return [FieldError(f"line {p.line}: {p.column}", p.message) for p in problems]


IMAGE_NAME = re.compile(r"^[0-9a-f]{64}\.(jpg|png|webp|gif)$")
IMAGE_MEDIA = {ext: media for ext, media in images.FORMATS.values()}


async def serve_image(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    match = IMAGE_NAME.match(name)
    path = store.image_dir(request.app[SETTINGS].data_dir) / name
    if match is None or not path.is_file():
        raise NotFound(f"no image {name!r}")
    # The name is the content's hash, so the file never changes.
    return web.FileResponse(
        path,
        headers={
            "Content-Type": IMAGE_MEDIA[match.group(1)],
            "Cache-Control": "public, max-age=31536000, immutable",
            "X-Content-Type-Options": "nosniff",
        },
    )


def add_routes(app: web.Application) -> None:
    """Uploaded product images, public like the listings they illustrate."""
    app.router.add_get(images.URL_PREFIX + "{name}", serve_image)
