"""Connections to the one store, PostgreSQL.

``SCOPE3_DATABASE_URL`` names the database. When it is unset the platform starts an embedded
PostgreSQL (pgserver) under its data directory; there is no SQLite mode, so row-level security
and every query behave the same everywhere (docs/design.md, decision 1).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine, make_url

from .config import Settings, TenantSettings
from .errors import ConfigurationError, DatabaseUnavailable

if TYPE_CHECKING:
    import pandas as pd
    import psycopg

log = logging.getLogger(__name__)

EMBEDDED_DB_NAME = "scope3"

# Password authentication for every role but the embedded server's own superuser: without it any
# local process could log in as another tenant's role, and isolation would rest on nothing.
_EMBEDDED_HBA = """\
# Written by scope3: tenant roles must present their password (SCRAM); only the embedded
# superuser, reachable through this socket directory alone, is trusted.
local   all   postgres                 trust
local   all   all                      scram-sha-256
"""


def sqlalchemy_url(url: str | URL) -> URL:
    """Return ``url`` with the psycopg 3 driver, whatever driver (if any) it named."""
    u = make_url(url) if isinstance(url, str) else url
    if u.get_backend_name() not in ("postgresql", "postgres"):
        raise ConfigurationError(f"database URL must be PostgreSQL, got {u.get_backend_name()!r}")
    return u.set(drivername="postgresql+psycopg")


def libpq_url(url: str | URL) -> str:
    """Render ``url`` as a plain ``postgresql://`` URL that psql, psycopg and SQLAlchemy all accept."""
    u = sqlalchemy_url(url).set(drivername="postgresql")
    return u.render_as_string(hide_password=False)


def redact_url(url: str) -> str:
    """``url`` with its password hidden, for logs and listings."""
    if "://" not in url or "@" not in url:
        return url
    scheme, rest = url.split("://", 1)
    auth, host = rest.rsplit("@", 1)
    user = auth.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in auth else url


def with_credentials(url: str | URL, username: str, password: str) -> str:
    """The same server and database as ``url``, logging in as another role."""
    u = sqlalchemy_url(url).set(username=username, password=password)
    return libpq_url(u)


def create_engine(url: str | URL, **kwargs: object) -> Engine:
    return sa.create_engine(sqlalchemy_url(url), pool_pre_ping=True, **kwargs)


def embedded_postgres(data_dir: Path) -> str:
    """Start (or attach to) the embedded PostgreSQL under ``data_dir`` and return its admin URL.

    The server stops when the last process that attached to it exits.
    """
    try:
        with warnings.catch_warnings():
            # pgserver asks platformdirs for a runtime directory when imported; where XDG_RUNTIME_DIR is unset
            # (a root shell, a service) that prints a warning and a line of source on every command, though the
            # fallback it uses is fine.
            warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
            import pgserver
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        raise DatabaseUnavailable("embedded PostgreSQL needs pgserver: pip install pgserver") from exc

    pgdata = (data_dir / "postgres").resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    try:
        server = pgserver.get_server(pgdata, cleanup_mode="stop")
    except Exception as exc:
        raise DatabaseUnavailable(f"could not start embedded PostgreSQL in {pgdata}: {exc}") from exc
    hba = pgdata / "pg_hba.conf"
    if hba.read_text() != _EMBEDDED_HBA:
        hba.write_text(_EMBEDDED_HBA)
        server.psql("SELECT pg_reload_conf();")
    admin = make_url(server.get_uri())
    with sa.create_engine(sqlalchemy_url(admin), isolation_level="AUTOCOMMIT").connect() as conn:
        exists = conn.scalar(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": EMBEDDED_DB_NAME})
        if not exists:
            conn.execute(sa.text(f'CREATE DATABASE "{EMBEDDED_DB_NAME}"'))
    # Keep a handle so the server outlives this call (pgserver stops it when the last handle exits).
    _EMBEDDED_HANDLES[pgdata] = server
    return libpq_url(admin.set(database=EMBEDDED_DB_NAME))


_EMBEDDED_HANDLES: dict[Path, object] = {}


def admin_url(settings: Settings | None = None, *, create: bool = False) -> str:
    """URL of the platform's admin role: ``SCOPE3_DATABASE_URL`` or the embedded server.

    The embedded server of a data directory that has none is created only with ``create`` (``scope3 db
    upgrade``, ``scope3 demo``): a command run with the wrong ``SCOPE3_DATA_DIR`` is told so, instead of
    starting a second, empty platform.
    """
    settings = settings or Settings()
    if settings.database_url:
        return libpq_url(settings.database_url)
    if not create and not (settings.data_dir / "postgres").is_dir():
        raise ConfigurationError(
            f"no platform database in {settings.data_dir} (SCOPE3_DATA_DIR): set SCOPE3_DATA_DIR to the platform's "
            "data directory (make demo's is .scope3 in the clone) or SCOPE3_DATABASE_URL to its PostgreSQL; "
            "`scope3 db upgrade` creates a new platform there"
        )
    return embedded_postgres(settings.data_dir)


def admin_engine(settings: Settings | None = None, *, create: bool = False) -> Engine:
    url = admin_url(settings, create=create)
    try:
        engine = create_engine(url)
        with engine.connect():
            pass
    except sa.exc.OperationalError as exc:
        reason = " ".join(str(exc.orig).split())  # libpq's message spans lines; keep it to one
        raise DatabaseUnavailable(
            f"cannot connect to PostgreSQL at {make_url(url).render_as_string()}: {reason}"
        ) from exc
    return engine


def connect(url: str | None = None) -> Engine:
    """An engine for a tenant's notebook, dashboard or report.

    With no argument it uses ``SCOPE3_TENANT_DATABASE_URL``, which the tenant's JupyterHub puts
    in every server it spawns (read-write for analysts, read-only for dashboards). Row-level
    security in PostgreSQL limits every query to that tenant's rows.
    """
    url = url or TenantSettings().tenant_database_url
    if not url:
        raise ConfigurationError(
            "no tenant database: set SCOPE3_TENANT_DATABASE_URL (the hub does this for you) "
            "or pass the URL printed by `scope3 tenant create --json`"
        )
    return create_engine(url)


def read_frame(bind: Engine | Connection, sql: str | sa.TextClause | sa.Select[Any],
               params: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """The rows of ``sql`` as a DataFrame, on a connection (inside its transaction) or on a new one from an
    engine. The one way the library reads a table into pandas; with a tenant's engine row-level security
    applies as to any query."""
    import pandas as pd  # here, not at the top: `import scope3lib` stays fast for the CLI and the ingest

    query = sa.text(sql) if isinstance(sql, str) else sql
    if isinstance(bind, Connection):
        return pd.read_sql(query, bind, params=dict(params) if params else None)
    with bind.connect() as conn:
        return pd.read_sql(query, conn, params=dict(params) if params else None)


@contextmanager
def raw_cursor(engine: Engine, *, autocommit: bool = False) -> Iterator[psycopg.Cursor[Any]]:
    """A psycopg cursor on one of ``engine``'s pooled connections, returned to the pool (rolled back) after.

    For the few hot paths where SQLAlchemy's statement layer costs more than the query (the API's list of
    emission entries and its key checks: docs/benchmarks.md, API); everything else uses the engine. With
    ``autocommit`` each statement is its own transaction: no BEGIN and no ROLLBACK, two round trips fewer,
    for reads that need no snapshot shared between their statements.
    """
    conn = engine.raw_connection()
    dbapi: Any = conn.dbapi_connection
    dbapi.autocommit = autocommit  # the pool hands out idle connections (reset on return), so it may change
    try:
        cur: psycopg.Cursor[Any] = conn.cursor()  # type: ignore[assignment]  # the pool's driver is psycopg
        try:
            yield cur
        finally:
            cur.close()
    finally:
        if autocommit and not dbapi.closed:
            dbapi.autocommit = False  # as the pool's other users expect
        conn.close()
