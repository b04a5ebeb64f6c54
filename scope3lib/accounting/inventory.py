"""The inventory an analyst reports: by category, supplier, period and method, and the GHG Protocol summary.

Every function takes an engine. With a tenant's engine (``scope3lib.connect()`` in a notebook, the
tenant's own PostgreSQL role) row-level security limits every query to that tenant's rows; nothing here
filters by tenant in Python.

This module is also the analyst's one entry point to the inventory: reporting periods and their
recalculation (:mod:`.periods`) and activity imports (:mod:`.activity`) are reachable from here.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy.engine import Connection, Engine

from .. import db
from ..categories import CATEGORIES, DataSource, category_label
from ..errors import InvalidArgument
from . import entries as _entries
from . import uncertainty
from .activity import ImportSummary, import_activity, import_activity_file
from .periods import Recalculation, close_period, create_period, periods, recalculate
from .quality import category_quality

__all__ = [
    "T_PER_KG",
    "ImportSummary",
    "Recalculation",
    "Window",
    "by_category",
    "by_method",
    "by_period",
    "by_supplier",
    "close_period",
    "create_period",
    "entries",
    "import_activity",
    "import_activity_file",
    "month_window",
    "periods",
    "recalculate",
    "reporting_window",
    "source_shares",
    "summary",
    "summary_of",
    "uncertainty_by_category",
]  # fmt: skip

T_PER_KG = 1e-3


def entries(engine: Engine | Connection, start: dt.date | str | None = None,
            end: dt.date | str | None = None) -> pd.DataFrame:
    """The emission entries whose period starts in ``[start, end]`` (all when None), with the supplier's
    name and ``spend_usd`` (see :func:`scope3lib.accounting.entries.read`)."""
    return _entries.read(engine, start, end)


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
    return summary_of(entries(engine, start, end), exclusions)


def summary_of(df: pd.DataFrame, exclusions: dict[int, str] | None = None) -> pd.DataFrame:
    """:func:`summary` of entries already read (:func:`entries`)."""
    exclusions = exclusions or {}
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
        latest = db.read_frame(engine, "SELECT max(period_start) AS latest FROM emission_entries")["latest"].iloc[0]
        last_month = pd.Period(latest if latest is not None else dt.date.today(), freq="M")
    first_month = last_month - (months - 1)
    return first_month.start_time.date(), last_month.end_time.date()


@dataclass(frozen=True)
class Window:
    """A reporting window: its first and last day, words for it, and whether it is still open (partial)."""

    first: dt.date
    last: dt.date
    partial: bool = False

    @property
    def label(self) -> str:
        words = f"{self.first:%B %Y} to {self.last:%B %Y}"
        return words + " (year to date, partial)" if self.partial else words


def reporting_window(engine: Engine | Connection, months: int | None = None, end: str | None = None,
                     today: dt.date | None = None) -> Window:
    """The period a report covers, as a reader expects it.

    With ``end`` (YYYY-MM): ``months`` months (12 by default) ending there. Without it: the last complete
    calendar year with entries (January to December), or, when the tenant has no complete year yet, the open
    year to date, marked partial; ``months`` then takes the last months of that year. Meter entries arriving
    today never move a report onto a year that has barely begun.
    """
    today = today or dt.date.today()
    if months is not None and months < 1:
        raise InvalidArgument(f"months must be at least 1, got {months}")
    if end:
        first, last = month_window(engine, months or 12, end)
        return Window(first, last, partial=last >= today.replace(day=1))
    years = db.read_frame(engine, "SELECT DISTINCT extract(year FROM period_start)::int AS y FROM emission_entries")
    complete = sorted(y for y in years["y"].tolist() if y < today.year)
    if complete:
        first, last = month_window(engine, months or 12, f"{complete[-1]}-12")
        return Window(first, last)
    first, last = month_window(engine, months or today.month, f"{today:%Y-%m}")
    return Window(max(first, dt.date(today.year, 1, 1)) if months is None else first, min(last, today), partial=True)


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
