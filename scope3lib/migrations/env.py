"""Alembic environment: runs migrations on the connection ``scope3lib.schema.upgrade`` passes in."""

from __future__ import annotations

from alembic import context

from scope3lib.models import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - migrations are run through `scope3 db upgrade`
    raise RuntimeError("run migrations with `scope3 db upgrade`, which passes the connection")

context.configure(connection=connection, target_metadata=Base.metadata, compare_type=True)
with context.begin_transaction():
    context.run_migrations()
