"""Database schema: migrate with Alembic, and the names of the platform's PostgreSQL roles.

Role names are cluster-wide in PostgreSQL while tables are per database, so every role the
platform creates is prefixed with the database's *role prefix* (recorded in ``installation`` by
the first migration). Two platform databases on one server, such as a test run beside the demo,
never share a role.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine

from .errors import SchemaNotReady


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate the database to ``revision``. Safe to re-run."""
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        has = conn.scalar(sa.text("SELECT to_regclass('public.alembic_version') IS NOT NULL"))
        if not has:
            return None
        return conn.scalar(sa.text("SELECT version_num FROM alembic_version"))


def head_revision() -> str:
    """The revision this version of the platform needs (the migrations' head)."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None  # the package ships its migrations
    return head


def check_current(engine: Engine) -> None:
    """Refuse, in one line with the fix, a database that is not migrated to this version's schema."""
    current, head = current_revision(engine), head_revision()
    where = engine.url.render_as_string()
    if current is None:
        raise SchemaNotReady(f"the database at {where} has no platform schema yet: run `scope3 db upgrade`")
    if current != head:
        raise SchemaNotReady(f"the database at {where} is at schema {current}, this version needs {head}: run "
                             "`scope3 db upgrade`")


def prefix_for_database(name: str) -> str:
    """Role prefix for a database name: lower-case letters, digits and ``_``, at most 20 characters."""
    p = re.sub(r"[^a-z0-9_]", "_", name.lower())[:20]
    return p if p[:1].isalpha() else f"s{p}"[:20]


def role_prefix(conn: Connection) -> str:
    prefix = conn.scalar(sa.text("SELECT role_prefix FROM installation"))
    if prefix is None:
        raise RuntimeError("database not migrated: run `scope3 db upgrade`")
    return str(prefix)


def group_role(prefix: str, access: str) -> str:
    """The NOLOGIN group every tenant's ``rw`` or ``ro`` login role belongs to."""
    return f"{prefix}_tenant_{access}"


def tenant_groups(conn: Connection) -> tuple[str, str]:
    """The ``rw`` and ``ro`` groups of this installation's tenant login roles."""
    prefix = role_prefix(conn)
    return group_role(prefix, "rw"), group_role(prefix, "ro")


def isolate_tenant_tables(conn: Connection, tables: Iterable[str]) -> tuple[str, str]:
    """Row-level security on ``tables`` (each has ``tenant_id``): both tenant groups see and write only the
    connected tenant's rows. Returns the groups, for the migration's own grants (which differ per table)."""
    rw, ro = tenant_groups(conn)
    mine = "(SELECT tenant_of(current_user))"
    for table in tables:
        conn.execute(sa.text(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY"))
        conn.execute(sa.text(f'CREATE POLICY tenant_isolation ON {table} TO "{rw}", "{ro}" '
                             f"USING (tenant_id = {mine}) WITH CHECK (tenant_id = {mine})"))
    return rw, ro


def ingest_role(prefix: str) -> str:
    return f"{prefix}_ingest"


def tenant_role(prefix: str, slug: str, access: str) -> str:
    return f"{prefix}_t_{slug.replace('-', '_')}_{access}"
