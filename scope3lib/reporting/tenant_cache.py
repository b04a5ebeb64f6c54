"""The dashboard's tenant-wide panels, computed once per change of the data they rest on, not once per page.

Hotspots, how much is estimated, ledger verification and scenarios take about 0.9 s on the demo tenant, three
quarters of a page's work, and import scikit-learn and SciPy (about 85 MB in every page kernel); yet they
change only when the tenant's data does. So the dashboard service keeps them in a directory of its own
(``SCOPE3_DASHBOARD_CACHE_DIR``, set by :class:`scope3lib.hub.dashboard.DashboardVoila` to a directory in its
private runtime directory), one file per tenant (database role) and *data version*: a page whose data version has a file
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

# A child of the dashboard's logger, so that in a page's kernel its records go where the dashboard's go: the
# service's log, never the page a viewer sees.
log = logging.getLogger("scope3lib.reporting.executive.tenant_cache")

#: What the tenant-wide panels read (each readable by the tenant's read-only role).
TABLES = ("emission_entries", "suppliers", "scenarios", "ledger_leaves", "ledger_heads", "ledger_checkpoints",
          "ledger_keys", "factors", "factor_datasets", "periods", "data_requests", "supplier_submissions",
          "spend_lines", "spend_groups")
ENV = "SCOPE3_DASHBOARD_CACHE_DIR"


def data_version(engine: Engine) -> tuple[str, str]:
    """(the connected role, a digest of the row count and newest row version of each of :data:`TABLES` as the
    role sees them). The role names the tenant: one directory may serve several tenants' dashboards."""
    sql = " UNION ALL ".join(f"SELECT '{t}', count(*), coalesce(max(xmin::text::bigint), 0) FROM {t}"
                             for t in TABLES)
    with engine.connect() as conn:
        role = str(conn.scalar(sa.text("SELECT current_user")))
        rows = conn.execute(sa.text(sql)).all()
    return role, hashlib.sha256(repr(sorted(tuple(r) for r in rows)).encode()).hexdigest()[:20]


def cache_dir() -> Path | None:
    """The directory the dashboard service keeps panels in (created 0700), or None when not configured."""
    from ..config import TenantSettings

    configured = TenantSettings().dashboard_cache_dir
    if configured is None:
        return None
    configured.mkdir(mode=0o700, parents=True, exist_ok=True)
    return configured


def _file(directory: Path, version: tuple[str, str]) -> Path:
    return directory / f"{version[0]}-{version[1]}.pickle"


Version = tuple[str, str]
# What this process last loaded or computed: a page kernel prepared ahead of its viewer holds them (one version).
_memo: dict[Version, list[Panel]] = {}


def current_version(engine: Engine) -> Version | None:
    """The data version when the service keeps a cache, else None (not configured, or a table unreadable: the
    panels then say which)."""
    if cache_dir() is None:
        return None
    try:
        return data_version(engine)
    except Exception:
        log.warning("dashboard: cannot read the data version; computing the panels", exc_info=True)
        return None


def load(version: Version) -> list[Panel] | None:
    """The panels kept for ``version``, or None."""
    if version in _memo:
        return _memo[version]
    directory = cache_dir()
    path = None if directory is None else _file(directory, version)
    if path is None or not path.exists():
        return None
    try:
        panels: list[Panel] = pickle.loads(path.read_bytes())  # written by this service, 0700
    except Exception:  # a file cut short or from another version of the code: computed again
        log.warning("dashboard: discarding unreadable cached panels %s", path, exc_info=True)
        return None
    _memo.clear()
    _memo[version] = panels
    return panels


def cached(engine: Engine, build: Callable[[], list[Panel]], version: Version | None = None) -> list[Panel]:
    """The tenant-wide panels of the data as it is now (``version``, read when not given): from the cache when
    it holds this data version, else ``build()`` (kept for the next page unless a panel failed)."""
    # The version is read before building: a change while building is seen by the next page.
    version = version or current_version(engine)
    directory = cache_dir()
    if version is None or directory is None:
        return build()
    panels = load(version)
    if panels is not None:
        return panels
    panels = build()
    if all(p.state != "unavailable" for p in panels):
        path = _file(directory, version)
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        partial.write_bytes(pickle.dumps(panels, protocol=pickle.HIGHEST_PROTOCOL))
        partial.replace(path)  # whole or not at all: a page never reads half a file
        for old in directory.glob(f"{version[0]}-*.pickle"):
            if old != path:
                old.unlink(missing_ok=True)
    return panels


def refresh_forever(every_s: float) -> None:
    """Keep the cache of the tenant of ``SCOPE3_TENANT_DATABASE_URL`` current, checking every ``every_s``
    seconds, until the process that started this one ends."""
    from .. import db
    from .executive import ExecutiveDashboard

    parent = os.getppid()
    engine = db.connect()
    tried: Version | None = None  # a version whose panels failed is not tried again: pages compute their own
    while os.getppid() == parent:
        try:
            version = data_version(engine)
            if version != tried and load(version) is None:
                tried = version
                started = time.perf_counter()
                ExecutiveDashboard(engine).tenant_panels()
                log.info("dashboard: tenant panels computed in %.2f s", time.perf_counter() - started)
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
