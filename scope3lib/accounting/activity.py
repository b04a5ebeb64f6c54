"""Activity data into the inventory: calculate rows and add them to a tenant's entries, all or nothing.

Every bad row is reported with its line (the header is line 1) and reason in one
:class:`~scope3lib.errors.ActivityImportError`; then nothing is written.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ..categories import DataSource, Method
from ..errors import ActivityImportError, Scope3Error
from ..factors import lookup
from . import entries
from .calculation import calculate, read_activity_file
from .periods import closed_periods, pg_message, tenant_of


@dataclass(frozen=True)
class ImportSummary:
    rows: int
    kg_co2e: float


class _Refusals:
    """The first reason each row is refused; later checks never overwrite an earlier one."""

    def __init__(self, reasons: np.ndarray) -> None:
        self.reasons = reasons

    def refuse(self, mask: np.ndarray, message: np.ndarray | str) -> None:
        mask = mask & (self.reasons == "")
        self.reasons[mask] = message if isinstance(message, str) else np.asarray(message, dtype=object)[mask]


@dataclass(frozen=True)
class _Tenant:
    id: int
    suppliers: dict[str, int]
    closed: list[tuple[str, object, object]]
    factors: pd.DataFrame


def _tenant(conn: Connection) -> _Tenant:
    suppliers = {str(name): int(i) for name, i in conn.execute(sa.text("SELECT name, id FROM suppliers")).all()}
    return _Tenant(tenant_of(conn), suppliers, list(closed_periods(conn)), lookup.factor_table(conn))


def _check(rows: pd.DataFrame, calc: pd.DataFrame, tenant: _Tenant) -> tuple[_Refusals, pd.Series, pd.Series,
                                                                             pd.Series]:
    """Refusals beyond the calculation's: periods (required, ordered, not closed) and suppliers (known; required
    for supplier data). Returns them with the parsed start and end dates and the supplier ids."""
    r = _Refusals(calc["error"].to_numpy(dtype=object).copy())
    start = pd.to_datetime(rows["period_start"].astype(str).str.strip(), format="%Y-%m-%d", errors="coerce")
    end = pd.to_datetime(rows["period_end"].astype(str).str.strip(), format="%Y-%m-%d", errors="coerce")
    r.refuse(start.isna().to_numpy(), "period_start is required (YYYY-MM-DD)")
    r.refuse(end.isna().to_numpy(), "period_end is required (YYYY-MM-DD)")
    r.refuse((end < start).to_numpy(), "period_end is before period_start")
    for label, s, e in tenant.closed:
        inside = ((start >= pd.Timestamp(s)) & (start <= pd.Timestamp(e))).to_numpy()  # type: ignore[arg-type]
        r.refuse(inside, f"period {label} is closed: its entries cannot change")
    names = rows["supplier"].astype(str).str.strip()
    ids = names.map(tenant.suppliers)
    unknown = np.array([f"unknown supplier {s!r} (add it to the tenant's suppliers first: `scope3 suppliers "
                        "import`)" for s in names], dtype=object)
    r.refuse((names != "").to_numpy() & ids.isna().to_numpy(), unknown)
    needs = calc["method"].astype(str).str.strip().str.lower().isin(
        [Method.SUPPLIER_SPECIFIC.value, Method.HYBRID.value]).to_numpy()
    r.refuse(needs & (names == "").to_numpy(), "supplier is required for supplier-specific and hybrid rows")
    return r, start, end, ids


def _entry_table(rows: pd.DataFrame, calc: pd.DataFrame, tid: int, start: pd.Series, end: pd.Series,
                 supplier_ids: pd.Series, data_source: str) -> pd.DataFrame:
    """The calculated rows in the columns of ``emission_entries``."""
    n = len(rows)
    desc = rows["description"].astype(str) if "description" in rows else pd.Series([""] * n, index=rows.index)
    return pd.DataFrame({
        "tenant_id": tid,
        "category": calc["category"].astype(int).to_numpy(),
        "period_start": start.dt.date.to_numpy(),
        "period_end": end.dt.date.to_numpy(),
        "method": calc["method"].astype(str).str.strip().str.lower().to_numpy(),
        "supplier_id": supplier_ids.astype("Int64").to_numpy(),
        "description": desc.where(desc != "", None).to_numpy(),
        "activity_quantity": pd.to_numeric(rows["quantity"], errors="coerce").to_numpy(),
        "activity_unit": rows["unit"].astype(str).str.strip().replace("", None).to_numpy(),
        "spend": pd.to_numeric(rows["spend"], errors="coerce").round(2).to_numpy(),
        "spend_currency": rows["currency"].astype(str).str.strip().str.upper().replace("", None).to_numpy(),
        "spend_year": pd.to_numeric(rows["spend_year"], errors="coerce").astype("Int64").to_numpy(),
        "factor_source": calc["factor_source"].astype(str).replace("", None).to_numpy(),
        "factor_version": calc["factor_version"].to_numpy(),
        "factor_key": rows["factor_key"].astype(str).str.strip().replace("", None).to_numpy(),
        "factor_value": calc["factor_value"].to_numpy(),
        "factor_unit": calc["factor_unit"].to_numpy(),
        "kg_co2e": calc["kg_co2e"].to_numpy(),
        "data_source": data_source,
        "data_quality": calc["data_quality"].astype(int).to_numpy(),
    })


def import_activity(engine: Engine, rows: pd.DataFrame, *, source: str = "activity rows",
                    data_source: str = DataSource.IMPORT.value) -> ImportSummary:
    """Calculate ``rows`` (the activity format of :mod:`scope3lib.accounting.calculation`) and add them to the
    tenant's inventory, all or nothing.

    Every bad row is reported with its line (the header is line 1) and reason in one
    :class:`~scope3lib.errors.ActivityImportError`; then nothing is written. Rows need a period
    (period_start, period_end), and a supplier named in them must be one of the tenant's suppliers.
    """
    with engine.connect() as conn:
        tenant = _tenant(conn)
    work = rows.assign(data_source=data_source) if "data_source" not in rows else rows
    calc = calculate(work, tenant.factors, data_source=data_source)
    refusals, start, end, supplier_ids = _check(rows, calc, tenant)
    bad = np.flatnonzero(refusals.reasons != "")
    if bad.size:
        raise ActivityImportError(source, [(int(i) + 2, str(refusals.reasons[i])) for i in bad], len(rows))
    table = _entry_table(rows, calc, tenant.id, start, end, supplier_ids, data_source)
    try:
        with engine.begin() as conn:
            entries.insert(conn, table)
    except sa.exc.DBAPIError as exc:
        raise Scope3Error(f"{source}: nothing imported: {pg_message(exc)}") from exc
    return ImportSummary(rows=len(rows), kg_co2e=float(table["kg_co2e"].sum()))


def import_activity_file(engine: Engine, path: str) -> ImportSummary:
    """:func:`import_activity` on a CSV or ``.xlsx`` file."""
    return import_activity(engine, read_activity_file(path), source=str(path))
