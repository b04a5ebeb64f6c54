"""Hotspots: suppliers whose emission intensity is out of line with their sector peers.

Two detectors, both on log intensity (kg CO2e per USD), which is what a supplier effect multiplies:

* a robust z-score within the NAICS sector: ``0.6745 * (log i - sector median) / MAD`` (Iglewicz and
  Hoaglin 1993, the "modified z-score"); sectors with fewer than :data:`MIN_PEERS` suppliers, or a MAD
  below half the pooled one, use the pooled within-sector MAD so one or two peers cannot make everyone
  look extreme, and no scale goes below :data:`MIN_LOG_MAD`;
* an IsolationForest (Liu, Ting and Zhou 2008) on the departure from the sector median, the supplier's
  share of its category's emissions and its spend, which catches suppliers unusual on several counts.

A supplier is flagged when its z-score is at least :data:`Z_FLAG`, or at least :data:`Z_WITH_FOREST` and the
forest isolates it. Flags are ranked by **emissions at stake**: the kg CO2e above what the supplier would
emit at its sector's median intensity. Each flag is explained in words.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.ensemble import IsolationForest
from sqlalchemy.engine import Connection, Engine

from .suppliers import tenant_suppliers

Z_FLAG = 3.0
Z_WITH_FOREST = 2.0
MIN_PEERS = 5
# Floor of the log-intensity MAD. Suppliers billed at the same EEIO factor have a MAD of zero; without a
# floor any disclosed value would look extreme. 0.2 is below the spread of real within-sector intensities
# (the demo's LogNormal(0, 0.4) supplier effect has a MAD of 0.27).
MIN_LOG_MAD = 0.2
_MAD_TO_SD = 0.6745  # MAD of a normal distribution is 0.6745 standard deviations


def comparable(suppliers: pd.DataFrame) -> pd.Series:
    """The suppliers hotspot scoring can compare with their peers: those with a positive intensity."""
    return pd.to_numeric(suppliers["intensity"], errors="coerce") > 0


def score_suppliers(suppliers: pd.DataFrame, *, seed: int = 0) -> pd.DataFrame:
    """Every supplier with its hotspot scores (pure; no database).

    Input columns: name, naics_code, category, kg_co2e, spend_usd, intensity (kg CO2e per USD; rows without
    a positive intensity are dropped). Added columns: sector_median, intensity_ratio, robust_z,
    forest_outlier, flagged, kg_at_stake, category_share, explanation.
    """
    df = suppliers[comparable(suppliers)].copy()
    log_i = pd.Series(np.log(df["intensity"].to_numpy(dtype=float)), index=df.index)
    sector = df["naics_code"].astype(str)
    median = log_i.groupby(sector).transform("median")
    dev = log_i - median
    abs_dev = dev.abs()
    mad = abs_dev.groupby(sector).transform("median")
    peers = sector.map(sector.value_counts())
    pooled = float(abs_dev[peers >= 2].median()) if (peers >= 2).any() else float(abs_dev.median())
    pooled = pooled if pooled > 0 else 1e-9
    scale = mad.where((peers >= MIN_PEERS) & (mad >= 0.5 * pooled), pooled).clip(lower=MIN_LOG_MAD)
    df["sector_median"] = np.exp(median)
    df["intensity_ratio"] = np.exp(dev)
    df["robust_z"] = _MAD_TO_SD * dev / scale
    cat_total = df.groupby("category")["kg_co2e"].transform("sum")
    df["category_share"] = df["kg_co2e"] / cat_total.where(cat_total > 0)
    x = np.column_stack([dev, df["category_share"].fillna(0), np.log10(df["spend_usd"].clip(lower=1.0))])
    if len(df) >= 8:
        forest = IsolationForest(n_estimators=200, contamination="auto", random_state=seed).fit(x)
        df["forest_outlier"] = forest.predict(x) == -1
    else:  # too few suppliers to isolate anything
        df["forest_outlier"] = False
    z = df["robust_z"]
    df["flagged"] = (z >= Z_FLAG) | ((z >= Z_WITH_FOREST) & df["forest_outlier"])
    df["kg_at_stake"] = (df["kg_co2e"] - df["spend_usd"] * df["sector_median"]).clip(lower=0.0)
    df["explanation"] = _explain(df)
    return df


def _explain(df: pd.DataFrame) -> pd.Series:
    cols = ["intensity_ratio", "naics_code", "category_share", "category", "robust_z", "forest_outlier"]
    return pd.Series([
        f"intensity {ratio:.1f}× the sector median (NAICS {code}), {share:.0%} of category {int(cat)}; "
        f"robust z {z:.1f}" + ("; isolated by the forest" if forest else "")
        for ratio, code, share, cat, z, forest in df[cols].fillna({"category_share": 0.0}).itertuples(index=False)
    ], index=df.index, dtype=object)


def hotspots(suppliers: pd.DataFrame, *, seed: int = 0) -> pd.DataFrame:
    """The flagged suppliers, largest emissions at stake first (the table a dashboard shows).

    Columns: name, naics_code, category, kg_co2e, intensity, sector_median, intensity_ratio, robust_z,
    forest_outlier, kg_at_stake, category_share, explanation.
    """
    scored = score_suppliers(suppliers, seed=seed)
    cols = ["name", "naics_code", "category", "kg_co2e", "intensity", "sector_median", "intensity_ratio",
            "robust_z", "forest_outlier", "kg_at_stake", "category_share", "explanation"]
    flagged = scored[scored["flagged"]].sort_values("kg_at_stake", ascending=False)
    return flagged[cols].reset_index(drop=True)


def tenant_intensities(engine: Engine | Connection) -> pd.DataFrame:
    """The tenant's suppliers (:func:`scope3lib.ml.suppliers.tenant_suppliers`) with ``intensity`` their
    emissions over their spend (supplier-specific, ML-estimated or EEIO entries alike)."""
    sup = tenant_suppliers(engine)
    sup["intensity"] = sup["kg_co2e"] / sup["spend_usd"].where(sup["spend_usd"] > 0)
    return sup


def tenant_hotspots(engine: Engine | Connection, *, seed: int = 0) -> pd.DataFrame:
    """:func:`hotspots` over the tenant's inventory (:func:`tenant_intensities`)."""
    return hotspots(tenant_intensities(engine), seed=seed)
