"""Data quality: a 1-5 pedigree per entry, and per category the quality and coverage an auditor asks for.

Each entry gets five indicator scores, 1 (best) to 5, in the sense of the GHG Protocol Scope 3
Technical Guidance (2013, section 7.3: reliability, completeness, temporal, geographical and
technological representativeness) and of the pedigree matrix it borrows from (Weidema & Wesnæs
1996; ecoinvent). The scores are derived from what is known about the entry: its calculation
method, where the data came from, and how far the factor's year is from the activity's.

The entry's overall ``data_quality`` is the mean of the five, rounded half up (so 3.5 is 4: a
tie goes to the worse score).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..categories import DataSource, Method

INDICATORS: tuple[str, ...] = ("reliability", "completeness", "temporal", "geographical", "technological")

METHODS: tuple[Method, ...] = tuple(Method)

#: Indicator scores by method before adjustments (reliability, completeness, temporal, geographical,
#: technological). Supplier-specific: measured by the supplier but not verified by us, allocated by
#: revenue (technology 2). Hybrid: the supplier's own scope 1+2 plus sector averages for its inputs.
#: Activity (average-data, distance-based): our measured quantities times an average factor.
#: Spend-based: sector averages per dollar (EEIO), the least specific.
PEDIGREE_BY_METHOD: dict[Method, tuple[int, int, int, int, int]] = {
    Method.SUPPLIER_SPECIFIC: (3, 2, 1, 1, 2),
    Method.HYBRID: (3, 3, 2, 2, 3),
    Method.AVERAGE_DATA: (3, 3, 2, 3, 3),
    Method.DISTANCE_BASED: (3, 3, 2, 3, 3),
    Method.SPEND_BASED: (4, 4, 3, 3, 4),
}


def _method_matrix() -> np.ndarray:
    return np.array([PEDIGREE_BY_METHOD[m] for m in METHODS], dtype=np.int8)


def temporal_score(gap_years: np.ndarray) -> np.ndarray:
    """Temporal representativeness from the years between the factor and the activity (ecoinvent's
    steps: under 3 years 1, under 6 years 2, under 10 years 3, under 15 years 4, else 5); 0 where unknown."""
    gap = np.abs(np.asarray(gap_years, dtype="float64"))
    score = np.select([gap < 3, gap < 6, gap < 10, gap < 15], [1, 2, 3, 4], default=5).astype(np.int8)
    score[~np.isfinite(gap)] = 0
    return score


def pedigree(method_code: np.ndarray, data_source: np.ndarray | pd.Series | str,
             gap_years: np.ndarray | None = None) -> np.ndarray:
    """Indicator scores, shape ``(n, 5)`` (int8, 1-5), for entries given as codes into :data:`METHODS`.

    ``data_source`` (``manual``, ``import``, ``iot``, ``ml``): metered data (iot) counts as measured
    (reliability and completeness at most 2); an ML estimate is a qualified estimate (reliability
    and technology at least 4). ``gap_years`` (factor year minus activity year, NaN if unknown)
    replaces the method's default temporal score where known.
    """
    codes = np.asarray(method_code, dtype=np.int64)
    scores = _method_matrix()[np.clip(codes, 0, len(METHODS) - 1)].copy()
    n = len(codes)
    src = (np.full(n, data_source, dtype=object) if isinstance(data_source, str)
           else np.asarray(data_source, dtype=object))
    iot = src == DataSource.IOT.value
    ml = src == DataSource.ML.value
    scores[iot, 0] = np.minimum(scores[iot, 0], 2)
    scores[iot, 1] = np.minimum(scores[iot, 1], 2)
    scores[ml, 0] = np.maximum(scores[ml, 0], 4)
    scores[ml, 4] = np.maximum(scores[ml, 4], 4)
    if gap_years is not None:
        temporal = temporal_score(gap_years)
        known = temporal > 0
        scores[known, 2] = temporal[known]
    return scores


def overall(scores: np.ndarray) -> np.ndarray:
    """The 1-5 data-quality score of each entry: the indicators' mean, rounded half up."""
    return np.floor(scores.mean(axis=1) + 0.5).astype(np.int8)


def is_primary(method: pd.Series, data_source: pd.Series) -> np.ndarray:
    """Primary data in the GHG Protocol sense: from the supplier (supplier-specific, the supplier part
    of hybrid) or metered at the source (iot)."""
    m = method.astype(str).to_numpy()
    return (m == Method.SUPPLIER_SPECIFIC.value) | (m == Method.HYBRID.value) | (
        data_source.astype(str).to_numpy() == DataSource.IOT.value
    )


def category_quality(entries: pd.DataFrame) -> pd.DataFrame:
    """Per category: kg_co2e, the emissions-weighted data-quality score, the share of emissions from
    primary data, spend in US dollars and the share of that spend covered by primary data.

    ``entries`` needs columns category, method, data_source, kg_co2e, data_quality and, optionally,
    spend_usd (spend in US dollars, NaN where none or not convertible).
    """
    if entries.empty:
        return pd.DataFrame(columns=["category", "kg_co2e", "data_quality", "primary_share", "spend_usd",
                                     "primary_spend_share"]).set_index("category")
    weight = entries["kg_co2e"].abs().to_numpy(dtype="float64")
    primary = is_primary(entries["method"], entries["data_source"])
    spend = (entries["spend_usd"].to_numpy(dtype="float64") if "spend_usd" in entries
             else np.full(len(entries), np.nan))
    spend = np.where(np.isfinite(spend), spend, 0.0)
    work = pd.DataFrame({
        "category": entries["category"].to_numpy(),
        "kg_co2e": entries["kg_co2e"].to_numpy(dtype="float64"),
        "w": weight,
        "wq": weight * entries["data_quality"].to_numpy(dtype="float64"),
        "primary_kg": np.where(primary, weight, 0.0),
        "spend_usd": spend,
        "primary_spend": np.where(primary, spend, 0.0),
    })
    g = work.groupby("category").sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        out = pd.DataFrame({
            "kg_co2e": g["kg_co2e"],
            "data_quality": (g["wq"] / g["w"]).round(2),
            "primary_share": (g["primary_kg"] / g["w"]).round(4),
            "spend_usd": g["spend_usd"].round(2),
            "primary_spend_share": (g["primary_spend"] / g["spend_usd"].where(g["spend_usd"] > 0)).round(4),
        })
    return out
