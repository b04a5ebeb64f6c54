"""Pieces the migrations share: raw DDL, and the foreign keys every tenant table has.

A migration is history and stays as it was written; what several of them build the same way lives here so
that it is written once (row-level security: :func:`scope3lib.schema.isolate_tenant_tables`).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


def execute_raw(statement: str) -> None:
    """Run DDL on the migration's connection without bind-parameter parsing (function bodies use ':' and '%')."""
    cursor = op.get_bind().connection.cursor()
    try:
        cursor.execute(statement)
    finally:
        cursor.close()


def tenant_fk(table: str) -> sa.ForeignKeyConstraint:
    """``table.tenant_id`` -> ``tenants.id``; a tenant's rows go with it."""
    return sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=f"fk_{table}_tenant_id_tenants",
                                   ondelete="CASCADE")


def supplier_fk(table: str, ondelete: str = "CASCADE") -> sa.ForeignKeyConstraint:
    """``(tenant_id, supplier_id)`` -> the tenant's supplier. Composite: foreign keys are checked without
    row-level security (docs/design.md, measured facts), so a row can only name its own tenant's supplier."""
    return sa.ForeignKeyConstraint(["tenant_id", "supplier_id"], ["suppliers.tenant_id", "suppliers.id"],
                                   name=f"fk_{table}_supplier", ondelete=ondelete)
