"""How much of the imported spend the inventory really covers: classified, matched to a supplier, priced with
the supplier's own data; and the largest vendors still unclassified.

Shares are of spend in US dollars (each line converted at its posting year's rate), over the active lines
of the extracts (a corrected extract's lines, not the ones it replaced), optionally of a window of posting
dates. The inventory summary (`scope3 inventory summary`), the dashboard and the monthly report show them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd
from sqlalchemy.engine import Connection, Engine

from .. import db
from ..accounting import currency
from ..categories import Method

_PRIMARY = (Method.SUPPLIER_SPECIFIC.value, Method.HYBRID.value)


@dataclass(frozen=True)
class Coverage:
    """Spend of the extracts (USD) and the shares of it classified, matched and covered by supplier data."""

    spend_usd: float
    lines: int
    classified_share: float
    matched_share: float
    supplier_data_share: float
    largest_unclassified: pd.DataFrame  # vendor_name, lines, spend_usd, share

    @property
    def empty(self) -> bool:
        return self.lines == 0

    def sentence(self) -> str:
        if self.empty:
            return "No spend extract imported yet (`scope3 spend import SLUG FILE`)."
        return (f"Spend from ERP extracts: {self.spend_usd:,.0f} USD in {self.lines:,} lines; "
                f"{self.classified_share:.0%} classified, {self.matched_share:.0%} matched to a supplier, "
                f"{self.supplier_data_share:.0%} priced with the supplier's own data.")


def coverage(bind: Engine | Connection, start: dt.date | str | None = None, end: dt.date | str | None = None,
             top: int = 10) -> Coverage:
    """The coverage of the active extract lines posted in ``[start, end]`` (all when None)."""
    where, params = "", {}
    if start is not None:
        where += " AND l.posting_date >= :start"
        params["start"] = pd.Timestamp(start).date()
    if end is not None:
        where += " AND l.posting_date <= :end"
        params["end"] = pd.Timestamp(end).date()
    df = db.read_frame(bind, "SELECT l.vendor_name, l.vendor_key, l.amount, l.currency, "
                             "extract(year FROM l.posting_date)::int AS year, l.category IS NOT NULL AS classified, "
                             "l.supplier_id IS NOT NULL AS matched, coalesce(e.method, '') AS method "
                             "FROM spend_lines l LEFT JOIN spend_groups g ON g.id = l.group_id "
                             f"LEFT JOIN emission_entries e ON e.id = g.entry_id WHERE l.active{where}", params)
    if df.empty:
        return Coverage(0.0, 0, float("nan"), float("nan"), float("nan"),
                        pd.DataFrame(columns=["vendor_name", "lines", "spend_usd", "share"]))
    usd = df["amount"].astype(float).to_numpy() * currency.usd_per_unit(df["currency"].to_numpy(dtype=object),
                                                                       df["year"].to_numpy(dtype="float64"))
    df["spend_usd"] = usd
    total = float(df["spend_usd"].sum())

    def share(mask: pd.Series) -> float:
        return float(df.loc[mask, "spend_usd"].sum() / total) if total else float("nan")

    unclassified = (df[~df["classified"]].assign(vendor_name=lambda d: d["vendor_name"].fillna(d["vendor_key"]))
                    .groupby("vendor_name", as_index=False)
                    .agg(lines=("amount", "count"), spend_usd=("spend_usd", "sum"))
                    .sort_values("spend_usd", ascending=False).head(top).reset_index(drop=True))
    unclassified["share"] = unclassified["spend_usd"] / total if total else float("nan")
    return Coverage(total, len(df), share(df["classified"]), share(df["matched"]), share(df["method"].isin(_PRIMARY)),
                    unclassified)
