"""Reporting periods, closing them, and recalculating a period with a new factor dataset.

Closing a period freezes its emission entries: the database refuses to insert, change or delete them, for
every role (trigger of migration 0002). A new factor dataset reaches a closed period only through
:func:`recalculate` with ``apply=True``, which records why, and the per-category report, in
``period_recalculations`` in the same transaction.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from .. import db
from ..categories import Method, category_label
from ..errors import InvalidArgument, PeriodError, Scope3Error
from ..factors import lookup
from . import entries
from .calculation import calculate


def tenant_of(conn: Connection) -> int:
    """The id of the tenant whose role ``conn`` logs in as; refused for the admin connection."""
    tid = conn.scalar(sa.text("SELECT tenant_of(current_user)"))
    if tid is None:
        raise Scope3Error("this needs a tenant's connection (scope3lib.connect()), not the admin one")
    return int(tid)


def pg_message(exc: sa.exc.DBAPIError) -> str:
    """PostgreSQL's own one-line message of a refused statement (e.g. a closed period's trigger)."""
    diag = getattr(exc.orig, "diag", None)
    primary = getattr(diag, "message_primary", None)
    return str(primary or str(exc.orig).splitlines()[0])


def periods(engine: Engine | Connection) -> pd.DataFrame:
    """The tenant's reporting periods: label, period_start, period_end, is_base_year, status, closed_at."""
    return db.read_frame(engine, "SELECT id, label, period_start, period_end, is_base_year, status, closed_at "
                                 "FROM periods ORDER BY period_start")


def create_period(engine: Engine, label: str, start: dt.date | str, end: dt.date | str,
                  base_year: bool = False) -> int:
    """Create an open reporting period (periods of a tenant may not overlap); returns its id."""
    s, e = pd.Timestamp(start).date(), pd.Timestamp(end).date()
    if e < s:
        raise InvalidArgument(f"period {label!r} ends ({e}) before it starts ({s})")
    try:
        with engine.begin() as conn:
            return int(conn.scalar(
                sa.text("INSERT INTO periods (tenant_id, label, period_start, period_end, is_base_year) "
                        "VALUES (:t, :l, :s, :e, :b) RETURNING id"),
                {"t": tenant_of(conn), "l": label, "s": s, "e": e, "b": base_year},
            ))
    except sa.exc.DBAPIError as exc:
        raise PeriodError(f"cannot create period {label!r}: {pg_message(exc)}") from exc


def _period(conn: Connection, label: str) -> Any:
    row = conn.execute(sa.text("SELECT id, label, period_start, period_end, status, is_base_year FROM periods "
                               "WHERE label = :l"), {"l": label}).first()
    if row is None:
        raise PeriodError(f"no period {label!r} (see scope3lib.inventory.periods)")
    return row


def close_period(engine: Engine, label: str) -> None:
    """Close the period: from now on the database refuses any change to its entries."""
    with engine.begin() as conn:
        p = _period(conn, label)
        if p.status == "closed":
            raise PeriodError(f"period {label!r} is already closed")
        conn.execute(sa.text("UPDATE periods SET status = 'closed' WHERE id = :i"), {"i": p.id})


def closed_periods(conn: Connection) -> list[tuple[str, dt.date, dt.date]]:
    """(label, start, end) of the tenant's closed periods."""
    rows = conn.execute(sa.text("SELECT label, period_start, period_end FROM periods WHERE status = 'closed'"))
    return [(str(r[0]), r[1], r[2]) for r in rows]


# --- recalculation -------------------------------------------------------------------------------


@dataclass
class Recalculation:
    """What applying a factor dataset to a period changes, per category, against the base year."""

    period: str
    source: str
    version: str
    threshold: float
    base_period: str
    base_kg_co2e: float
    by_category: pd.DataFrame  # kg_before, kg_after, change_kg, change_of_base, significant
    entries_recalculated: int
    entries_kept: pd.DataFrame  # id, reason: entries of the source that could not be recalculated
    applied: bool

    @property
    def total_change_kg(self) -> float:
        return float(self.by_category["change_kg"].sum())

    @property
    def significant(self) -> bool:
        """True when the total change reaches the threshold share of base-year emissions."""
        return bool(self.base_kg_co2e and abs(self.total_change_kg) / abs(self.base_kg_co2e) >= self.threshold)

    def to_json(self) -> dict[str, Any]:
        return {
            "period": self.period, "source": self.source, "version": self.version, "threshold": self.threshold,
            "base_period": self.base_period, "base_kg_co2e": self.base_kg_co2e,
            "total_change_kg": self.total_change_kg, "significant": self.significant,
            "entries_recalculated": self.entries_recalculated, "entries_kept": len(self.entries_kept),
            "by_category": json.loads(self.by_category.reset_index().to_json(orient="records")),
        }


_RECALCULABLE = (Method.SPEND_BASED.value, Method.AVERAGE_DATA.value, Method.DISTANCE_BASED.value)


def _base_year_kg(engine: Engine, conn: Connection, p: Any, current: pd.DataFrame) -> tuple[str, float]:
    """The base-year period's label and total (this period's when no period is marked base year)."""
    base = conn.execute(sa.text("SELECT label, period_start, period_end FROM periods WHERE is_base_year "
                                "ORDER BY period_start LIMIT 1")).first()
    if base is None:
        return str(p.label), float(current["kg_co2e"].sum())
    return str(base.label), float(entries.read(engine, base.period_start, base.period_end)["kg_co2e"].sum())


def _activity_rows(recalc: pd.DataFrame, source: str, version: str) -> pd.DataFrame:
    """Stored entries back in the activity format of :func:`calculate`, pinned to the new version."""
    return pd.DataFrame({
        "category": recalc["category"], "method": recalc["method"], "quantity": recalc["activity_quantity"],
        "unit": recalc["activity_unit"].fillna(""), "factor_source": source, "factor_key": recalc["factor_key"],
        "factor_version": version, "spend": recalc["spend"], "currency": recalc["spend_currency"].fillna(""),
        "spend_year": recalc["spend_year"], "supplier": recalc["supplier"].fillna(""),
        "period_start": recalc["period_start"].astype(str), "period_end": recalc["period_end"].astype(str),
        "data_source": recalc["data_source"],
    })


def _recalculated(current: pd.DataFrame, source: str, version: str,
                  factors: pd.DataFrame) -> tuple[pd.DataFrame, list[tuple[int, str]]]:
    """The entries that take the new factor (with new_kg, new_value, new_unit, new_quality) and those kept
    (id, reason)."""
    mine = current[current["factor_source"] == source]
    recalc = mine[mine["method"].isin(_RECALCULABLE)]
    kept = [(int(i), "hybrid entries keep their values: the supplier part is not stored with the entry")
            for i in mine.loc[mine["method"] == Method.HYBRID.value, "id"]]
    rows = _activity_rows(recalc, source, version)
    new = calculate(rows, factors) if len(rows) else rows.assign(kg_co2e=[], error=[])
    failed = (new["error"] != "").to_numpy()
    kept += [(int(i), str(r)) for i, r in zip(recalc.loc[failed, "id"], new.loc[failed, "error"], strict=True)]
    ok = new.loc[~failed]
    good = recalc[~failed].assign(
        new_kg=ok["kg_co2e"].to_numpy(), new_value=ok["factor_value"].to_numpy(),
        new_unit=ok["factor_unit"].to_numpy(), new_quality=ok["data_quality"].astype("int64").to_numpy(),
    )
    return good, kept


def _category_report(current: pd.DataFrame, good: pd.DataFrame, base_kg: float, threshold: float) -> pd.DataFrame:
    before = current.groupby("category")["kg_co2e"].sum()
    delta = (good["new_kg"] - good["kg_co2e"]).groupby(good["category"]).sum()
    report = pd.DataFrame({"kg_before": before}).join(delta.rename("change_kg"), how="left").fillna({"change_kg": 0.0})
    report["kg_after"] = report["kg_before"] + report["change_kg"]
    report["change_of_category"] = (report["change_kg"] / report["kg_before"].where(report["kg_before"] != 0)).round(6)
    report["change_of_base"] = (report["change_kg"] / base_kg if base_kg else np.nan)
    report["significant"] = report["change_of_base"].abs() >= threshold
    report.insert(0, "label", [category_label(int(c)) for c in report.index])
    return report[["label", "kg_before", "kg_after", "change_kg", "change_of_category", "change_of_base",
                   "significant"]]


def _apply(engine: Engine, p: Any, result: Recalculation, good: pd.DataFrame, reason: str) -> None:
    """Write the new values with the report, in one transaction: the only way a closed period changes."""
    changes = good[["id"]].assign(factor_value=good["new_value"], factor_unit=good["new_unit"],
                                  kg_co2e=good["new_kg"], data_quality=good["new_quality"])
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("SELECT begin_period_recalculation(:p, :s, :v, :r, CAST(:j AS jsonb))"),
                         {"p": p.id, "s": result.source, "v": result.version, "r": reason,
                          "j": json.dumps(result.to_json())})
            entries.reprice(conn, result.version, changes)
    except sa.exc.DBAPIError as exc:
        raise PeriodError(f"recalculation of {result.period!r} refused: {pg_message(exc)}") from exc


def recalculate(engine: Engine, period: str, source: str, version: str, *, threshold: float = 0.05,
                apply: bool = False, reason: str | None = None) -> Recalculation:
    """Recalculate the period's entries of factor dataset ``source`` with its version ``version``.

    Without ``apply`` nothing changes: the report shows, per category, the emissions before and after
    and the change as a share of base-year emissions (the base-year period's total, or this period's
    when no period is marked base year); ``significant`` marks changes at or above ``threshold``
    (5% by default, the usual base-year recalculation threshold). With ``apply=True`` (and a
    ``reason``) the entries are updated in one transaction that records the report, which is the only
    way the database lets entries of a closed period change.

    Spend-based, average-data and distance-based entries are recalculated from their stored activity
    or spend. Hybrid entries keep their values (the supplier part is not stored with them) and are
    listed in ``entries_kept`` with the reason, as are entries whose factor the new version lacks.
    """
    if not 0 < threshold < 1:
        raise InvalidArgument("threshold is a share of base-year emissions between 0 and 1, e.g. 0.05")
    if apply and (not reason or not reason.strip()):
        raise InvalidArgument("applying a recalculation needs a reason (it is recorded with the report)")
    with engine.connect() as conn:
        p = _period(conn, period)
        current = entries.read(conn, p.period_start, p.period_end)
        factors = lookup.factor_table(conn)
        base_label, base_kg = _base_year_kg(engine, conn, p, current)
    if not ((factors["source"] == source) & (factors["version"] == version)).any():
        raise Scope3Error(f"no factor dataset {source} {version} (see `scope3 factors datasets`)")
    good, kept = _recalculated(current, source, version, factors)
    result = Recalculation(
        period=p.label, source=source, version=version, threshold=threshold, base_period=base_label,
        base_kg_co2e=base_kg, by_category=_category_report(current, good, base_kg, threshold),
        entries_recalculated=len(good), entries_kept=pd.DataFrame(kept, columns=["id", "reason"]), applied=False,
    )
    if apply:
        _apply(engine, p, result, good, str(reason))
        result.applied = True
    return result
