"""Purchases priced by approved product footprints: the pure half, no database.

A spend line that names a product (``product_id``), a quantity and its unit, bought from a supplier whose
approved submission holds an Active PACT footprint of that product, is priced as supplier-specific data:
quantity x the footprint's PCF per declared unit, the purchase's unit converted to the declared unit by
:mod:`scope3lib.pact.units`. A line's ``product_id`` matches a footprint's ``productIds`` whole (``urn:gtin:
4712345060507``) or by the last part of the URN (``4712345060507``), without regard to case. When several
approved Active footprints of the supplier match, one order decides, whatever order they were read in
(:func:`precedence`): the most recently created footprint wins, then the one of the later submission, then
the greater footprint id. A line whose unit does not convert stays spend-based, and :func:`unpriced` says why.

Lines priced this way form groups of their own (month, vendor, footprint, unit, currency), one entry each,
whose factor traces to the submission: ``factor_source`` ``supplier-pcf``, ``factor_version``
``submission-<id>``, ``factor_key`` the footprint's id.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..accounting import quality
from ..categories import DataSource, Method
from ..errors import UnitNotConvertible
from ..pact import units
from ..pact.model import ProductFootprint, parse_footprint

FACTOR_SOURCE = "supplier-pcf"
PURCHASED_GOODS = 1  # GHG Protocol category 1, purchased goods and services
_PRIMARY_QUALITY = int(quality.overall(quality.pedigree(
    np.array([quality.METHODS.index(Method.SUPPLIER_SPECIFIC)]), DataSource.IMPORT.value))[0])


@dataclass(frozen=True)
class Approved:
    """An approved footprint and the submission it came in."""

    submission_id: int
    supplier_id: int
    footprint: ProductFootprint


def product_keys(product_id: str) -> tuple[str, ...]:
    """The keys a product id is matched by, lower case: the whole id, then the last part of a URN."""
    text = product_id.strip().lower()
    last = text.rsplit(":", 1)[-1]
    return () if not text else (text,) if last == text else (text, last)


def precedence(approved: Approved) -> tuple[dt.datetime, int, str]:
    """The rank of an approved footprint among those that match a purchase; the highest prices it: the most
    recently created footprint, then the later submission, then the greater footprint id."""
    return approved.footprint.created, approved.submission_id, str(approved.footprint.id)


def footprint_index(approved: list[Approved]) -> dict[tuple[int, str], Approved]:
    """(supplier id, product key) -> the approved Active footprint of that product that ranks highest."""
    index: dict[tuple[int, str], Approved] = {}
    for a in sorted(approved, key=precedence):
        if a.footprint.status != "Active":
            continue
        for pid in a.footprint.productIds:
            for key in product_keys(str(pid)):
                index[(a.supplier_id, key)] = a
    return index


def read_approved(rows: list[Any]) -> list[Approved]:
    """Rows of (submission_id, supplier_id, footprint JSON) as :class:`Approved`."""
    return [Approved(int(r.submission_id), int(r.supplier_id), parse_footprint(r.footprint)) for r in rows]


def _hits(lines: pd.DataFrame, index: dict[tuple[int, str], Approved]
          ) -> tuple[list[Approved | None], list[str], list[float]]:
    """Per line, the footprint that prices it (None: none), why a candidate line is not priced, and its kg CO2e
    per unit of the line. Only lines with a supplier, product, quantity and unit are candidates, and the
    footprint and unit conversion are worked out once per distinct (supplier, product, unit)."""
    n = len(lines)
    found, why, kg = np.full(n, None, dtype=object), np.full(n, "", dtype=object), np.full(n, np.nan)
    sid = pd.to_numeric(lines["supplier_id"], errors="coerce").fillna(-1).to_numpy(dtype="int64")
    pid = lines["product_id"].astype(object).where(lines["product_id"].notna(), "").astype(str).to_numpy()
    unit = lines["unit"].astype(object).where(lines["unit"].notna(), "").astype(str).to_numpy()
    qty = pd.to_numeric(lines["quantity"], errors="coerce").to_numpy(dtype="float64")
    where = np.flatnonzero((sid >= 0) & (pid != "") & ~np.isnan(qty) & (unit != ""))
    if len(where):
        codes, triples = pd.factorize(pd.MultiIndex.from_arrays([sid[where], pid[where], unit[where]]))
        per = [_footprint_for(index, int(s), str(p), str(u)) for s, p, u in triples]
        found[where] = np.array([h for h, _, _ in per] + [None], dtype=object)[codes]
        why[where] = np.array([r for _, r, _ in per] + [""], dtype=object)[codes]
        kg[where] = np.array([k for _, _, k in per] + [np.nan], dtype="float64")[codes]
    return list(found), list(why), list(kg)


def _footprint_for(index: dict[tuple[int, str], Approved], sid: int, pid: str, unit: str
                   ) -> tuple[Approved | None, str, float]:
    """The approved footprint that prices a purchase of ``pid`` from supplier ``sid`` in ``unit``, with its kg CO2e
    per unit; or None and why it cannot (a unit the footprint's declared unit does not convert to)."""
    hit = max((index[(sid, k)] for k in product_keys(pid) if (sid, k) in index), key=precedence, default=None)
    if hit is None:
        return None, "", float("nan")
    try:
        return hit, "", float(units.emissions_per(unit, hit.footprint.pcf))
    except (UnitNotConvertible, KeyError) as exc:
        return None, str(exc), float("nan")


def price_lines(lines: pd.DataFrame, approved: list[Approved]) -> tuple[pd.DataFrame, np.ndarray]:
    """The groups of the lines an approved footprint prices, as entry columns (with group_key, month, error ""),
    and each line's group key (None for lines left to spend-based pricing).

    ``lines`` has posting_date, vendor_key, vendor_name, supplier_id (-1 none), category (0 unclassified),
    currency, amount, product_id, quantity and unit.
    """
    keys = np.full(len(lines), None, dtype=object)
    index = footprint_index(approved)
    if not index or lines.empty:
        return pd.DataFrame(), keys
    hits, _, kg = _hits(lines, index)
    chosen = np.array([h is not None for h in hits])
    if not chosen.any():
        return pd.DataFrame(), keys
    sel = lines[chosen].copy()
    fps = [h for h in hits if h is not None]
    sel["fp_id"] = [str(h.footprint.id) for h in fps]
    sel["submission_id"] = [h.submission_id for h in fps]
    sel["per_unit"] = np.asarray(kg, dtype="float64")[chosen]
    sel["name"] = [h.footprint.productNameCompany for h in fps]
    sel["month"] = pd.to_datetime(sel["posting_date"]).dt.to_period("M").dt.start_time
    sel["group_key"] = (sel["month"].dt.strftime("%Y-%m") + "|" + sel["vendor_key"].astype(str) + "|pcf:"
                        + sel["fp_id"] + "|" + sel["unit"].astype(str) + "|" + sel["currency"].astype(str))
    sel["kg"] = sel["quantity"].astype(float) * sel["per_unit"]
    keys[chosen] = sel["group_key"].to_numpy(dtype=object)
    g = sel.groupby("group_key", sort=True).agg(
        month=("month", "first"), supplier_id=("supplier_id", "first"), category=("category", "max"),
        vendor_name=("vendor_name", "first"), fp_id=("fp_id", "first"), submission_id=("submission_id", "first"),
        name=("name", "first"), unit=("unit", "first"), currency=("currency", "first"),
        per_unit=("per_unit", "first"), quantity=("quantity", "sum"), spend=("amount", "sum"), kg=("kg", "sum"),
        lines=("amount", "count")).reset_index()
    return _entries(g), keys


def _entries(g: pd.DataFrame) -> pd.DataFrame:
    start = pd.to_datetime(g["month"])
    return pd.DataFrame({
        "group_key": g["group_key"], "month": start.dt.date,
        # A footprint prices a product bought: purchased goods unless the lines were classified otherwise.
        "category": np.where(g["category"].to_numpy() > 0, g["category"].to_numpy(), PURCHASED_GOODS),
        "period_start": start.dt.date, "period_end": (start + pd.offsets.MonthEnd(0)).dt.date,
        "method": Method.SUPPLIER_SPECIFIC.value, "supplier_id": g["supplier_id"].astype("Int64"),
        "description": ("PCF of " + g["name"].astype(str) + " (footprint " + g["fp_id"] + ", submission "
                        + g["submission_id"].astype(str) + "): " + g["lines"].astype(str) + " lines, "
                        + g["quantity"].round(6).astype(str) + " " + g["unit"].astype(str)),
        "spend": g["spend"].round(2), "spend_currency": g["currency"], "spend_year": start.dt.year,
        "activity_quantity": g["quantity"].astype(float), "activity_unit": g["unit"].astype(str),
        "factor_source": FACTOR_SOURCE, "factor_version": "submission-" + g["submission_id"].astype(str),
        "factor_key": g["fp_id"], "factor_value": g["per_unit"].astype(float),
        "factor_unit": "kg CO2e/" + g["unit"].astype(str), "kg_co2e": g["kg"].astype(float),
        "data_source": DataSource.IMPORT.value, "data_quality": _PRIMARY_QUALITY, "error": "",
    })


def unpriced(lines: pd.DataFrame, approved: list[Approved]) -> pd.DataFrame:
    """The lines of a supplier's approved products that stay spend-based, with the reason (the unit)."""
    index = footprint_index(approved)
    if not index or lines.empty:
        return pd.DataFrame(columns=["import_id", "line_no", "product_id", "unit", "reason"])
    _, why, _ = _hits(lines, index)
    out = lines.assign(reason=why)
    return out[out["reason"] != ""][["import_id", "line_no", "product_id", "unit", "reason"]].reset_index(drop=True)
