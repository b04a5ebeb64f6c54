"""The one reader and writer of ``emission_entries``.

Every change to a tenant's inventory goes through a function here, so there is one place that knows the
table's columns, how values reach PostgreSQL, and what the database refuses (closed periods, entries of
another tenant, the ledger trigger that logs each change). Callers compute; this module writes:

- :func:`insert`: new entries (activity imports, demo data), all in the caller's transaction.
- :func:`upsert_meter_days`: one entry per device and UTC day from the meter rollup; an existing day keeps
  the factor it was priced with and only its kWh (and so its kg) and data quality change.
- :func:`reprice`: new factor values for existing entries (a recalculation with a newer dataset).
- :func:`apply_estimates`: ML estimates on a supplier's open-period spend-based entries.

Functions take a :class:`~sqlalchemy.engine.Connection` inside the caller's transaction: the caller
decides what is atomic (an import is all or nothing; a recalculation commits with its report).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from .. import db, frames
from ..categories import DataSource, Method
from . import currency

#: Columns an inserted entry may set (``id`` and ``created_at`` come from the database).
COLUMNS = (
    "tenant_id", "category", "period_start", "period_end", "method", "supplier_id", "device_id", "description",
    "activity_quantity", "activity_unit", "spend", "spend_currency", "spend_year", "factor_source",
    "factor_version", "factor_key", "factor_value", "factor_unit", "kg_co2e", "data_source", "data_quality",
)  # fmt: skip

_READ_COLUMNS = (
    "e.id, e.category, e.period_start, e.period_end, e.method, e.supplier_id, s.name AS supplier, e.device_id, "
    "e.description, e.activity_quantity, e.activity_unit, e.spend, e.spend_currency, e.spend_year, "
    "e.factor_source, e.factor_version, e.factor_key, e.factor_value, e.factor_unit, e.kg_co2e, e.data_source, "
    "e.data_quality"
)


def read(bind: Engine | Connection, start: dt.date | str | None = None,
         end: dt.date | str | None = None) -> pd.DataFrame:
    """The emission entries whose period starts in ``[start, end]`` (all when None), with the supplier's
    name and ``spend_usd`` (spend in US dollars of its year; NaN without spend or a known rate)."""
    where, params = [], {}
    if start is not None:
        where.append("e.period_start >= :start")
        params["start"] = pd.Timestamp(start).date()
    if end is not None:
        where.append("e.period_start <= :end")
        params["end"] = pd.Timestamp(end).date()
    sql = (f"SELECT {_READ_COLUMNS} FROM emission_entries e LEFT JOIN suppliers s ON s.id = e.supplier_id"
           + (f" WHERE {' AND '.join(where)}" if where else "") + " ORDER BY e.period_start, e.id")
    df = db.read_frame(bind, sql, params)
    df["spend"] = pd.to_numeric(df["spend"], errors="coerce").astype("float64")
    df["spend_usd"] = df["spend"].to_numpy() * currency.usd_per_unit(df["spend_currency"], df["spend_year"])
    return df


def insert(conn: Connection, frame: pd.DataFrame) -> int:
    """Insert one entry per row of ``frame`` (columns: a subset of :data:`COLUMNS`, ``tenant_id`` included);
    returns how many. Fails as a whole when the database refuses any row."""
    unknown = sorted(set(frame.columns) - set(COLUMNS))
    if unknown:
        raise ValueError(f"not columns of emission_entries: {', '.join(unknown)}")
    if frame.empty:
        return 0
    cols = list(frame.columns)
    conn.execute(sa.text(f"INSERT INTO emission_entries ({', '.join(cols)}) VALUES "
                         f"({', '.join(':' + c for c in cols)})"), frames.rows(frame))
    return len(frame)


_UPSERT_METER_DAYS = """
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

_INTEGER_COLUMNS = {"category", "supplier_id", "device_id", "data_quality"}
METER_DAY_COLUMNS = ("category", "day", "supplier_id", "device_id", "description", "kwh", "factor_source",
                     "factor_version", "factor_key", "factor_value", "factor_unit", "kg_co2e", "data_quality")


def upsert_meter_days(conn: Connection, tenant_id: int, days: pd.DataFrame) -> tuple[int, int]:
    """Write one ``iot`` entry per row of ``days`` (columns :data:`METER_DAY_COLUMNS`), method average-data.

    A day already written keeps the factor recorded with it (never silently re-priced): only its kWh, its
    kg (kWh times the recorded factor) and its data quality change, and only when they differ. Returns
    (inserted, updated); rows that changed nothing are neither.
    """
    params: dict[str, Any] = {"tenant_id": tenant_id, "method": Method.AVERAGE_DATA.value,
                              "data_source": DataSource.IOT.value}
    for col in METER_DAY_COLUMNS:
        column = days[col].astype("Int64") if col in _INTEGER_COLUMNS else days[col]
        params[col] = frames.values(column)
    # One set-based upsert; RETURNING tells inserted rows from updated ones (unchanged return nothing).
    flags = conn.execute(sa.text(_UPSERT_METER_DAYS), params).scalars().all()
    inserted = sum(bool(f) for f in flags)
    return inserted, len(flags) - inserted


def reprice(conn: Connection, version: str, changes: pd.DataFrame) -> int:
    """Give existing entries a new factor: ``changes`` has id, factor_value, factor_unit, kg_co2e and
    data_quality per entry; every entry takes factor version ``version``. Returns how many changed."""
    if changes.empty:
        return 0
    result = conn.execute(
        sa.text(
            "UPDATE emission_entries e SET factor_version = :v, factor_value = u.value, "
            "factor_unit = u.unit, kg_co2e = u.kg, data_quality = u.quality "
            "FROM unnest(CAST(:ids AS bigint[]), CAST(:vals AS double precision[]), "
            "CAST(:units AS text[]), CAST(:kgs AS double precision[]), CAST(:qs AS smallint[])) "
            "AS u(id, value, unit, kg, quality) WHERE e.id = u.id"
        ),
        {"v": version, "ids": changes["id"].astype("int64").tolist(),
         "vals": changes["factor_value"].astype(float).tolist(), "units": changes["factor_unit"].astype(str).tolist(),
         "kgs": changes["kg_co2e"].astype(float).tolist(), "qs": changes["data_quality"].astype(int).tolist()},
    )
    return int(result.rowcount or 0)


_APPLY_ESTIMATES = sa.text("""
UPDATE emission_entries e
   SET factor_source = :source, factor_version = m.version, factor_value = m.estimate,
       kg_co2e = e.kg_co2e * m.estimate / e.factor_value, data_source = :ml, data_quality = m.dq,
       description = split_part(coalesce(e.description, ''), ' | ML ', 1) || ' | ML ' || m.note
  FROM unnest(CAST(:ids AS bigint[]), CAST(:estimates AS float8[]), CAST(:dqs AS smallint[]),
              CAST(:versions AS text[]), CAST(:notes AS text[])) AS m(supplier_id, estimate, dq, version, note)
 WHERE e.supplier_id = m.supplier_id
   AND e.method = :spend_based
   AND e.factor_source = ANY(CAST(:replaceable AS text[]))
   AND e.factor_value > 0
   AND NOT EXISTS (SELECT 1 FROM periods p WHERE p.tenant_id = e.tenant_id AND p.status = 'closed'
                   AND e.period_start <= p.period_end AND e.period_end >= p.period_start)
   -- An entry that already holds this estimate is left alone: every UPDATE appends a ledger leaf, and a
   -- nightly run that rewrote unchanged entries would grow the ledger by the whole estimated inventory
   -- each night (and x * a / a can drift kg_co2e by an ulp).
   AND (e.factor_source, e.factor_version, e.factor_value, e.data_source, e.data_quality,
        e.description = split_part(coalesce(e.description, ''), ' | ML ', 1) || ' | ML ' || m.note)
       IS DISTINCT FROM (:source, m.version, m.estimate, :ml, m.dq, true)
""")


def apply_estimates(conn: Connection, estimates: pd.DataFrame, *, source: str,
                    replaceable: Sequence[str]) -> int:
    """Price each supplier's open-period spend-based entries with its estimate (kg CO2e per USD).

    ``estimates`` has supplier_id, estimate, data_quality, model_version and note per supplier; entries whose
    factor comes from one of ``replaceable`` (the EEIO source, or ``source`` itself) are re-priced in
    proportion and marked ``data_source='ml'`` with factor source ``source``. Entries in closed periods and
    entries that already hold the same estimate are left alone. Returns how many changed.
    """
    if estimates.empty:
        return 0
    params: Mapping[str, Any] = {
        "ids": estimates["supplier_id"].astype("int64").tolist(),
        "estimates": estimates["estimate"].astype(float).tolist(),
        "dqs": estimates["data_quality"].astype(int).tolist(),
        "versions": estimates["model_version"].astype(str).tolist(),
        "notes": estimates["note"].astype(str).tolist(),
        "source": source, "ml": DataSource.ML.value, "spend_based": Method.SPEND_BASED.value,
        "replaceable": list(replaceable),
    }
    return int(conn.execute(_APPLY_ESTIMATES, params).rowcount)


def insert_returning_ids(conn: Connection, frame: pd.DataFrame) -> list[int]:
    """:func:`insert`, returning the new entries' ids in the order of ``frame``'s rows (ids are drawn from the
    table's sequence first, so the order is certain)."""
    if frame.empty:
        return []
    ids = [int(i) for i in conn.execute(sa.text(
        "SELECT nextval(pg_get_serial_sequence('emission_entries', 'id')) FROM generate_series(1, :n)"),
        {"n": len(frame)}).scalars()]
    cols = ["id", *frame.columns]
    rows = frames.rows(frame.assign(id=ids)[cols])
    # One statement (not one per row): the ledger trigger runs once per statement and appends every leaf.
    arrays = ", ".join(f"CAST(:{c} AS {_SQL_TYPES[c]}[])" for c in cols)
    conn.execute(sa.text(f"INSERT INTO emission_entries ({', '.join(cols)}) OVERRIDING SYSTEM VALUE "
                         f"SELECT * FROM unnest({arrays})"), {c: [r[c] for r in rows] for c in cols})
    return ids


#: Columns :func:`update_values` may change.
UPDATABLE = ("category", "method", "supplier_id", "description", "spend", "spend_currency", "spend_year",
             "activity_quantity", "activity_unit", "factor_source", "factor_version", "factor_key", "factor_value",
             "factor_unit", "kg_co2e", "data_source", "data_quality")


def update_values(conn: Connection, frame: pd.DataFrame) -> int:
    """Give the entries ``frame.id`` the other columns of ``frame`` (a subset of :data:`UPDATABLE`); only rows whose
    values differ are written (every UPDATE appends a ledger leaf). Returns how many changed."""
    cols = [c for c in frame.columns if c != "id"]
    unknown = sorted(set(cols) - set(UPDATABLE))
    if unknown:
        raise ValueError(f"not updatable columns of emission_entries: {', '.join(unknown)}")
    if frame.empty:
        return 0
    sets = ", ".join(f"{c} = u.{c}" for c in cols)
    differs = " OR ".join(f"e.{c} IS DISTINCT FROM u.{c}" for c in cols)
    arrays = ", ".join(f"CAST(:{c} AS {_SQL_TYPES[c]}[])" for c in ["id", *cols])
    # One statement per batch: the ledger trigger then appends the batch's leaves in one go.
    rows = frames.rows(frame[["id", *cols]])
    params = {c: [r[c] for r in rows] for c in ["id", *cols]}
    result = conn.execute(sa.text(f"UPDATE emission_entries e SET {sets} FROM unnest({arrays}) AS u(id, "
                                  f"{', '.join(cols)}) WHERE e.id = u.id AND ({differs})"), params)
    return int(result.rowcount or 0)


_SQL_TYPES = {
    "id": "bigint", "tenant_id": "bigint", "category": "smallint", "period_start": "date", "period_end": "date",
    "method": "text", "supplier_id": "bigint", "device_id": "bigint", "description": "text",
    "activity_quantity": "float8", "activity_unit": "text", "spend": "numeric", "spend_currency": "text",
    "spend_year": "smallint", "factor_source": "text", "factor_version": "text", "factor_key": "text",
    "factor_value": "float8", "factor_unit": "text", "kg_co2e": "float8", "data_source": "text",
    "data_quality": "smallint",
}


def delete(conn: Connection, ids: Sequence[int]) -> int:
    """Delete the entries ``ids`` (the ledger records each deletion, with the transaction's reason)."""
    if not ids:
        return 0
    result = conn.execute(sa.text("DELETE FROM emission_entries WHERE id = ANY(CAST(:ids AS bigint[]))"),
                          {"ids": [int(i) for i in ids]})
    return int(result.rowcount or 0)


def reassign_supplier(conn: Connection, old: int, new: int, *, reason: str) -> int:
    """Move the open-period entries of supplier ``old`` to ``new`` (a merge of two records of one company); entries
    of closed periods keep theirs. Returns how many moved."""
    from ..ledger import log as ledger_log  # the ledger's database half loads only where entries change

    ledger_log.annotate(conn, "correct", reason)
    result = conn.execute(sa.text(
        "UPDATE emission_entries e SET supplier_id = :new WHERE supplier_id = :old AND NOT EXISTS "
        "(SELECT 1 FROM periods p WHERE p.tenant_id = e.tenant_id AND p.status = 'closed' "
        "AND e.period_start <= p.period_end AND e.period_end >= p.period_start)"), {"old": old, "new": new})
    return int(result.rowcount or 0)
