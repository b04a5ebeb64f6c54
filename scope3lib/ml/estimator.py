"""The supplier-intensity estimator: a model of how far a supplier departs from its EEIO sector factor.

Pure functions over DataFrames (no database): :func:`train` on suppliers that report their own intensity
(kg CO2e per 2022 USD), :meth:`Estimator.predict` for the others, with split-conformal 90 % intervals and
a confidence per estimate; :func:`eeio_estimates` is the fallback. :mod:`scope3lib.ml.estimates` applies
it to a tenant (see its docstring for the method and its references).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import GradientBoostingRegressor
from sklearn.model_selection import GroupKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from ..errors import TooFewReportingSuppliers, UnknownSector
from ..factors import lookup

MIN_REPORTING = 30  # below this, 5-fold CV leaves too few suppliers per fold to calibrate an interval
ALPHA = 0.10  # 90 % intervals
EEIO_SOURCE = "epa-useeio"
FACTOR_SOURCE = "ml-estimator"
CATEGORICAL = ["country", "region", "category"]
NUMERIC = ["log_eeio", "log10_spend"]
MAX_LOG_DEPARTURE = 2.5  # cap on |log(estimate / EEIO)|: an estimate never departs more than ~12x from EEIO

DEFAULT_PARAMS: dict[str, Any] = {
    "loss": "huber", "n_estimators": 120, "learning_rate": 0.05, "max_depth": 2, "min_samples_leaf": 5,
    "subsample": 0.8,
}




def eeio_factors() -> pd.Series:
    """The built-in EEIO sector factors (kg CO2e per 2022 USD by NAICS code): the default basis of a model
    used without a database (:func:`scope3lib.factors.lookup.sector_factors` with no engine)."""
    return lookup.sector_factors(None)


def features(suppliers: pd.DataFrame, eeio: pd.Series | None = None) -> pd.DataFrame:
    """Model inputs from suppliers (naics_code, country, region, annual_spend in USD, category).

    Raises :class:`UnknownSector` for NAICS codes without an EEIO factor.
    """
    eeio = eeio_factors() if eeio is None else eeio
    codes = suppliers["naics_code"].astype(str)
    factor = codes.map(eeio).to_numpy(dtype=float)
    bad = ~np.isfinite(factor) | (factor <= 0)
    if bad.any():
        raise UnknownSector(sorted(set(codes[bad])))
    spend = pd.to_numeric(suppliers["annual_spend"], errors="coerce").fillna(1.0).clip(lower=1.0)
    return pd.DataFrame({
        "log_eeio": np.log(factor),
        "log10_spend": np.log10(spend.to_numpy(dtype=float)),
        "country": suppliers["country"].fillna("unknown").astype(str).to_numpy(),
        "region": suppliers["region"].fillna("unknown").astype(str).to_numpy(),
        "category": suppliers["category"].fillna(0).astype(int).astype(str).to_numpy(),
    }, index=suppliers.index)


def _pipeline(params: dict[str, Any], seed: int) -> Pipeline:
    encode = ColumnTransformer([
        ("cat", OneHotEncoder(handle_unknown="ignore", min_frequency=3, sparse_output=False), CATEGORICAL),
        ("num", "passthrough", NUMERIC),
    ])
    return Pipeline([("encode", encode), ("model", GradientBoostingRegressor(random_state=seed, **params))])


def _sigma(codes: pd.Series, peers: dict[str, int]) -> np.ndarray:
    """Difficulty of each estimate: wider when few reporting suppliers share the sector."""
    n = codes.astype(str).map(peers).fillna(0).to_numpy(dtype=float)
    return np.asarray(1.0 + 1.0 / np.sqrt(1.0 + n))


def conformal_quantile(scores: np.ndarray, alpha: float = ALPHA) -> float:
    """The split-conformal quantile of nonconformity scores (finite-sample corrected)."""
    n = len(scores)
    level = min(1.0, math.ceil((n + 1) * (1 - alpha)) / n)
    return float(np.quantile(scores, level, method="higher"))


def score(true_intensity: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """MAPE (%) on intensity and R² on log intensity."""
    t, p = np.asarray(true_intensity, dtype=float), np.asarray(predicted, dtype=float)
    lt, lp = np.log(t), np.log(p)
    ss_res = float(np.sum((lt - lp) ** 2))
    ss_tot = float(np.sum((lt - lt.mean()) ** 2))
    return {"mape_pct": float(np.mean(np.abs(p - t) / t) * 100), "r2_log": 1.0 - ss_res / ss_tot if ss_tot else 0.0}


def fingerprint(frame: pd.DataFrame) -> str:
    """sha256 of the training rows (sorted, values rounded), so a model names the data it learnt from."""
    cols = ["name", "naics_code", "country", "region", "annual_spend", "category", "intensity"]
    df = frame[[c for c in cols if c in frame.columns]].sort_values("name")
    text = df.to_csv(index=False, float_format="%.8g")
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class Estimator:
    """A trained intensity estimator: the sklearn pipeline, its conformal quantile and sector peer counts."""

    pipeline: Pipeline
    q: float  # conformal quantile of |log residual| / sigma
    peers: dict[str, int]  # reporting suppliers per NAICS code in the training data
    params: dict[str, Any]
    metrics: dict[str, float]
    fingerprint: str
    alpha: float = ALPHA
    version: str | None = None  # set by the model registry
    eeio: pd.Series = field(default_factory=eeio_factors, repr=False)

    def predict(self, suppliers: pd.DataFrame) -> pd.DataFrame:
        """One row per supplier: estimate, lower, upper (kg CO2e per 2022 USD), confidence (0-1),
        data_quality (4-5), eeio_factor, basis ``"ml"`` and model_version."""
        x = features(suppliers, self.eeio)
        departure = np.clip(self.pipeline.predict(x), -MAX_LOG_DEPARTURE, MAX_LOG_DEPARTURE)
        log_est = x["log_eeio"].to_numpy() + departure
        half = self.q * _sigma(suppliers["naics_code"], self.peers)
        peers = suppliers["naics_code"].astype(str).map(self.peers).fillna(0).to_numpy()
        confidence = np.exp(-half)
        out = pd.DataFrame({
            "naics_code": suppliers["naics_code"].astype(str).to_numpy(),
            "eeio_factor": np.exp(x["log_eeio"].to_numpy()),
            "estimate": np.exp(log_est),
            "lower": np.exp(log_est - half),
            "upper": np.exp(log_est + half),
            "confidence": confidence,
            "data_quality": np.where((peers >= 3) & (confidence >= 0.5), 4, 5),
            "basis": "ml",
            "model_version": self.version,
        }, index=suppliers.index)
        if "name" in suppliers.columns:
            out.insert(0, "name", suppliers["name"].to_numpy())
        return out


def train(reporting: pd.DataFrame, *, seed: int = 0, min_suppliers: int = MIN_REPORTING, folds: int = 5,
          params: dict[str, Any] | None = None, eeio: pd.Series | None = None) -> Estimator:
    """Train on suppliers with their own ``intensity`` (kg CO2e per 2022 USD), one row per supplier.

    Metrics are out-of-fold (cross-validation grouped by supplier): ``mape_pct``/``r2_log`` of the model and
    of the EEIO baseline (``eeio_mape_pct``/``eeio_r2_log``), the interval's out-of-fold ``coverage`` and its
    median width ratio ``upper/lower``.
    """
    eeio = eeio_factors() if eeio is None else eeio
    params = {**DEFAULT_PARAMS, **(params or {})}
    intensity = pd.to_numeric(reporting["intensity"], errors="coerce")
    rep = reporting[np.isfinite(intensity) & (intensity > 0)].reset_index(drop=True)
    if len(rep) < min_suppliers:
        raise TooFewReportingSuppliers(len(rep), min_suppliers)
    x = features(rep, eeio)
    y = np.log(rep["intensity"].to_numpy(dtype=float)) - x["log_eeio"].to_numpy()
    groups = rep["name"].astype(str).to_numpy()
    codes = rep["naics_code"].astype(str)
    oof = np.zeros(len(rep))
    sigma = np.zeros(len(rep))
    for fit_idx, test_idx in GroupKFold(n_splits=folds, shuffle=True, random_state=seed).split(x, y, groups):
        pipe = _pipeline(params, seed).fit(x.iloc[fit_idx], y[fit_idx])
        oof[test_idx] = np.clip(pipe.predict(x.iloc[test_idx]), -MAX_LOG_DEPARTURE, MAX_LOG_DEPARTURE)
        fold_peers = codes.iloc[fit_idx].value_counts().to_dict()
        sigma[test_idx] = _sigma(codes.iloc[test_idx], fold_peers)
    scores = np.abs(y - oof) / sigma
    q = conformal_quantile(scores, ALPHA)
    true = rep["intensity"].to_numpy(dtype=float)
    eeio_pred = np.exp(x["log_eeio"].to_numpy())
    model = score(true, eeio_pred * np.exp(oof))
    base = score(true, eeio_pred)
    metrics = {
        "suppliers": float(len(rep)), "mape_pct": model["mape_pct"], "r2_log": model["r2_log"],
        "eeio_mape_pct": base["mape_pct"], "eeio_r2_log": base["r2_log"],
        "coverage": float(np.mean(scores <= q)), "median_width_ratio": float(np.median(np.exp(2 * q * sigma))),
        "q": q,
        # The gate the tenant path applies: an estimator that does not beat EEIO out of fold is not used.
        "beats_baseline": float(model["mape_pct"] < base["mape_pct"] and model["r2_log"] > base["r2_log"]),
    }
    final = _pipeline(params, seed).fit(x, y)
    return Estimator(pipeline=final, q=q, peers={str(k): int(v) for k, v in codes.value_counts().items()},
                     params={**params, "seed": seed, "folds": folds}, metrics=metrics, fingerprint=fingerprint(rep),
                     eeio=eeio)


def eeio_estimates(suppliers: pd.DataFrame, reason: str, eeio: pd.Series | None = None) -> pd.DataFrame:
    """The fallback: the EEIO factor as the estimate (data quality 4, no interval), with the reason."""
    x = features(suppliers, eeio)
    factor = np.exp(x["log_eeio"].to_numpy())
    out = pd.DataFrame({
        "naics_code": suppliers["naics_code"].astype(str).to_numpy(), "eeio_factor": factor, "estimate": factor,
        "lower": np.nan, "upper": np.nan, "confidence": np.nan, "data_quality": 4, "basis": "eeio",
        "model_version": None, "reason": reason,
    }, index=suppliers.index)
    if "name" in suppliers.columns:
        out.insert(0, "name", suppliers["name"].to_numpy())
    return out


def evaluate(estimator: Estimator, heldout: pd.DataFrame) -> pd.DataFrame:
    """Model against the EEIO baseline on suppliers with a known ``true_intensity`` (or ``intensity``):
    rows ``model`` and ``eeio``, columns mape_pct, r2_log, coverage (model only), suppliers."""
    truth_col = "true_intensity" if "true_intensity" in heldout.columns else "intensity"
    true = heldout[truth_col].to_numpy(dtype=float)
    pred = estimator.predict(heldout)
    inside = (true >= pred["lower"].to_numpy()) & (true <= pred["upper"].to_numpy())
    rows = {
        "model": {**score(true, pred["estimate"].to_numpy()), "coverage": float(inside.mean())},
        "eeio": {**score(true, pred["eeio_factor"].to_numpy()), "coverage": float("nan")},
    }
    df = pd.DataFrame(rows).T
    df["suppliers"] = len(heldout)
    return df
