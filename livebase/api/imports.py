"""Imports of platform data: the per-broadcast export of Douyin Compass / 巨量百应.

The file is the raw body (CSV or XLSX) or the first file of a multipart form, as for the
listings import. See ``docs/imports.md`` for the columns and how rows are matched.
"""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel

from analytics.platform.douyin_compass import Problem
from analytics.platform.importer import ImportFailed, import_douyin_compass
from livebase.api.crud import resolve_base
from livebase.api.products import SHEET_FILE, WRITE_ERRORS, read_file
from livebase.api.routing import Context, Endpoint
from livebase.db.models import Role
from livebase.errors import FieldError, ValidationFailed

MANAGERS = frozenset({Role.ADMIN, Role.BASE_MANAGER})


class ImportedBroadcast(BaseModel):
    line: int | None
    row_key: str
    account: str
    started_at: dt.datetime
    outcome: str  # created, updated or unchanged
    session_id: int | None
    host_id: int | None


class PlatformImportReport(BaseModel):
    platform: str
    format: str
    encoding: str
    rows: int
    created: int
    updated: int
    unchanged: int
    matched_sessions: int
    external: int
    broadcasts: list[ImportedBroadcast]


def _field(p: Problem) -> FieldError:
    where = "file" if p.line == 0 else f"line {p.line}: {p.column}"
    return FieldError(where, p.message)


async def douyin_compass(ctx: Context) -> PlatformImportReport:
    base = await resolve_base(ctx)
    data = await read_file(ctx.request, SHEET_FILE)
    charset = ctx.request.charset if ctx.request.content_type.startswith("text/") else None
    try:
        done = await import_douyin_compass(ctx.db, base, data, charset=charset)
    except ImportFailed as exc:
        raise ValidationFailed(
            str(exc),
            fields=[_field(p) for p in exc.problems],
            code="bad_file",
        ) from exc
    saved = done.saved
    return PlatformImportReport(
        platform="douyin", format=done.format, encoding=done.encoding, rows=len(saved.rows),
        created=saved.created, updated=saved.updated, unchanged=saved.unchanged,
        matched_sessions=saved.matched_sessions, external=saved.external,
        broadcasts=[ImportedBroadcast.model_validate(r) for r in saved.rows],
    )  # fmt: skip


ENDPOINTS = [
    Endpoint("POST", "/api/v1/bases/{base}/imports/douyin-compass", douyin_compass,
             "Import a Douyin Compass / 巨量百应 per-broadcast export (CSV in UTF-8 or GBK, or "
             "XLSX) as the body or a multipart file; all rows or none", "analytics",
             response=PlatformImportReport, file=SHEET_FILE, roles=MANAGERS, errors=WRITE_ERRORS),
]  # fmt: skip
