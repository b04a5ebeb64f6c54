"""What the meters are doing now: each device's state and readings today, and the energy of recent days.

Read with a tenant's engine (``scope3lib.connect()`` in a notebook or the dashboard's read-only role),
row-level security limits every query to the tenant; with the admin engine pass ``tenant``.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
from sqlalchemy.engine import Connection, Engine

from .. import db
from ..factors import lookup

# A device on time reports every expected_interval_s; allow 10% jitter plus the ingest's 5 s
# granularity of devices.last_seen before calling it silent.
_ONLINE_SLACK = 1.1
_LAST_SEEN_GRANULARITY_S = 5

STATUS_COLUMNS = ["device", "grid_region", "category", "supplier", "expected_interval_s", "last_seen", "silent_s",
                  "state", "readings_today", "kwh_today"]

_STATUS_SQL = """
SELECT d.device_key AS device, d.grid_region, d.category, s.name AS supplier, d.expected_interval_s,
       d.last_seen, d.revoked_at, today.readings AS readings_today, today.kwh AS kwh_today
FROM devices d
JOIN tenants t ON t.id = d.tenant_id
LEFT JOIN suppliers s ON s.id = d.supplier_id AND s.tenant_id = d.tenant_id
CROSS JOIN LATERAL (SELECT count(*) AS readings, coalesce(sum(r.kwh), 0) AS kwh FROM readings r
                    WHERE r.device_id = d.id AND r.ts >= :midnight) AS today
WHERE CAST(:slug AS text) IS NULL OR t.slug = :slug
ORDER BY d.device_key
"""


def device_status(bind: Engine | Connection, *, tenant: str | None = None,
                  now: dt.datetime | None = None) -> pd.DataFrame:
    """One row per device: last seen, ``state`` (online, silent, never, revoked), readings today (UTC).

    Columns: device, grid_region, category, supplier, expected_interval_s, last_seen, silent_s (seconds
    since last seen), state, readings_today, kwh_today (since midnight UTC).
    """
    now = now or dt.datetime.now(dt.UTC)
    midnight = dt.datetime.combine(now.date(), dt.time(), tzinfo=dt.UTC)
    df = db.read_frame(bind, _STATUS_SQL, {"midnight": midnight, "slug": tenant})
    last = pd.to_datetime(df["last_seen"], utc=True)
    df["silent_s"] = (pd.Timestamp(now) - last).dt.total_seconds()
    limit = df["expected_interval_s"] * _ONLINE_SLACK + _LAST_SEEN_GRANULARITY_S
    df["state"] = np.select(
        [df["revoked_at"].notna(), last.isna(), df["silent_s"] <= limit],
        ["revoked", "never", "online"],
        default="silent",
    )
    df["readings_today"] = df["readings_today"].astype(int)
    df["kwh_today"] = df["kwh_today"].astype(float)
    return df[STATUS_COLUMNS]


def kg_today(status: pd.DataFrame, factors: pd.DataFrame, today: dt.date | None = None) -> pd.Series:
    """kg CO2e of each device's energy today (:func:`device_status`), priced as the daily rollup will price
    it: the grid factor of its region for today's year (:mod:`scope3lib.factors.lookup`; ``factors`` is its
    factor table). NaN for a region no factor covers."""
    year = (today or dt.datetime.now(dt.UTC).date()).year
    found = lookup.grid_factors(None, status["grid_region"], pd.Series([year] * len(status)), factors)
    return pd.Series(status["kwh_today"].to_numpy() * found["factor_value"].to_numpy(dtype=float), index=status.index)


def daily_energy(bind: Engine | Connection, days: int = 30, today: dt.date | None = None) -> pd.DataFrame:
    """kWh per UTC day from meter readings, with the kg CO2e of the daily meter entries, for the last ``days``."""
    today = today or dt.datetime.now(dt.UTC).date()
    since = today - dt.timedelta(days=days - 1)
    kwh = db.read_frame(bind, "SELECT (ts AT TIME ZONE 'UTC')::date AS day, sum(kwh) AS kwh FROM readings "
                              "WHERE ts >= :since GROUP BY 1 ORDER BY 1", {"since": since})
    co2 = db.read_frame(bind, "SELECT period_start AS day, sum(kg_co2e) AS kg_co2e FROM emission_entries "
                              "WHERE data_source = 'iot' AND period_start >= :since GROUP BY 1", {"since": since})
    return kwh.merge(co2, on="day", how="left").fillna({"kg_co2e": 0.0})
