"""The one way to find an emission factor: calculation, the meter rollup, scenarios and ML estimates use it.

The rule, the same everywhere:

1. **Where.** The factor store in PostgreSQL (:mod:`.store`). ``scope3 db upgrade`` loads the built-in set
   into it, so a store always holds at least the built-in releases. Only without a database
   (``bind=None``: ``scope3 calc`` on a laptop, a pure function in a notebook) does the built-in set
   stand in for the store, and it is then exactly what a new store would hold.
2. **Which version.** The version the caller pins (an activity row's ``factor_version``, or
   ``versions={source: version}``), else the most recently imported version of the source (``latest``).
3. **Grid electricity, by region and year.** Grid factors are a time series per region: activity of year
   *Y* takes the region's factor for *Y*, else for the latest year before *Y*, looked for in every stored
   version of every grid source (:func:`.sources.grid_sources`); among candidates of the same year the
   most specific source wins (eGRID, then DESNZ, then Ember), then the most recently imported version.
   A newer release therefore prices new activity as soon as it is imported, while recorded entries keep
   the factor they were priced with (and closed periods change only through a recorded recalculation).
4. **Nothing is guessed.** A key, region or year that no stored dataset covers is reported by the
   caller with the reason, never filled in from elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sqlalchemy.engine import Connection, Engine

from ..db import read_frame
from ..errors import Scope3Error
from . import sources
from .dataset import builtin_factors

Bind = Engine | Connection | None

#: Columns of :func:`factor_table`.
TABLE_COLUMNS = ("source", "version", "factor_key", "unit", "region", "year", "kg_co2e_per_unit", "latest",
                 "recency")

_STORE_SQL = (
    "SELECT d.source, d.version, d.imported_at, d.id AS dataset_id, f.factor_key, f.unit, f.region, f.year, "
    "f.kg_co2e_per_unit FROM factors f JOIN factor_datasets d ON d.id = f.dataset_id"
)


def factor_table(bind: Bind) -> pd.DataFrame:
    """Every factor the rule may choose from: source, version, factor_key, unit, region, year,
    kg_co2e_per_unit, ``latest`` (the most recently imported version of its source) and ``recency`` (0 for
    that version, 1 for the one imported before it, ...). From the store, or the built-in set when ``bind``
    is None. This is what :func:`scope3lib.accounting.calculation.calculate` joins against."""
    if bind is None:
        df = builtin_factors()[["source", "version", "factor_key", "unit", "region", "year", "kg_co2e_per_unit"]]
        return df.assign(latest=True, recency=0)
    df = read_frame(bind, _STORE_SQL)
    order = df[["source", "imported_at", "dataset_id"]].drop_duplicates().sort_values(["imported_at", "dataset_id"])
    order["recency"] = order.groupby("source").cumcount(ascending=False)
    df = df.merge(order[["dataset_id", "recency"]], on="dataset_id")
    df["latest"] = df["recency"] == 0
    return df[list(TABLE_COLUMNS)]


def sector_factors(bind: Bind = None, table: pd.DataFrame | None = None) -> pd.Series:
    """Spend-based sector factors (kg CO2e per USD of the source's price year) by NAICS code, from the latest
    version of the EEIO source (``epa-useeio``). Pass ``table`` (:func:`factor_table`) to reuse one read."""
    t = factor_table(bind) if table is None else table
    names = sources.sector_sources()
    t = t[t["source"].isin(names) & t["latest"]]
    if t.empty:
        raise Scope3Error(f"no sector factors stored ({', '.join(names)}): run `scope3 db upgrade`")
    return t.drop_duplicates("factor_key").set_index("factor_key")["kg_co2e_per_unit"].astype(float)


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


GRID_COLUMNS = ("factor_source", "factor_version", "factor_key", "factor_value", "factor_unit", "factor_year")


def grid_candidates(table: pd.DataFrame) -> pd.DataFrame:
    """The grid electricity factors of ``table`` (:func:`factor_table`), best first within a region and year."""
    names = sources.grid_sources()
    g = table[table["source"].isin(names) & (table["unit"] == "kWh")].copy()
    g["region"] = g["region"].astype(str).str.upper()
    g["rank"] = g["source"].map({s: i for i, s in enumerate(names)})
    return g.sort_values(["region", "year", "rank", "recency"], ascending=[True, False, True, True])


def grid_factors(bind: Bind, regions: pd.Series | np.ndarray | list[str], years: pd.Series | np.ndarray | list[int],
                 table: pd.DataFrame | None = None) -> pd.DataFrame:
    """The grid factor of each (region, year), by the rule above: one row per input, with the columns of
    :data:`GRID_COLUMNS` (``factor_year`` is the factor's data year), NaN/None where none applies. One lookup
    per distinct pair, however many rows ask."""
    cand = grid_candidates(factor_table(bind) if table is None else table)
    pairs = pd.DataFrame({"region": pd.Series(regions).astype(str).str.upper().to_numpy(),
                          "want": pd.Series(years).astype("int64").to_numpy()})
    distinct = pairs.drop_duplicates().reset_index(drop=True)
    # For each pair: the candidates of its region up to its year; the first is the best (see the sort above).
    merged = distinct.merge(cand, on="region", how="inner")
    merged = merged[merged["year"] <= merged["want"]]
    best = merged.drop_duplicates(["region", "want"], keep="first")
    chosen = best.rename(columns={"source": "factor_source", "version": "factor_version", "factor_key": "factor_key",
                                  "kg_co2e_per_unit": "factor_value", "unit": "factor_unit", "year": "factor_year"})
    out = pairs.merge(chosen[["region", "want", *GRID_COLUMNS]], on=["region", "want"], how="left")
    return out[list(GRID_COLUMNS)].set_axis(pd.RangeIndex(len(out)))


def grid_factor(bind: Bind, region: str, year: int, table: pd.DataFrame | None = None) -> GridFactor | None:
    """The grid factor for ``region`` in ``year`` (see :func:`grid_factors`); None when no dataset covers it."""
    row = grid_factors(bind, [region], [year], table).iloc[0]
    if pd.isna(row["factor_value"]):
        return None
    return GridFactor(source=str(row["factor_source"]), version=str(row["factor_version"]),
                      key=str(row["factor_key"]), value=float(row["factor_value"]), unit=str(row["factor_unit"]),
                      region=region.upper(), year=int(row["factor_year"]))


def grid_regions(bind: Bind = None) -> list[str]:
    """Every region some stored grid dataset covers (what a meter's grid region may be)."""
    return sorted(grid_candidates(factor_table(bind))["region"].unique().tolist())
