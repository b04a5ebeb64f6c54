"""What suppliers report about themselves: emissions, revenue, year, verification and the source document.

A disclosure is stored per supplier and year with its provenance (the document it comes from, who
recorded it and when) and is used at once for that supplier's spend in the open months (:mod:`.pricing`):
with scope 1 and 2 only, the hybrid method; with the supplier's upstream emissions too, supplier-specific.
Both count as primary data, so the inventory's primary-data share and data quality follow.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from .. import db
from ..accounting import currency
from ..errors import RowsRefused, SupplierError
from ..sheets import read_sheet
from . import records, spend
from .numbers import detect_decimal, parse_amounts

VERIFICATION = ("none", "limited", "reasonable")
COLUMNS = ("supplier", "year", "scope1_kg", "scope2_kg", "upstream_kg", "revenue", "currency", "verification",
           "source_document", "eeio_direct_share")
REQUIRED = ("supplier", "year", "scope1_kg", "scope2_kg", "revenue", "currency", "verification", "source_document")


def disclosures(engine: Engine) -> pd.DataFrame:
    """Every disclosure, with its supplier's name."""
    return db.read_frame(engine, "SELECT d.supplier_id, s.name AS supplier, d.year, d.scope1_kg, d.scope2_kg, "
                                 "d.upstream_kg, d.revenue, d.currency, d.verification, d.source_document, "
                                 "d.eeio_direct_share, d.recorded_by, d.created_at FROM supplier_disclosures d "
                                 "JOIN suppliers s ON s.id = d.supplier_id ORDER BY s.name, d.year")


def _check(rows: pd.DataFrame) -> tuple[list[dict[str, Any]], list[tuple[int, str]]]:
    problems: list[tuple[int, str]] = []
    numbers = {c: parse_amounts(rows[c].astype(str), detect_decimal(rows[c].astype(str)))
               for c in ("scope1_kg", "scope2_kg", "upstream_kg", "revenue", "eeio_direct_share") if c in rows}
    known = currency.known_currencies() | {"USD"}
    out = []
    for i, r in enumerate(rows.to_dict("records")):
        why = [f"{c} is required" for c in REQUIRED if not str(r.get(c, "")).strip()]
        year = str(r.get("year", "")).strip()
        if year and not (year.isdigit() and 1990 <= int(year) <= 2100):
            why.append(f"year {year!r} is not a year")
        for c, v in numbers.items():
            given = str(r.get(c, "")).strip()
            if given and not (np.isfinite(v[i]) and v[i] >= 0):
                why.append(f"{c} {given!r} is not a number of zero or more")
        if str(r.get("verification", "")).strip().lower() not in (*VERIFICATION, ""):
            why.append(f"verification {r['verification']!r} is not one of {', '.join(VERIFICATION)}")
        cur = str(r.get("currency", "")).strip().upper()
        if cur and cur not in known:
            why.append(f"currency {cur!r} has no exchange rates in the cited table")
        if "revenue" in numbers and numbers["revenue"][i] == 0:
            why.append("revenue must be more than zero (emissions are allocated by our share of it)")
        if "eeio_direct_share" in numbers and numbers["eeio_direct_share"][i] > 1:
            why.append("eeio_direct_share is a share from 0 to 1")
        problems += [(i, w) for w in why]
        out.append({"supplier": str(r.get("supplier", "")).strip(), "year": int(year) if year.isdigit() else None,
                    **{c: (float(v[i]) if np.isfinite(v[i]) else None) for c, v in numbers.items()},
                    "currency": cur, "verification": str(r.get("verification", "")).strip().lower(),
                    "source_document": str(r.get("source_document", "")).strip()})
    return out, problems


def record(engine: Engine, rows: pd.DataFrame | list[dict[str, Any]], *, source: str = "disclosures",
           replace: bool = False) -> int:
    """Store disclosures (rows with :data:`COLUMNS`; ``supplier`` an id, name or identifier), all or nothing, and
    re-price the open months of those suppliers' spend. A supplier's year already recorded is refused unless
    ``replace``. Returns how many were stored."""
    with engine.begin() as conn:
        return record_on(conn, rows, source=source, replace=replace)


def check_rows(rows: pd.DataFrame) -> list[tuple[int, str]]:
    """The problems of disclosure rows (columns of :data:`COLUMNS`) as ``(row index from 0, reason)``."""
    return _check(rows.astype(object).fillna(""))[1]


def record_on(conn: Connection, rows: pd.DataFrame | list[dict[str, Any]], *, source: str = "disclosures",
              replace: bool = False) -> int:
    """:func:`record` inside the caller's transaction (an approved supplier submission records its disclosure
    with its decision, all or nothing)."""
    frame = pd.DataFrame(rows).astype(object).fillna("") if not isinstance(rows, pd.DataFrame) else rows.fillna("")
    checked, problems = _check(frame)
    ids: list[int | None] = []
    for i, r in enumerate(checked):
        try:
            ids.append(int(records.find(conn, r["supplier"])["id"]) if r["supplier"] else None)
        except SupplierError as exc:
            problems.append((i, str(exc)))
            ids.append(None)
    if problems:
        raise RowsRefused(source, sorted((i + 2, w) for i, w in problems), len(checked), "disclosures")
    sql = ("INSERT INTO supplier_disclosures (tenant_id, supplier_id, year, scope1_kg, scope2_kg, upstream_kg, "
           "revenue, currency, verification, source_document, eeio_direct_share, recorded_by) VALUES "
           "(tenant_of(current_user), :s, :year, :scope1_kg, :scope2_kg, :upstream_kg, :revenue, :currency, "
           ":verification, :source_document, :eeio_direct_share, :who)")
    if replace:
        sql += (" ON CONFLICT (tenant_id, supplier_id, year) DO UPDATE SET scope1_kg = EXCLUDED.scope1_kg, "
                "scope2_kg = EXCLUDED.scope2_kg, upstream_kg = EXCLUDED.upstream_kg, revenue = EXCLUDED.revenue, "
                "currency = EXCLUDED.currency, verification = EXCLUDED.verification, source_document = "
                "EXCLUDED.source_document, eeio_direct_share = EXCLUDED.eeio_direct_share, recorded_by = "
                "EXCLUDED.recorded_by, created_at = now()")
    try:
        conn.execute(sa.text(sql), [{"upstream_kg": None, "eeio_direct_share": None, **r, "s": s,
                                     "who": records.actor()} for r, s in zip(checked, ids, strict=True)])
    except sa.exc.IntegrityError as exc:
        if "uq_supplier_disclosures_supplier_year" in str(exc.orig):
            raise SupplierError(f"{source}: a supplier's year is recorded already; give replace=True "
                                "(--replace) to replace it") from None
        raise
    spend.reapply(conn, f"supplier disclosures from {Path(source).name}")
    return len(checked)


def import_file(engine: Engine, path: str | Path, *, replace: bool = False) -> int:
    """:func:`record` on a CSV or .xlsx file with the columns of :data:`COLUMNS`."""
    df = read_sheet(path, "disclosure file")
    missing = [c for c in REQUIRED if c not in df]
    if missing:
        raise RowsRefused(str(path), [(1, f"missing column(s) {', '.join(missing)}; a disclosure file has "
                                         f"{', '.join(COLUMNS)}")], 0, "disclosures")
    return record(engine, df, source=str(path), replace=replace)
