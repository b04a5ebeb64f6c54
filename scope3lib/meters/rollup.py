"""Emissions from meter readings: a daily rollup into the inventory, and device status for dashboards.

Each device has a grid region (an eGRID subregion such as ``CAMX``, or a country such as ``GB``). The
rollup sums a device's readings per UTC day and prices the day's energy with the region's
location-based grid factor::

    kg CO2e = kWh (sum of the day's readings) x factor (kg CO2e per kWh)

The factor is the region's factor for the day's year when the dataset has one, else its most recent
earlier year (grid datasets are published one to two years after their data year); a region with no
factor for that year or before is reported, never guessed. Each day becomes one ``emission_entries``
row (``data_source`` ``iot``, ``method`` ``average_data``, the device's GHG Protocol category, the
factor's source, version, key, value and unit recorded). A unique index (migration 0003) keeps one
row per device and day, so re-running the rollup never double counts; a late reading changes its
day's kWh and kg, priced with the factor already recorded for that day: a day is never silently
re-priced by a newer dataset (DESIGN.md decision 6), and days in a closed period are left alone.

Data quality (1 best .. 5 worst), after the GHG Protocol Scope 3 Standard (2011) section 7.3 and
the pedigree matrix it cites (Weidema & Wesnaes 1996): metered energy is primary activity data,
priced with a secondary regional average factor, hence 2; one point worse when the factor is more
than three years older than the day (temporal representativeness), and one point worse when the
day's readings cover less than half of what the device's expected interval promises (completeness).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from functools import cache

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ..categories import DataSource, Method
from ..factors import builtin_factors
from ..tenancy import tenant_id

# Datasets of location-based grid factors (kg CO2e per kWh) in the built-in set, most specific first:
# US EPA eGRID by subregion, UK DESNZ, Ember/OWID by country.
GRID_SOURCES = ("egrid", "desnz", "ember")
# A device on time reports every expected_interval_s; allow 10% jitter plus the ingest's 5 s
# granularity of devices.last_seen before calling it silent.
_ONLINE_SLACK = 1.1
_LAST_SEEN_GRANULARITY_S = 5


@dataclass(frozen=True)
class GridFactor:
    """A grid electricity factor: ``value`` kg CO2e per ``unit`` (kWh) for ``region`` in ``year``."""

    source: str
    version: str
    key: str
    value: float
    unit: str
    region: str
    year: int


@cache
def _grid_table() -> pd.DataFrame:
    df = builtin_factors()
    df = df[df["source"].isin(GRID_SOURCES) & (df["unit"] == "kWh")].copy()
    df["region"] = df["region"].str.upper()
    df["rank"] = df["source"].map({s: i for i, s in enumerate(GRID_SOURCES)})
    return df


def grid_factor(region: str, year: int) -> GridFactor | None:
    """The grid factor for ``region`` in ``year``: that year's, else the latest earlier one; None if none.

    The one place the rollup looks factors up (today the built-in curated set; the factor store can
    replace it here).
    """
    df = _grid_table()
    cand = df[(df["region"] == region.upper()) & (df["year"] <= year)]
    if cand.empty:
        return None
    best = cand.sort_values(["year", "rank"], ascending=[False, True]).iloc[0]
    return GridFactor(source=str(best["source"]), version=str(best["version"]), key=str(best["factor_key"]),
                      value=float(best["kg_co2e_per_unit"]), unit=str(best["unit"]), region=str(best["region"]),
                      year=int(best["year"]))


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

_UPSERT_SQL = """
INSERT INTO emission_entries AS e
    (tenant_id, category, period_start, period_end, method, supplier_id, device_id, description,
     activity_quantity, activity_unit, factor_source, factor_version, factor_key, factor_value, factor_unit,
     kg_co2e, data_source, data_quality)
SELECT :tenant_id, u.category, u.day, u.day, :method, u.supplier_id, u.device_id, u.description,
       u.kwh, 'kWh', u.factor_source, u.factor_version, u.factor_key, u.factor_value, u.factor_unit,
       u.kg_co2e, :data_source, u.data_quality
FROM unnest(CAST(:category AS smallint[]), CAST(:day AS date[]), CAST(:supplier_id AS bigint[]),
            CAST(:device_id AS bigint[]), CAST(:description AS text[]), CAST(:kwh AS float8[]),
            CAST(:factor_source AS text[]), CAST(:factor_version AS text[]), CAST(:factor_key AS text[]),
            CAST(:factor_value AS float8[]), CAST(:factor_unit AS text[]), CAST(:kg_co2e AS float8[]),
            CAST(:data_quality AS smallint[]))
     AS u(category, day, supplier_id, device_id, description, kwh, factor_source, factor_version, factor_key,
          factor_value, factor_unit, kg_co2e, data_quality)
ON CONFLICT (tenant_id, device_id, period_start) WHERE data_source = 'iot' AND device_id IS NOT NULL
DO UPDATE SET activity_quantity = EXCLUDED.activity_quantity,
              kg_co2e = EXCLUDED.activity_quantity * e.factor_value,
              data_quality = EXCLUDED.data_quality
    WHERE (e.activity_quantity, e.data_quality) IS DISTINCT FROM (EXCLUDED.activity_quantity, EXCLUDED.data_quality)
RETURNING (xmax = 0) AS inserted
"""


def _closed_ranges(conn: sa.Connection, tid: int) -> list[tuple[dt.date, dt.date]]:
    # Closed reporting periods exist once the factor-library migration (0002) is applied.
    if not conn.scalar(sa.text("SELECT to_regclass('public.periods') IS NOT NULL")):
        return []
    rows = conn.execute(
        sa.text("SELECT period_start, period_end FROM periods WHERE tenant_id = :t AND status = 'closed'"), {"t": tid}
    ).all()
    return [(r[0], r[1]) for r in rows]


def rollup_daily(engine: Engine, slug: str, *, since: dt.date | None = None) -> RollupResult:
    """Write one emission entry per device and UTC day of tenant ``slug``'s readings (from ``since``).

    Safe to re-run: an existing day is updated only when its kWh or data quality changed, and priced
    with the factor recorded when it was first written. Works with the admin engine or the tenant's
    read-write engine (row-level security then limits it to the tenant anyway).
    """
    result = RollupResult(tenant=slug)
    with engine.begin() as conn:
        tid = tenant_id(conn, slug)
        daily = pd.DataFrame(conn.execute(sa.text(_DAILY_SQL), {"t": tid, "since": since}).mappings().all(),
                             columns=["device_id", "day", "kwh", "readings"])
        if daily.empty:
            return result
        devs = pd.DataFrame(conn.execute(sa.text(
            "SELECT id AS device_id, device_key AS device, grid_region, category, supplier_id, expected_interval_s "
            "FROM devices WHERE tenant_id = :t"), {"t": tid}).mappings().all())
        existing = pd.DataFrame(conn.execute(sa.text(
            "SELECT device_id, period_start AS day, factor_source, factor_version, factor_key, factor_value, "
            "factor_unit FROM emission_entries WHERE tenant_id = :t AND data_source = 'iot' "
            "AND device_id IS NOT NULL AND (CAST(:since AS date) IS NULL OR period_start >= CAST(:since AS date))"),
            {"t": tid, "since": since}).mappings().all(),
            columns=["device_id", "day", "factor_source", "factor_version", "factor_key", "factor_value",
                     "factor_unit"])
        closed = _closed_ranges(conn, tid)

        df = daily.merge(devs, on="device_id", how="inner").merge(existing, on=["device_id", "day"], how="left")
        df["year"] = pd.to_datetime(df["day"]).dt.year
        # Factors for new days: one lookup per (region, year), not per row.
        pairs = df.loc[df["factor_value"].isna(), ["grid_region", "year"]].drop_duplicates()
        found = [(reg, yr, grid_factor(str(reg), int(yr)))
                 for reg, yr in zip(pairs["grid_region"].tolist(), pairs["year"].tolist(), strict=True)]
        lookup = pd.DataFrame(
            [{"grid_region": reg, "year": yr, "new_source": f.source, "new_version": f.version, "new_key": f.key,
              "new_value": f.value, "new_unit": f.unit, "new_year": f.year} for reg, yr, f in found if f is not None],
            columns=["grid_region", "year", "new_source", "new_version", "new_key", "new_value", "new_unit",
                     "new_year"])
        df = df.merge(lookup, on=["grid_region", "year"], how="left")
        is_new = df["factor_value"].isna()
        for col in ("source", "version", "key", "value", "unit"):
            df[f"factor_{col}"] = df[f"factor_{col}"].where(~is_new, df[f"new_{col}"])
        # Year of the factor each day is priced with (recorded ones too), for the temporal quality score.
        years = _grid_table()[["source", "version", "factor_key", "year"]].set_axis(
            ["factor_source", "factor_version", "factor_key", "factor_year"], axis=1)
        df = df.merge(years, on=["factor_source", "factor_version", "factor_key"], how="left")
        df["factor_year"] = df["factor_year"].fillna(df["year"])

        missing = df[df["factor_value"].isna()]
        if not missing.empty:
            agg = missing.groupby(["device", "grid_region"], as_index=False).agg(days=("day", "size"),
                                                                              kwh=("kwh", "sum"))
            result.missing_factors = [{"device": d, "region": reg, "days": int(n), "kwh": float(k)} for d, reg, n, k
                                      in agg[["device", "grid_region", "days", "kwh"]].itertuples(index=False)]
        df = df[df["factor_value"].notna()].copy()
        if closed:
            days = pd.to_datetime(df["day"])
            in_closed = np.zeros(len(df), dtype=bool)
            for start, end in closed:
                in_closed |= ((days >= pd.Timestamp(start)) & (days <= pd.Timestamp(end))).to_numpy()
            result.closed_days = [{"device": d, "day": str(day)} for d, day
                                  in df.loc[in_closed, ["device", "day"]].itertuples(index=False)]
            df = df[~in_closed]
        if df.empty:
            return result

        coverage = df["readings"] * df["expected_interval_s"] / 86_400
        df["data_quality"] = (2 + (df["year"] - df["factor_year"] > 3).astype(int)
                              + (coverage < 0.5).astype(int)).clip(1, 5)
        df["kg_co2e"] = df["kwh"] * df["factor_value"]
        supplier = df["supplier_id"].astype(object).where(df["supplier_id"].notna(), None)
        params = {
            "tenant_id": tid, "method": Method.AVERAGE_DATA.value, "data_source": DataSource.IOT.value,
            "category": df["category"].astype(int).tolist(), "day": df["day"].tolist(),
            "supplier_id": [None if v is None else int(v) for v in supplier],
            "device_id": df["device_id"].astype(int).tolist(),
            "description": ("Grid electricity metered by " + df["device"] + " (" + df["grid_region"] + "), "
                            + df["day"].astype(str)).tolist(),
            "kwh": df["kwh"].astype(float).tolist(), "factor_source": df["factor_source"].tolist(),
            "factor_version": df["factor_version"].tolist(), "factor_key": df["factor_key"].tolist(),
            "factor_value": df["factor_value"].astype(float).tolist(), "factor_unit": df["factor_unit"].tolist(),
            "kg_co2e": df["kg_co2e"].astype(float).tolist(), "data_quality": df["data_quality"].astype(int).tolist(),
        }
        # One set-based upsert; RETURNING tells inserted rows from updated ones (unchanged return nothing).
        flags = conn.execute(sa.text(_UPSERT_SQL), params).scalars().all()
        result.inserted = sum(bool(f) for f in flags)
        result.updated = len(flags) - result.inserted
        result.unchanged = len(df) - len(flags)
        result.kwh = float(df["kwh"].sum())
        result.kg_co2e = float(df["kg_co2e"].sum())
    return result


def device_status(engine: Engine, *, tenant: str | None = None, now: dt.datetime | None = None) -> pd.DataFrame:
    """One row per device: last seen, ``state`` (online, silent, never, revoked), readings today (UTC).

    With a tenant's engine (``scope3lib.db.connect()`` in a notebook or dashboard) row-level security
    limits the rows to that tenant; with the admin engine pass ``tenant`` (a slug). Columns: device,
    grid_region, category, supplier, expected_interval_s, last_seen, silent_s (seconds since last seen),
    state, readings_today.
    """
    now = now or dt.datetime.now(dt.UTC)
    midnight = dt.datetime.combine(now.date(), dt.time(), tzinfo=dt.UTC)
    sql = sa.text(
        """SELECT d.device_key AS device, d.grid_region, d.category, s.name AS supplier, d.expected_interval_s,
                  d.last_seen, d.revoked_at,
                  (SELECT count(*) FROM readings r WHERE r.device_id = d.id AND r.ts >= :midnight) AS readings_today
           FROM devices d
           JOIN tenants t ON t.id = d.tenant_id
           LEFT JOIN suppliers s ON s.id = d.supplier_id AND s.tenant_id = d.tenant_id
           WHERE CAST(:slug AS text) IS NULL OR t.slug = :slug
           ORDER BY d.device_key"""
    )
    with engine.connect() as conn:
        df = pd.DataFrame(conn.execute(sql, {"midnight": midnight, "slug": tenant}).mappings().all(),
                          columns=["device", "grid_region", "category", "supplier", "expected_interval_s",
                                   "last_seen", "revoked_at", "readings_today"])
    last = pd.to_datetime(df["last_seen"], utc=True)
    df["silent_s"] = (pd.Timestamp(now) - last).dt.total_seconds()
    limit = df["expected_interval_s"] * _ONLINE_SLACK + _LAST_SEEN_GRANULARITY_S
    df["state"] = np.select(
        [df["revoked_at"].notna(), last.isna(), df["silent_s"] <= limit],
        ["revoked", "never", "online"],
        default="silent",
    )
    df["readings_today"] = df["readings_today"].astype(int)
    return df.drop(columns=["revoked_at"])[
        ["device", "grid_region", "category", "supplier", "expected_interval_s", "last_seen", "silent_s", "state",
         "readings_today"]
    ]
