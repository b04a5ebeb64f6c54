"""Classified spend lines turned into priced groups: the pure half of a spend import, no database.

Lines are grouped by month, vendor, category, NAICS sector and currency (one emission entry per group, so an
entry traces back to its lines), and each group is priced by the calculation engine
(:func:`scope3lib.accounting.calculation.calculate`): spend-based with the sector's EEIO factor, or, when
the matched supplier reported its emissions (:mod:`.disclosures`), supplier-specific (the supplier gave
its upstream emissions too) or hybrid (scope 1 and 2 only: its own emissions allocated by our share of its
revenue, plus the EEIO estimate of what it buys). A group whose supplier data cannot be used (its month's
spend above the supplier's revenue, no exchange rate for the revenue) falls back to spend-based.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from ..accounting import currency
from ..accounting.calculation import calculate
from ..categories import CATEGORIES, DataSource, Method

SECTOR_SOURCE = "epa-useeio"
GROUP_COLUMNS = ("month", "vendor_key", "category", "naics_code", "currency")


def group_lines(lines: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """The groups of the classified lines (category > 0) and each line's group (-1 for unclassified lines).

    ``lines`` has posting_date, vendor_key, vendor_name, supplier_id (-1 none), category, naics_code, currency
    and amount. Groups: the columns of :data:`GROUP_COLUMNS`, group_key, supplier_id, vendor_name, spend and
    lines (how many).
    """
    month = lines["posting_date"].to_numpy(dtype="datetime64[M]")
    classified = lines["category"].to_numpy() > 0
    parts = [pd.factorize(month)[0], pd.factorize(lines["vendor_key"])[0],
             lines["category"].to_numpy(dtype=np.int64), pd.factorize(lines["naics_code"])[0],
             pd.factorize(lines["currency"])[0]]
    combo = np.zeros(len(lines), dtype=np.int64)
    for p in parts:  # a mixed-radix number per line: one factorize instead of a five-key groupby
        combo = combo * (int(p.max(initial=0)) + 2) + (p + 1)
    combo = np.where(classified, combo, -1)
    group, uniques = pd.factorize(combo)
    group = np.where(classified, group, -1)
    keep = uniques >= 0
    order = np.flatnonzero(keep)
    remap = np.full(len(uniques), -1, dtype=np.int64)
    remap[order] = np.arange(len(order))
    line_group = np.where(group >= 0, remap[np.clip(group, 0, None)], -1)
    ok = line_group >= 0
    g = line_group[ok]
    first = np.full(len(order), -1, dtype=np.int64)
    first[g[::-1]] = np.flatnonzero(ok)[::-1]  # the first line of each group
    spend = np.bincount(g, weights=lines["amount"].to_numpy(dtype="float64")[ok], minlength=len(order))
    count = np.bincount(g, minlength=len(order))
    pick = lines[["vendor_key", "category", "naics_code", "currency", "supplier_id", "vendor_name"]].iloc[first]
    groups = pd.DataFrame({
        "month": month[first].astype("datetime64[s]"), "vendor_key": pick["vendor_key"].to_numpy(),
        "category": pick["category"].to_numpy(dtype=np.int64), "naics_code": pick["naics_code"].to_numpy(),
        "currency": pick["currency"].to_numpy(), "supplier_id": pick["supplier_id"].to_numpy(dtype=np.int64),
        "vendor_name": pick["vendor_name"].to_numpy(), "spend": np.round(spend, 2), "lines": count,
    })
    labels = _per_month(month[first], lambda m: f"{m:%Y-%m}")
    groups["group_key"] = np.array(
        ["|".join(map(str, k)) for k in zip(labels, groups["vendor_key"].tolist(), groups["category"].tolist(),
                                            groups["naics_code"].tolist(), groups["currency"].tolist(), strict=True)],
        dtype=object)
    return groups, line_group


def _per_month(months: np.ndarray, fn: Callable[[pd.Timestamp], Any]) -> np.ndarray:
    """``fn`` of each month (datetime64), once per distinct month."""
    codes, uniques = pd.factorize(np.asarray(months, dtype="datetime64[M]"))
    return np.array([fn(pd.Timestamp(u)) for u in uniques] + [None], dtype=object)[codes]


def _supplier_data(groups: pd.DataFrame, disclosures: pd.DataFrame) -> pd.DataFrame:
    """Per group, the disclosure of its supplier nearest its year (NaN where none) with the revenue in the
    group's currency."""
    cols = ["supplier_kg", "revenue_here", "direct_share", "upstream"]
    if disclosures.empty:
        return pd.DataFrame(np.nan, index=groups.index, columns=cols)
    year = _per_month(groups["month"].to_numpy(), lambda m: m.year).astype(np.int64)
    left = pd.DataFrame({"supplier_id": groups["supplier_id"].to_numpy(), "year": year, "pos": np.arange(len(groups))})
    d = disclosures.astype({"supplier_id": "int64", "year": "int64"}).sort_values("year")
    merged = pd.merge_asof(left.sort_values("year"), d, on="year", by="supplier_id", direction="nearest",
                           suffixes=("", "_d")).sort_values("pos")
    rev_usd = pd.to_numeric(merged["revenue"], errors="coerce").to_numpy(dtype="float64") * currency.usd_per_unit(
        merged["currency"].fillna("").to_numpy(dtype=object), merged["disclosure_year"].to_numpy(dtype="float64"))
    here = currency.usd_per_unit(groups["currency"].to_numpy(dtype=object), year.astype("float64"))
    upstream = merged["upstream_kg"].to_numpy(dtype="float64")
    kg = merged["scope1_kg"].to_numpy(dtype="float64") + merged["scope2_kg"].to_numpy(dtype="float64")
    return pd.DataFrame({"supplier_kg": np.where(np.isfinite(upstream), kg + upstream, kg),
                         "revenue_here": rev_usd / here, "direct_share": merged["eeio_direct_share"].fillna(0.0)
                         .to_numpy(dtype="float64"), "upstream": np.isfinite(upstream)}, index=groups.index)


def _methods(groups: pd.DataFrame, sup: pd.DataFrame) -> np.ndarray:
    cat = groups["category"].to_numpy()
    has = np.isfinite(sup["supplier_kg"].to_numpy()) & (sup["revenue_here"].to_numpy() > 0)
    allows_hybrid = np.isin(cat, [n for n, c in CATEGORIES.items() if Method.HYBRID in c.methods])
    # Upstream figures too: supplier-specific. Scope 1 and 2 only: hybrid where the category allows it (goods,
    # capital goods, investments: the supplier's inputs still need the EEIO estimate); for services such as
    # transport, travel or waste the supplier's own emissions are the service's, so supplier-specific.
    return np.select([has & sup["upstream"].to_numpy(dtype=bool), has & allows_hybrid, has],
                     [Method.SUPPLIER_SPECIFIC.value, Method.HYBRID.value, Method.SUPPLIER_SPECIFIC.value],
                     Method.SPEND_BASED.value).astype(object)


def _activity(groups: pd.DataFrame, method: np.ndarray, sup: pd.DataFrame, versions: np.ndarray) -> pd.DataFrame:
    months = groups["month"].to_numpy()
    supplier_rows = method == Method.SUPPLIER_SPECIFIC.value
    return pd.DataFrame({
        "category": groups["category"].to_numpy(), "method": method, "quantity": "", "unit": "",
        "factor_source": np.where(supplier_rows, "", SECTOR_SOURCE),
        "factor_key": np.where(supplier_rows, "", groups["naics_code"].to_numpy(dtype=object)),
        "factor_version": np.where(supplier_rows, "", versions),
        "spend": groups["spend"].to_numpy(), "currency": groups["currency"].to_numpy(),
        "spend_year": _per_month(months, lambda m: m.year).astype(np.int64), "supplier": "",
        "period_start": _per_month(months, lambda m: f"{m:%Y-%m-%d}"),
        "period_end": _per_month(months, lambda m: f"{m + pd.offsets.MonthEnd(0):%Y-%m-%d}"),
        "supplier_kg_co2e": sup["supplier_kg"].to_numpy(), "supplier_revenue": sup["revenue_here"].to_numpy(),
        "eeio_direct_share": sup["direct_share"].to_numpy(),
    })


def price(groups: pd.DataFrame, factors: pd.DataFrame, disclosures: pd.DataFrame | None = None,
          versions: np.ndarray | None = None) -> pd.DataFrame:
    """Each group (spend > 0) priced: the columns of an emission entry (without tenant_id) plus group_key and
    ``error`` (empty when priced). ``disclosures``: supplier_id, disclosure_year (as ``year``), scope1_kg,
    scope2_kg, upstream_kg, revenue, currency, eeio_direct_share. ``versions``: the factor version each group
    keeps (``""``: the latest), so re-pricing a month never moves an entry to a newer dataset by itself."""
    groups = groups[groups["spend"] > 0].reset_index(drop=True)
    if versions is None:
        versions = np.full(len(groups), "", dtype=object)
    disc = disclosures if disclosures is not None else pd.DataFrame()
    if len(disc):
        disc = disc.assign(disclosure_year=disc["year"])
    sup = _supplier_data(groups, disc)
    method = _methods(groups, sup)
    calc = calculate(_activity(groups, method, sup, versions), factors, data_source=DataSource.IMPORT.value)
    failed = (calc["error"] != "").to_numpy() & (method != Method.SPEND_BASED.value)
    if failed.any():  # supplier data that cannot be used: the sector factor instead
        method = np.where(failed, Method.SPEND_BASED.value, method)
        calc = calculate(_activity(groups, method, sup, versions), factors, data_source=DataSource.IMPORT.value)
    months = groups["month"].to_numpy()
    who = [n or k for n, k in zip(groups["vendor_name"].astype(object).tolist(), groups["vendor_key"].tolist(),
                                  strict=True)]
    return pd.DataFrame({
        "group_key": groups["group_key"], "month": _per_month(months, lambda m: m.date()),
        "category": groups["category"].astype(int), "period_start": _per_month(months, lambda m: m.date()),
        "period_end": _per_month(months, lambda m: (m + pd.offsets.MonthEnd(0)).date()), "method": method,
        "supplier_id": groups["supplier_id"].where(groups["supplier_id"] >= 0).astype("Int64"),
        "description": np.array([f"Spend extract: {w} ({n} lines)" for w, n in zip(who, groups["lines"].tolist(),
                                                                                       strict=True)], dtype=object),
        "spend": groups["spend"], "spend_currency": groups["currency"],
        "spend_year": _per_month(months, lambda m: m.year).astype(np.int64),
        "factor_source": calc["factor_source"].replace("", None), "factor_version": calc["factor_version"],
        "factor_key": calc["factor_key"].replace("", None), "factor_value": calc["factor_value"],
        "factor_unit": calc["factor_unit"], "kg_co2e": calc["kg_co2e"], "data_source": DataSource.IMPORT.value,
        "data_quality": calc["data_quality"], "error": calc["error"],
    })
