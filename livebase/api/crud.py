"""Generic, base-scoped JSON CRUD: one spec per entity gives list, create, get, patch, delete.

Scoping rules, enforced here for every entity:
- a base the caller cannot see answers 404 (its existence does not leak);
- a role with no access to an entity answers 403;
- a row outside the caller's own scope (another merchant's product, another host's session)
  answers 404, as if it did not exist.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.exc import IntegrityError

from livebase.api.routing import Context, Endpoint, decode_cursor, encode_cursor, parse_id
from livebase.api.schemas import ListQuery, Page
from livebase.auth import Principal
from livebase.db.models import Base, Role
from livebase.errors import Conflict, FieldError, Forbidden, NotFound, ValidationFailed

Scope = Callable[[Principal], ColumnElement[bool]] | None
"""A filter limiting a role to its own rows; ``None`` means every row of the base."""

Hook = Callable[[Context, Base, Any, dict[str, Any]], Awaitable[None]]
PREFIX = "/api/v1/bases/{base}"


async def resolve_base(ctx: Context) -> Base:
    slug = ctx.path("base")
    base = await ctx.db.scalar(select(Base).where(Base.slug == slug))
    if base is None or not ctx.principal.can_see_base(base.id):
        raise NotFound(f"no base {slug!r}")
    return base


def scope_filter(rules: Mapping[Role, Scope], principal: Principal) -> ColumnElement[bool] | None:
    if principal.role not in rules:
        raise Forbidden(f"the {principal.role.value} role may not do this")
    scope = rules[principal.role]
    return None if scope is None else scope(principal)


async def flush_or_conflict(ctx: Context, what: str) -> None:
    try:
        await ctx.db.flush()
    except IntegrityError as exc:
        text = str(exc.orig).lower()
        if "unique" in text or "duplicate" in text:
            raise Conflict(f"a {what} with the same identifier already exists") from exc
        if "foreign key" in text:
            raise Conflict(f"this {what} is still referenced by other records") from exc
        raise ValidationFailed(f"the {what} violates a data rule: {exc.orig}") from exc


def page_of(model: type[BaseModel]) -> type[BaseModel]:
    """The ``Page[model]`` response type, built at run time for the OpenAPI document."""
    return Page[model]  # type: ignore[valid-type]


@dataclass(frozen=True)
class CrudSpec:
    name: str
    singular: str
    model: Any
    out: type[BaseModel]
    create: type[BaseModel]
    update: type[BaseModel]
    query: type[ListQuery]
    read: Mapping[Role, Scope]
    write: Mapping[Role, Scope]
    create_as: Mapping[Role, Callable[[Principal], dict[str, Any]]]
    refs: Mapping[str, Any] = field(default_factory=dict)
    lookup: str = "id"
    serialize: Callable[[Any], BaseModel] | None = None
    before_create: Hook | None = None
    before_update: Hook | None = None
    after_change: Callable[[Context, Base, Any, str], None] | None = None
    """Called after a row is created, updated or deleted (action: created/updated/deleted)."""

    def to_out(self, row: Any) -> BaseModel:
        return self.serialize(row) if self.serialize else self.out.model_validate(row)

    def _key_clause(self, raw: str) -> ColumnElement[bool]:
        column = getattr(self.model, self.lookup)
        if self.lookup == "id":
            value = parse_id(raw)
            if value is None:
                raise NotFound(f"no {self.singular} {raw!r}")
            return column == value  # type: ignore[no-any-return]
        return column == raw  # type: ignore[no-any-return]

    async def fetch(
        self, ctx: Context, base: Base, raw_key: str, rules: Mapping[Role, Scope]
    ) -> Any:
        stmt = select(self.model).where(self.model.base_id == base.id, self._key_clause(raw_key))
        scope = scope_filter(rules, ctx.principal)
        if scope is not None:
            stmt = stmt.where(scope)
        row = await ctx.db.scalar(stmt)
        if row is None:
            raise NotFound(f"no {self.singular} {raw_key!r} in base {base.slug!r}")
        return row

    async def check_refs(self, ctx: Context, base: Base, values: Mapping[str, Any]) -> None:
        errors = []
        for name, model in self.refs.items():
            ref = values.get(name)
            if ref is None:
                continue
            found = await ctx.db.scalar(
                select(model.id).where(model.id == ref, model.base_id == base.id)
            )
            if found is None:
                errors.append(FieldError(name, f"no {model.__tablename__} #{ref} in this base"))
        if errors:
            raise ValidationFailed("the body refers to records that do not exist", fields=errors)

    def _filtered(self, stmt: Select[Any], query: ListQuery) -> Select[Any]:
        for name, value in query.model_dump(exclude={"limit", "cursor"}).items():
            if value is None:
                continue
            if name.endswith("_from"):
                stmt = stmt.where(getattr(self.model, name.removesuffix("_from")) >= value)
            elif name.endswith("_to"):
                stmt = stmt.where(getattr(self.model, name.removesuffix("_to")) < value)
            else:
                stmt = stmt.where(getattr(self.model, name) == value)
        return stmt

    async def list_rows(self, ctx: Context) -> Page[Any]:
        base = await resolve_base(ctx)
        query: ListQuery = ctx.query
        stmt = select(self.model).where(self.model.base_id == base.id)
        scope = scope_filter(self.read, ctx.principal)
        if scope is not None:
            stmt = stmt.where(scope)
        stmt = self._filtered(stmt, query)
        if query.cursor:
            stmt = stmt.where(self.model.id > decode_cursor(query.cursor))
        limit = min(query.limit or ctx.settings.page_size_default, ctx.settings.page_size_max)
        rows = list(await ctx.db.scalars(stmt.order_by(self.model.id).limit(limit + 1)))
        more = len(rows) > limit
        rows = rows[:limit]
        return Page[Any](
            items=[self.to_out(r) for r in rows],
            next_cursor=encode_cursor(rows[-1].id) if more else None,
        )

    async def get(self, ctx: Context) -> BaseModel:
        base = await resolve_base(ctx)
        return self.to_out(await self.fetch(ctx, base, ctx.path("key"), self.read))

    async def create_row(self, ctx: Context) -> BaseModel:
        base = await resolve_base(ctx)
        if ctx.principal.role not in self.create_as:
            raise Forbidden(f"the {ctx.principal.role.value} role may not create {self.name}")
        values = ctx.body.model_dump()
        values.update(self.create_as[ctx.principal.role](ctx.principal))
        # Scope rules in the hooks come first, so a refusal does not depend on whether the
        # referenced row exists (that would let a caller probe for ids).
        if self.before_create:
            await self.before_create(ctx, base, None, values)
        await self.check_refs(ctx, base, values)
        row = self.model(base_id=base.id, **values)
        ctx.db.add(row)
        await flush_or_conflict(ctx, self.singular)
        if self.after_change:
            self.after_change(ctx, base, row, "created")
        return self.to_out(row)

    async def update_row(self, ctx: Context) -> BaseModel:
        base = await resolve_base(ctx)
        row = await self.fetch(ctx, base, ctx.path("key"), self.write)
        changes = ctx.body.model_dump(exclude_unset=True)
        required = [
            FieldError(name, "may not be null")
            for name, value in changes.items()
            if value is None and not self.model.__table__.c[name].nullable
        ]
        if required:
            raise ValidationFailed("required fields cannot be cleared", fields=required)
        if self.before_update:
            await self.before_update(ctx, base, row, changes)
        await self.check_refs(ctx, base, changes)
        for name, value in changes.items():
            setattr(row, name, value)
        await flush_or_conflict(ctx, self.singular)
        if self.after_change:
            self.after_change(ctx, base, row, "updated")
        return self.to_out(row)

    async def delete_row(self, ctx: Context) -> None:
        base = await resolve_base(ctx)
        row = await self.fetch(ctx, base, ctx.path("key"), self.write)
        await ctx.db.delete(row)
        await flush_or_conflict(ctx, self.singular)
        if self.after_change:
            self.after_change(ctx, base, row, "deleted")

    def endpoints(self) -> list[Endpoint]:
        coll = f"{PREFIX}/{self.name}"
        item = f"{coll}/{{key}}"
        readers = frozenset(self.read)
        writers = frozenset(self.write)
        s = self.singular
        return [
            Endpoint(
                "GET",
                coll,
                self.list_rows,
                f"List {self.name}",
                self.name,
                response=page_of(self.out),
                query=self.query,
                roles=readers,
            ),
            Endpoint(
                "POST",
                coll,
                self.create_row,
                f"Create a {s}",
                self.name,
                response=self.out,
                body=self.create,
                status=201,
                roles=frozenset(self.create_as),
                errors=(400, 401, 403, 404, 409, 422),
            ),
            Endpoint(
                "GET", item, self.get, f"Get a {s}", self.name, response=self.out, roles=readers
            ),
            Endpoint(
                "PATCH",
                item,
                self.update_row,
                f"Update a {s}",
                self.name,
                response=self.out,
                body=self.update,
                roles=writers,
                errors=(400, 401, 403, 404, 409, 422),
            ),
            Endpoint(
                "DELETE",
                item,
                self.delete_row,
                f"Delete a {s}",
                self.name,
                status=204,
                roles=writers,
                errors=(401, 403, 404, 409),
            ),
        ]
