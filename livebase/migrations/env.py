"""Alembic environment: migrations run on the connection handed in by livebase.db.migrate."""

from __future__ import annotations

from alembic import context

from livebase.db.models import Model

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `livebase db upgrade`, which supplies the connection")

context.configure(
    connection=connection,
    target_metadata=Model.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
