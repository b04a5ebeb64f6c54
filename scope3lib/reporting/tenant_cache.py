"""The dashboard's tenant-wide panels, computed once per change of the data they rest on, not once per page.

Hotspots, how much is estimated, ledger verification and scenarios take about 0.9 s on the demo tenant, three
quarters of a page's work, and import scikit-learn and SciPy (about 85 MB in every page kernel); yet they
change only when the tenant's data does. So the dashboard service keeps them in a directory of its own
(``SCOPE3_DASHBOARD_CACHE_DIR``, set by :class:`scope3lib.hub.dashboard.DashboardVoila` to a directory in its
private runtime directory), one file per tenant and *data version*: a page whose data version has a file
loads it (milliseconds); a page whose data changed computes the panels and leaves the file for the next.
A refresher beside Voila (``python -m scope3lib.reporting.tenant_cache``) computes the file as soon as the
data changes, so that viewers rarely pay for it.

The data version is the row count and the newest row version (``xmin``) of every table those panels read:
any insert, update or delete changes it (an emission entry's change also appends to the ledger log), and it
costs one query of a few milliseconds. A set of panels in which one failed is not kept (the failure may be
passing). Without the setting (notebooks, reports, tests) nothing is kept: every call computes.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import pickle
import sys
import time
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from .panels import Panel

log = logging.getLogger(__name__)

#: What the tenant-wide panels read (each readable by the tenant's read-only role).
TABLES = ("emission_entries", "suppliers", "scenarios", "ledger_leaves", "ledger_heads", "ledger_checkpoints",
          "ledger_keys", "factors", "factor_datasets", "periods", "data_requests", "supplier_submissions")
ENV = "SCOPE3_DASHBOARD_CACHE_DIR"


def data_version(engine: Engine) -> str:
    """A digest of the row count and newest row version of each of :data:`TABLES`, as the tenant sees them."""
    sql = " UNION ALL ".join(f"SELECT '{t}', count(*), coalesce(max(xmin::text::bigint), 0) FROM {t}"
                             for t in TABLES)
    with engine.connect() as conn:
        rows = conn.execute(sa.text(sql)).all()
    return hashlib.sha256(repr(sorted(tuple(r) for r in rows)).encode()).hexdigest()[:20]


def cache_dir() -> Path | None:
    """The directory the dashboard service keeps panels in (created 0700), or None when not configured."""
    from ..config import TenantSettings

    configured = TenantSettings().dashboard_cache_dir
    if configured is None:
        return None
    configured.mkdir(mode=0o700, parents=True, exist_ok=True)
    return configured


def _file(directory: Path, slug: str, version: str) -> Path:
    return directory / f"{slug}-{version}.pickle"


def cached(engine: Engine, slug: str | None, build: Callable[[], list[Panel]]) -> list[Panel]:
    """The tenant-wide panels of the data as it is now: from the cache when it holds this data version, else
    ``build()`` (kept for the next page unless a panel failed)."""
    directory = cache_dir()
    if directory is None or slug is None:
        return build()
    try:
        version = data_version(engine)  # before building: a change while building is seen by the next page
    except Exception:  # a table the role cannot read: the panels say which, uncached
        log.warning("dashboard: cannot read the data version; computing the panels", exc_info=True)
        return build()
    path = _file(directory, slug, version)
    if path.exists():
        try:
            panels: list[Panel] = pickle.loads(path.read_bytes())  # written by this service, 0700
            return panels
        except Exception:  # a file cut short or from another version of the code: compute it again
            log.warning("dashboard: discarding unreadable cached panels %s", path, exc_info=True)
    panels = build()
    if all(p.state != "unavailable" for p in panels):
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        partial.write_bytes(pickle.dumps(panels, protocol=pickle.HIGHEST_PROTOCOL))
        partial.replace(path)  # whole or not at all: a page never reads half a file
        for old in directory.glob(f"{slug}-*.pickle"):
            if old != path:
                old.unlink(missing_ok=True)
    return panels


def is_current(engine: Engine, slug: str) -> bool:
    directory = cache_dir()
    return directory is not None and _file(directory, slug, data_version(engine)).exists()


def refresh_forever(every_s: float) -> None:
    """Keep the cache of the tenant of ``SCOPE3_TENANT_DATABASE_URL`` current, checking every ``every_s``
    seconds, until the process that started this one ends."""
    from .. import db
    from ..tenancy import connected_tenant
    from .executive import ExecutiveDashboard

    parent = os.getppid()
    engine = db.connect()
    slug = connected_tenant(engine)
    while os.getppid() == parent:
        try:
            if slug is not None and not is_current(engine, slug):
                started = time.perf_counter()
                ExecutiveDashboard(engine).tenant_panels()
                log.info("dashboard: tenant panels of %s computed in %.2f s", slug, time.perf_counter() - started)
        except Exception:  # the database may be restarting: try again at the next check
            log.exception("dashboard: refreshing the tenant panels failed")
        time.sleep(every_s)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=refresh_forever.__doc__)
    ap.add_argument("--every", type=float, default=10.0, help="seconds between checks of the data version")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="[%(levelname)s %(asctime)s %(name)s] %(message)s")
    refresh_forever(args.every)


if __name__ == "__main__":
    main()
