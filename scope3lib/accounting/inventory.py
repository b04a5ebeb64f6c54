"""The inventory an analyst reports: by category, supplier, period and method, and the GHG Protocol summary.

Every function takes an engine. With a tenant's engine (``scope3lib.db.connect()`` in a notebook,
the tenant's own PostgreSQL role) row-level security limits every query to that tenant's rows;
nothing here filters by tenant in Python.

Periods: ``create_period`` and ``close_period``. Closing freezes the period's entries: the database
refuses to insert, change or delete them, for every role (trigger of migration 0002). A new factor
dataset reaches a closed period only through :func:`recalculate` with ``apply=True``, which records
why, and the per-category report, in ``period_recalculations`` in the same transaction.
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

from ..categories import CATEGORIES, DataSource, Method, category_label
from ..errors import ActivityImportError, InvalidArgument, PeriodError, Scope3Error
from ..factors.store import factor_table
from . import currency, uncertainty
from .calculation import calculate, read_activity_file
from .quality import category_quality

T_PER_KG = 1e-3

_ENTRY_COLUMNS = (
    "e.id, e.category, e.period_start, e.period_end, e.method, e.supplier_id, s.name AS supplier, e.device_id, "
    "e.description, e.activity_quantity, e.activity_unit, e.spend, e.spend_currency, e.spend_year, "
    "e.factor_source, e.factor_version, e.factor_key, e.factor_value, e.factor_unit, e.kg_co2e, e.data_source, "
    "e.data_quality"
)


def _read(engine: Engine | Connection, sql: str, params: dict[str, Any] | None = None) -> pd.DataFrame:
    if isinstance(engine, Connection):
        return pd.read_sql(sa.text(sql), engine, params=params)
    with engine.connect() as conn:
        return pd.read_sql(sa.text(sql), conn, params=params)


def entries(engine: Engine | Connection, start: dt.date | str | None = None,
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
    sql = (f"SELECT {_ENTRY_COLUMNS} FROM emission_entries e LEFT JOIN suppliers s ON s.id = e.supplier_id"
           + (f" WHERE {' AND '.join(where)}" if where else "") + " ORDER BY e.period_start, e.id")
    df = _read(engine, sql, params)
    df["spend"] = pd.to_numeric(df["spend"], errors="coerce").astype("float64")
    df["spend_usd"] = df["spend"].to_numpy() * currency.usd_per_unit(df["spend_currency"], df["spend_year"])
    return df


def _grouped(df: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    g = df.groupby(by, dropna=False).agg(kg_co2e=("kg_co2e", "sum"), entries=("id", "count"),
                                         spend_usd=("spend_usd", "sum"))
    g["t_co2e"] = g["kg_co2e"] * T_PER_KG
    return g.sort_values("kg_co2e", ascending=False)


def by_category(engine: Engine | Connection, start: dt.date | str | None = None,
                end: dt.date | str | None = None) -> pd.DataFrame:
    """kg and t CO2e, entries and spend per GHG Protocol category (with its label)."""
    g = _grouped(entries(engine, start, end), ["category"]).sort_index()
    g.insert(0, "label", [category_label(int(c)) for c in g.index])
    return g


def by_supplier(engine: Engine | Connection, start: dt.date | str | None = None,
                end: dt.date | str | None = None) -> pd.DataFrame:
    """kg and t CO2e per supplier, largest first (entries without a supplier under NaN)."""
    return _grouped(entries(engine, start, end), ["supplier"])


def by_method(engine: Engine | Connection, start: dt.date | str | None = None,
              end: dt.date | str | None = None) -> pd.DataFrame:
    """kg and t CO2e per calculation method."""
    return _grouped(entries(engine, start, end), ["method"])


def by_period(engine: Engine | Connection, start: dt.date | str | None = None,
              end: dt.date | str | None = None, freq: str = "M") -> pd.DataFrame:
    """kg and t CO2e per month (``freq="M"``), quarter (``"Q"``) or year (``"Y"``) of period_start."""
    df = entries(engine, start, end)
    df["period"] = pd.PeriodIndex(pd.to_datetime(df["period_start"]), freq=freq).astype(str)
    return _grouped(df, ["period"]).sort_index()


def summary(engine: Engine | Connection, start: dt.date | str | None = None, end: dt.date | str | None = None,
            exclusions: dict[int, str] | None = None) -> pd.DataFrame:
    """The GHG-Protocol-shaped table: one row per Scope 3 category (1-15).

    Columns: category, name, stream (upstream/downstream), included, exclusion_reason, methods,
    data_quality (emissions-weighted 1-5), primary_share (of emissions from supplier or metered data),
    primary_spend_share, spend_usd, kg_co2e, t_co2e. A category with entries is included; one without
    is excluded with the reason given in ``exclusions`` (e.g. ``{14: "no franchises"}``) or, by
    default, that no activity was recorded in the period.
    """
    exclusions = exclusions or {}
    df = entries(engine, start, end)
    q = category_quality(df)
    methods = df.groupby("category")["method"].agg(lambda m: ", ".join(sorted(set(m))))
    rows = []
    for number, c in CATEGORIES.items():
        has = number in q.index and len(df[df["category"] == number]) > 0
        row: dict[str, Any] = {
            "category": number, "name": c.name, "stream": c.stream, "included": bool(has),
            "exclusion_reason": "" if has else exclusions.get(number, "no activity recorded in the period"),
            "methods": methods.get(number, ""),
        }
        if has:
            qc = q.loc[number]
            row.update(data_quality=qc["data_quality"], primary_share=qc["primary_share"],
                       primary_spend_share=qc["primary_spend_share"], spend_usd=qc["spend_usd"],
                       kg_co2e=qc["kg_co2e"])
        else:
            row.update(data_quality=np.nan, primary_share=np.nan, primary_spend_share=np.nan, spend_usd=0.0,
                       kg_co2e=0.0)
        rows.append(row)
    out = pd.DataFrame(rows).set_index("category")
    out["t_co2e"] = out["kg_co2e"] * T_PER_KG
    return out


def uncertainty_by_category(engine: Engine | Connection, start: dt.date | str | None = None,
                            end: dt.date | str | None = None, draws: int = 10_000, seed: int = 0) -> pd.DataFrame:
    """Monte Carlo 95% interval per category and for the total (kg CO2e); see :mod:`.uncertainty`."""
    return uncertainty.monte_carlo(entries(engine, start, end), draws=draws, seed=seed)


# --- periods -------------------------------------------------------------------------------------


def _tenant_id(conn: Connection) -> int:
    tid = conn.scalar(sa.text("SELECT tenant_of(current_user)"))
    if tid is None:
        raise Scope3Error("this needs a tenant's connection (scope3lib.db.connect()), not the admin one")
    return int(tid)


def periods(engine: Engine | Connection) -> pd.DataFrame:
    """The tenant's reporting periods: label, period_start, period_end, is_base_year, status, closed_at."""
    return _read(engine, "SELECT id, label, period_start, period_end, is_base_year, status, closed_at "
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
                {"t": _tenant_id(conn), "l": label, "s": s, "e": e, "b": base_year},
            ))
    except sa.exc.IntegrityError as exc:
        raise PeriodError(f"cannot create period {label!r}: {_pg_message(exc)}") from exc
    except sa.exc.DBAPIError as exc:
        raise PeriodError(f"cannot create period {label!r}: {_pg_message(exc)}") from exc


def _pg_message(exc: sa.exc.DBAPIError) -> str:
    diag = getattr(exc.orig, "diag", None)
    primary = getattr(diag, "message_primary", None)
    return str(primary or str(exc.orig).splitlines()[0])


def _period(conn: Connection, label: str) -> Any:
    row = conn.execute(sa.text("SELECT id, label, period_start, period_end, status, is_base_year FROM periods "
                               "WHERE label = :l"), {"l": label}).first()
    if row is None:
        raise PeriodError(f"no period {label!r} (see scope3lib.accounting.inventory.periods)")
    return row


def close_period(engine: Engine, label: str) -> None:
    """Close the period: from now on the database refuses any change to its entries."""
    with engine.begin() as conn:
        p = _period(conn, label)
        if p.status == "closed":
            raise PeriodError(f"period {label!r} is already closed")
        conn.execute(sa.text("UPDATE periods SET status = 'closed' WHERE id = :i"), {"i": p.id})


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
    with engine.connect() as conn:
        p = _period(conn, period)
        current = entries(conn, p.period_start, p.period_end)
        base = conn.execute(sa.text("SELECT label, period_start, period_end FROM periods WHERE is_base_year "
                                    "ORDER BY period_start LIMIT 1")).first()
        factors = factor_table(conn)
    if not ((factors["source"] == source) & (factors["version"] == version)).any():
        raise Scope3Error(f"no factor dataset {source} {version} (see `scope3 factors datasets`)")
    if base is None:
        base_label, base_kg = p.label, float(current["kg_co2e"].sum())
    else:
        base_label = base.label
        with engine.connect() as conn:
            base_kg = float(entries(conn, base.period_start, base.period_end)["kg_co2e"].sum())

    mine = current[current["factor_source"] == source]
    recalc = mine[mine["method"].isin([Method.SPEND_BASED.value, Method.AVERAGE_DATA.value,
                                       Method.DISTANCE_BASED.value])]
    kept = [(int(i), "hybrid entries keep their values: the supplier part is not stored with the entry")
            for i in mine.loc[mine["method"] == Method.HYBRID.value, "id"]]
    rows = pd.DataFrame({
        "category": recalc["category"], "method": recalc["method"], "quantity": recalc["activity_quantity"],
        "unit": recalc["activity_unit"].fillna(""), "factor_source": source, "factor_key": recalc["factor_key"],
        "factor_version": version, "spend": recalc["spend"], "currency": recalc["spend_currency"].fillna(""),
        "spend_year": recalc["spend_year"], "supplier": recalc["supplier"].fillna(""),
        "period_start": recalc["period_start"].astype(str), "period_end": recalc["period_end"].astype(str),
        "data_source": recalc["data_source"],
    })
    new = calculate(rows, factors) if len(rows) else rows.assign(kg_co2e=[], error=[])
    failed = new["error"] != ""
    kept += [(int(i), str(r)) for i, r in zip(recalc.loc[failed.to_numpy(), "id"], new.loc[failed, "error"],
                                              strict=True)]
    good = recalc[~failed.to_numpy()].assign(
        new_kg=new.loc[~failed, "kg_co2e"].to_numpy(), new_value=new.loc[~failed, "factor_value"].to_numpy(),
        new_unit=new.loc[~failed, "factor_unit"].to_numpy(),
        new_quality=new.loc[~failed, "data_quality"].astype("int64").to_numpy(),
    )
    before = current.groupby("category")["kg_co2e"].sum()
    delta = (good["new_kg"] - good["kg_co2e"]).groupby(good["category"]).sum()
    report = pd.DataFrame({"kg_before": before}).join(delta.rename("change_kg"), how="left").fillna({"change_kg": 0.0})
    report["kg_after"] = report["kg_before"] + report["change_kg"]
    report["change_of_category"] = (report["change_kg"] / report["kg_before"].where(report["kg_before"] != 0)).round(6)
    report["change_of_base"] = (report["change_kg"] / base_kg if base_kg else np.nan)
    report["significant"] = report["change_of_base"].abs() >= threshold
    report.insert(0, "label", [category_label(int(c)) for c in report.index])
    result = Recalculation(
        period=p.label, source=source, version=version, threshold=threshold, base_period=base_label,
        base_kg_co2e=base_kg, by_category=report[["label", "kg_before", "kg_after", "change_kg",
                                                  "change_of_category", "change_of_base", "significant"]],
        entries_recalculated=len(good), entries_kept=pd.DataFrame(kept, columns=["id", "reason"]), applied=False,
    )
    if not apply:
        return result
    if not reason or not reason.strip():
        raise InvalidArgument("applying a recalculation needs a reason (it is recorded with the report)")
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("SELECT begin_period_recalculation(:p, :s, :v, :r, CAST(:j AS jsonb))"),
                         {"p": p.id, "s": source, "v": version, "r": reason, "j": json.dumps(result.to_json())})
            if len(good):
                conn.execute(
                    sa.text(
                        "UPDATE emission_entries e SET factor_version = :v, factor_value = u.value, "
                        "factor_unit = u.unit, kg_co2e = u.kg, data_quality = u.quality "
                        "FROM unnest(CAST(:ids AS bigint[]), CAST(:vals AS double precision[]), "
                        "CAST(:units AS text[]), CAST(:kgs AS double precision[]), CAST(:qs AS smallint[])) "
                        "AS u(id, value, unit, kg, quality) WHERE e.id = u.id"
                    ),
                    {"v": version, "ids": good["id"].astype("int64").tolist(),
                     "vals": good["new_value"].astype(float).tolist(), "units": good["new_unit"].astype(str).tolist(),
                     "kgs": good["new_kg"].astype(float).tolist(), "qs": good["new_quality"].astype(int).tolist()},
                )
    except sa.exc.DBAPIError as exc:
        raise PeriodError(f"recalculation of {period!r} refused: {_pg_message(exc)}") from exc
    result.applied = True
    return result


# --- activity import -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportSummary:
    rows: int
    kg_co2e: float


def import_activity(engine: Engine, rows: pd.DataFrame, *, source: str = "activity rows",
                    data_source: str = DataSource.IMPORT.value) -> ImportSummary:
    """Calculate ``rows`` (the activity format of :mod:`scope3lib.accounting.calculation`) and add them to the
    tenant's inventory, all or nothing.

    Every bad row is reported with its line (the header is line 1) and reason in one
    :class:`~scope3lib.errors.ActivityImportError`; then nothing is written. Rows need a period
    (period_start, period_end), and a supplier named in them must be one of the tenant's suppliers.
    """
    n = len(rows)
    with engine.connect() as conn:
        tid = _tenant_id(conn)
        suppliers: dict[str, int] = {str(name): int(i) for name, i in
                                     conn.execute(sa.text("SELECT name, id FROM suppliers")).all()}
        closed = conn.execute(sa.text("SELECT label, period_start, period_end FROM periods "
                                      "WHERE status = 'closed'")).all()
        factors = factor_table(conn)
    work = rows.assign(data_source=data_source) if "data_source" not in rows else rows
    calc = calculate(work, factors, data_source=data_source)
    reasons = calc["error"].to_numpy(dtype=object).copy()

    def refuse(mask: np.ndarray, message: np.ndarray | str) -> None:
        mask = mask & (reasons == "")
        reasons[mask] = message if isinstance(message, str) else np.asarray(message, dtype=object)[mask]

    start = pd.to_datetime(rows["period_start"].astype(str).str.strip(), format="%Y-%m-%d", errors="coerce")
    end = pd.to_datetime(rows["period_end"].astype(str).str.strip(), format="%Y-%m-%d", errors="coerce")
    refuse(start.isna().to_numpy(), "period_start is required (YYYY-MM-DD)")
    refuse(end.isna().to_numpy(), "period_end is required (YYYY-MM-DD)")
    refuse((end < start).to_numpy(), "period_end is before period_start")
    for label, s, e in closed:
        inside = ((start >= pd.Timestamp(s)) & (start <= pd.Timestamp(e))).to_numpy()
        refuse(inside, f"period {label} is closed: its entries cannot change")
    names = rows["supplier"].astype(str).str.strip()
    ids = names.map(suppliers)
    refuse((names != "").to_numpy() & ids.isna().to_numpy(),
           np.array([f"unknown supplier {s!r} (add it to the tenant's suppliers first)" for s in names], dtype=object))
    needs = calc["method"].astype(str).str.strip().str.lower().isin(
        [Method.SUPPLIER_SPECIFIC.value, Method.HYBRID.value]).to_numpy()
    refuse(needs & (names == "").to_numpy(), "supplier is required for supplier-specific and hybrid rows")
    bad = np.flatnonzero(reasons != "")
    if bad.size:
        raise ActivityImportError(source, [(int(i) + 2, str(reasons[i])) for i in bad], n)

    desc = rows["description"].astype(str) if "description" in rows else pd.Series([""] * n, index=rows.index)
    table = pd.DataFrame({
        "tenant_id": tid,
        "category": calc["category"].astype(int).to_numpy(),
        "period_start": start.dt.date.to_numpy(),
        "period_end": end.dt.date.to_numpy(),
        "method": calc["method"].astype(str).str.strip().str.lower().to_numpy(),
        "supplier_id": ids.to_numpy(),
        "description": desc.where(desc != "", None).to_numpy(),
        "activity_quantity": pd.to_numeric(rows["quantity"], errors="coerce").to_numpy(),
        "activity_unit": rows["unit"].astype(str).str.strip().replace("", None).to_numpy(),
        "spend": pd.to_numeric(rows["spend"], errors="coerce").round(2).to_numpy(),
        "spend_currency": rows["currency"].astype(str).str.strip().str.upper().replace("", None).to_numpy(),
        "spend_year": pd.to_numeric(rows["spend_year"], errors="coerce").to_numpy(),
        "factor_source": calc["factor_source"].astype(str).replace("", None).to_numpy(),
        "factor_version": calc["factor_version"].to_numpy(),
        "factor_key": rows["factor_key"].astype(str).str.strip().replace("", None).to_numpy(),
        "factor_value": calc["factor_value"].to_numpy(),
        "factor_unit": calc["factor_unit"].to_numpy(),
        "kg_co2e": calc["kg_co2e"].to_numpy(),
        "data_source": data_source,
        "data_quality": calc["data_quality"].astype(int).to_numpy(),
    })
    records: list[dict[str, Any]] = [
        {str(k): (None if (v is None or (isinstance(v, float) and np.isnan(v))) else
             (v.item() if isinstance(v, np.generic) else v)) for k, v in r.items()}
        for r in table.astype(object).to_dict("records")
    ]
    cols = list(table.columns)
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.text(f"INSERT INTO emission_entries ({', '.join(cols)}) VALUES "
                        f"({', '.join(':' + c for c in cols)})"),
                records,
            )
    except sa.exc.DBAPIError as exc:
        raise Scope3Error(f"{source}: nothing imported: {_pg_message(exc)}") from exc
    return ImportSummary(rows=n, kg_co2e=float(table["kg_co2e"].sum()))


def import_activity_file(engine: Engine, path: str) -> ImportSummary:
    """:func:`import_activity` on a CSV or ``.xlsx`` file."""
    return import_activity(engine, read_activity_file(path), source=str(path))


def month_window(engine: Engine | Connection, months: int, end: str | None = None) -> tuple[dt.date, dt.date]:
    """The first day of the first month and the last day of the last of ``months`` months ending at
    ``end`` (YYYY-MM), or at the latest month with entries when ``end`` is None."""
    if months < 1:
        raise InvalidArgument(f"months must be at least 1, got {months}")
    if end:
        try:
            last_month = pd.Period(end, freq="M")
        except ValueError:
            raise InvalidArgument(f"end must be a month as YYYY-MM, got {end!r}") from None
    else:
        latest = _read(engine, "SELECT max(period_start) AS latest FROM emission_entries")["latest"].iloc[0]
        last_month = pd.Period(latest if latest is not None else dt.date.today(), freq="M")
    first_month = last_month - (months - 1)
    return first_month.start_time.date(), last_month.end_time.date()


def source_shares(frame: pd.DataFrame) -> pd.DataFrame:
    """kg CO2e of the entries ``frame`` (:func:`entries`) per GHG Protocol category, with each data source's
    share of it (0-1).

    Index: category, with ``0`` first for the whole inventory. Columns: label, kg_co2e, ``<source>_share``
    for manual, iot, import and ml (and any other source found), ml_kg_co2e. The dashboard's "How much is
    estimated" panel and :func:`scope3lib.ml.estimates.estimated_share` are both this table.
    """
    sources = [s.value for s in DataSource]
    kg = frame.pivot_table(index="category", columns="data_source", values="kg_co2e", aggfunc="sum")
    kg = kg.reindex(columns=sources + sorted(set(kg.columns) - set(sources))).fillna(0.0)
    kg.columns = kg.columns.astype(str)
    kg.index = kg.index.astype(int)
    kg = pd.concat([kg.sum().to_frame(0).T, kg])
    total = kg.sum(axis=1)
    shares = kg.div(total.where(total != 0), axis=0).add_suffix("_share")
    labels = ["All categories"] + [category_label(int(c)) for c in kg.index[1:]]
    out = pd.DataFrame({"label": labels, "kg_co2e": total}, index=kg.index).join(shares)
    out["ml_kg_co2e"] = kg[DataSource.ML.value]
    out.index.name = "category"
    return out
