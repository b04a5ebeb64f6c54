"""Emissions from meter readings: a daily rollup into the inventory, and device status for dashboards.

Each device has a grid region (an eGRID subregion such as ``CAMX``, or a country such as ``GB``). The
rollup sums a device's readings per UTC day and prices the day's energy with the region's
location-based grid factor::

    kg CO2e = kWh (sum of the day's readings) x factor (kg CO2e per kWh)

The factor is chosen by the one factor lookup (:mod:`scope3lib.factors.lookup`): the region's factor for the
day's year, else its latest earlier year (grid datasets are published one to two years after their data
year), from whichever stored release has it, so an imported eGRID or DESNZ release prices the next days; a
region with no factor for that year or before is reported, never guessed. Each day becomes one ``emission_entries``
row (``data_source`` ``iot``, ``method`` ``average_data``, the device's GHG Protocol category, the
factor's source, version, key, value and unit recorded). A unique index (migration 0003) keeps one
row per device and day, so re-running the rollup never double counts; a late reading changes its
day's kWh and kg, priced with the factor already recorded for that day: a day is never silently
re-priced by a newer dataset (docs/design.md, decision 6), and days in a closed period are left alone.

Data quality (1 best .. 5 worst), after the GHG Protocol Scope 3 Standard (2011) section 7.3 and
the pedigree matrix it cites (Weidema & Wesnaes 1996): metered energy is primary activity data,
priced with a secondary regional average factor, hence 2; one point worse when the factor is more
than three years older than the day (temporal representativeness), and one point worse when the
day's readings cover less than half of what the device's expected interval promises (completeness).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from .. import db
from ..accounting import entries
from ..factors import lookup
from ..tenancy import tenant_id


@dataclass
class RollupResult:
    """What a rollup did. ``kwh`` and ``kg_co2e`` total the days it priced (new and existing)."""

    tenant: str
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    kwh: float = 0.0
    kg_co2e: float = 0.0
    missing_factors: list[dict[str, object]] = field(default_factory=list)
    closed_days: list[dict[str, object]] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


_DAILY_SQL = """
SELECT r.device_id, (r.ts AT TIME ZONE 'UTC')::date AS day,
       -- numeric: an exact sum, identical on every run, so a re-run finds nothing to change
       sum(r.kwh::numeric)::float8 AS kwh, count(*) AS readings
FROM readings r
WHERE r.tenant_id = :t AND (CAST(:since AS date) IS NULL OR r.ts >= CAST(:since AS date)::timestamp AT TIME ZONE 'UTC')
GROUP BY 1, 2
"""

_DEVICES_SQL = ("SELECT id AS device_id, device_key AS device, grid_region, category, supplier_id, expected_interval_s "
                "FROM devices WHERE tenant_id = :t")

# The factor each day already written was priced with: it stays (a day is never silently re-priced).
_RECORDED_SQL = ("SELECT device_id, period_start AS day, factor_source, factor_version, factor_key, factor_value, "
                 "factor_unit FROM emission_entries WHERE tenant_id = :t AND data_source = 'iot' "
                 "AND device_id IS NOT NULL AND (CAST(:since AS date) IS NULL OR period_start >= CAST(:since AS date))")


def _closed_ranges(conn: Connection, tid: int) -> list[tuple[dt.date, dt.date]]:
    rows = conn.execute(
        sa.text("SELECT period_start, period_end FROM periods WHERE tenant_id = :t AND status = 'closed'"), {"t": tid}
    ).all()
    return [(r[0], r[1]) for r in rows]


def _days(conn: Connection, tid: int, since: dt.date | None) -> pd.DataFrame:
    """Each device's kWh per UTC day, with the device and the factor already recorded for the day (if any)."""
    daily = db.read_frame(conn, _DAILY_SQL, {"t": tid, "since": since})
    devices = db.read_frame(conn, _DEVICES_SQL, {"t": tid})
    recorded = db.read_frame(conn, _RECORDED_SQL, {"t": tid, "since": since})
    df = daily.merge(devices, on="device_id", how="inner").merge(recorded, on=["device_id", "day"], how="left")
    df["year"] = pd.to_datetime(df["day"]).dt.year
    return df


def _price(df: pd.DataFrame, table: pd.DataFrame) -> pd.DataFrame:
    """Days not yet written take the grid factor of their region and year; every day gets the factor's year."""
    new = df["factor_value"].isna()
    found = lookup.grid_factors(None, df["grid_region"], df["year"], table).set_axis(df.index)
    for col in ("factor_source", "factor_version", "factor_key", "factor_value", "factor_unit"):
        df[col] = df[col].where(~new, found[col])
    # Year of the factor each day is priced with (recorded ones too), for the temporal quality score.
    years = table[["source", "version", "factor_key", "year"]].drop_duplicates(["source", "version", "factor_key"])
    years = years.set_axis(["factor_source", "factor_version", "factor_key", "factor_year"], axis=1)
    df = df.merge(years, on=["factor_source", "factor_version", "factor_key"], how="left")
    df["factor_year"] = df["factor_year"].fillna(df["year"])
    return df


def _missing_factors(df: pd.DataFrame) -> list[dict[str, object]]:
    missing = df[df["factor_value"].isna()]
    if missing.empty:
        return []
    agg = missing.groupby(["device", "grid_region"], as_index=False).agg(days=("day", "size"), kwh=("kwh", "sum"))
    return [{"device": d, "region": reg, "days": int(n), "kwh": float(k)}
            for d, reg, n, k in agg[["device", "grid_region", "days", "kwh"]].itertuples(index=False)]


def _in_closed(df: pd.DataFrame, closed: list[tuple[dt.date, dt.date]]) -> np.ndarray:
    days = pd.to_datetime(df["day"])
    inside = np.zeros(len(df), dtype=bool)
    for start, end in closed:
        inside |= ((days >= pd.Timestamp(start)) & (days <= pd.Timestamp(end))).to_numpy()
    return inside


def _meter_entries(df: pd.DataFrame) -> pd.DataFrame:
    """The rows :func:`scope3lib.accounting.entries.upsert_meter_days` writes, with kg CO2e and data quality."""
    coverage = df["readings"] * df["expected_interval_s"] / 86_400
    quality = (2 + (df["year"] - df["factor_year"] > 3).astype(int) + (coverage < 0.5).astype(int)).clip(1, 5)
    return df.assign(
        kg_co2e=df["kwh"] * df["factor_value"],
        data_quality=quality,
        description="Grid electricity metered by " + df["device"] + " (" + df["grid_region"] + "), "
                    + df["day"].astype(str),
    )[list(entries.METER_DAY_COLUMNS)]


def rollup_daily(engine: Engine, slug: str, *, since: dt.date | None = None) -> RollupResult:
    """Write one emission entry per device and UTC day of tenant ``slug``'s readings (from ``since``).

    Safe to re-run: an existing day is updated only when its kWh or data quality changed, and priced
    with the factor recorded when it was first written. Works with the admin engine or the tenant's
    read-write engine (row-level security then limits it to the tenant anyway).
    """
    result = RollupResult(tenant=slug)
    with engine.begin() as conn:
        tid = tenant_id(conn, slug)
        df = _days(conn, tid, since)
        if df.empty:
            return result
        df = _price(df, lookup.factor_table(conn))
        result.missing_factors = _missing_factors(df)
        df = df[df["factor_value"].notna()]
        closed = _in_closed(df, _closed_ranges(conn, tid))
        result.closed_days = [{"device": d, "day": str(day)} for d, day
                              in df.loc[closed, ["device", "day"]].itertuples(index=False)]
        df = df[~closed]
        if df.empty:
            return result
        rows = _meter_entries(df)
        result.inserted, result.updated = entries.upsert_meter_days(conn, tid, rows)
        result.unchanged = len(rows) - result.inserted - result.updated
        result.kwh = float(rows["kwh"].sum())
        result.kg_co2e = float(rows["kg_co2e"].sum())
    return result
