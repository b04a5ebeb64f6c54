"""Monte Carlo propagation of uncertainty: log-normal per entry, spread from its pedigree score.

Mapping from pedigree to spread: the ecoinvent pedigree approach (Weidema & Wesnæs 1996;
Frischknecht et al. 2007, ecoinvent report No. 1, "Overview and Methodology"; the same default
uncertainty factors as openLCA's ecoinvent data quality system). Each indicator score gives an
uncertainty factor U; with the basic uncertainty factor U_b,

    SDg95 = exp( sqrt( ln(U_b)^2 + sum_i ln(U_i)^2 ) )

is the square of the geometric standard deviation, so the log-normal's sigma is
``0.5 * sqrt(...)`` and 95% of draws fall in ``[median / SDg95, median * SDg95]``. The entry's value
is the median.

Entries that share a factor and a supplier (the twelve monthly entries of one supplier, say) share
one draw: their errors come from the same factor or report, so treating them as independent would
shrink the interval. Different groups are drawn independently.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: Uncertainty factors U by indicator (rows: reliability, completeness, temporal, geographical,
#: technological) and score 1-5 (columns), ecoinvent v2 pedigree matrix.
PEDIGREE_UNCERTAINTY = np.array([
    [1.00, 1.05, 1.10, 1.20, 1.50],
    [1.00, 1.02, 1.05, 1.10, 1.20],
    [1.00, 1.03, 1.10, 1.20, 1.50],
    [1.00, 1.01, 1.02, 1.05, 1.10],
    [1.00, 1.05, 1.20, 1.50, 2.00],
])  # fmt: skip

#: Basic uncertainty factor: ecoinvent's default for CO2 emissions, the gas that dominates CO2e.
BASIC_UNCERTAINTY = 1.05


def sigma_from_indicators(scores: np.ndarray) -> np.ndarray:
    """Log-normal sigma of each entry from its five indicator scores (array ``(n, 5)``, 1-5)."""
    s = np.clip(np.asarray(scores, dtype=np.int64), 1, 5) - 1
    logs = np.log(PEDIGREE_UNCERTAINTY[np.arange(5), s])  # (n, 5)
    return 0.5 * np.sqrt(np.log(BASIC_UNCERTAINTY) ** 2 + (logs**2).sum(axis=1))


def sigma_from_score(score: np.ndarray | pd.Series) -> np.ndarray:
    """Log-normal sigma from an overall 1-5 data-quality score (all five indicators at that score)."""
    s = np.clip(np.asarray(score, dtype=np.int64), 1, 5)
    return sigma_from_indicators(np.repeat(s[:, None], 5, axis=1))


def sdg95(score: int) -> float:
    """The 95% spread factor of one entry with overall score ``score``."""
    return float(np.exp(2 * sigma_from_score(np.array([score]))[0]))


def monte_carlo(entries: pd.DataFrame, draws: int = 10_000, seed: int = 0, by: str = "category",
                group: tuple[str, ...] = ("factor_source", "factor_version", "factor_key", "supplier_id"),
                block: int = 1000) -> pd.DataFrame:
    """95% interval (2.5th and 97.5th percentiles), mean and median of the Monte Carlo draws, per
    ``by`` value and for the total (index ``"total"``), in kg CO2e.

    ``entries`` needs kg_co2e, data_quality (1-5), the ``by`` column and, where present, the
    ``group`` columns (entries equal on all of them share a draw). Seeded: the same seed gives the
    same numbers.
    """
    if draws < 2:
        raise ValueError("draws must be at least 2")
    df = entries.copy()
    keys = [c for c in group if c in df.columns]
    df["_sigma"] = sigma_from_score(df["data_quality"].to_numpy())
    df["_w"] = df["kg_co2e"].abs()
    df["_ws"] = df["_w"] * df["_sigma"]
    gkeys = [by, *keys]
    grouped = df.groupby(gkeys, dropna=False, sort=False).agg(
        kg=("kg_co2e", "sum"), w=("_w", "sum"), ws=("_ws", "sum")
    ).reset_index()
    # A group's spread is its entries' emission-weighted sigma.
    sigma = np.where(grouped["w"] > 0, grouped["ws"] / grouped["w"].where(grouped["w"] > 0, 1.0), 0.0)
    kg = grouped["kg"].to_numpy(dtype="float64")
    labels, cat_index = np.unique(grouped[by].astype(str).to_numpy(), return_inverse=True)
    rng = np.random.default_rng(seed)
    sums = np.empty((len(labels), draws))
    for start in range(0, draws, block):
        stop = min(start + block, draws)
        # Median-preserving multipliers: exp(N(0, sigma)).
        z = rng.standard_normal((len(kg), stop - start))
        values = kg[:, None] * np.exp(sigma[:, None] * z)
        sums[:, start:stop] = 0.0
        if len(labels) > 64:
            np.add.at(sums[:, start:stop], cat_index, values)
        else:
            _add_by_label(sums[:, start:stop], cat_index, values, len(labels))
    total = sums.sum(axis=0)
    rows = [*labels.tolist(), "total"]
    data = np.vstack([sums, total[None, :]])
    point = [*np.bincount(cat_index, weights=kg, minlength=len(labels)).tolist(), float(kg.sum())]
    out = pd.DataFrame({
        by: rows,
        "kg_co2e": point,
        "mean": data.mean(axis=1),
        "p2_5": np.percentile(data, 2.5, axis=1),
        "median": np.median(data, axis=1),
        "p97_5": np.percentile(data, 97.5, axis=1),
    }).set_index(by)
    return out


def _add_by_label(target: np.ndarray, index: np.ndarray, values: np.ndarray, labels: int) -> None:
    # A matrix product sums rows by label much faster than np.add.at for few labels.
    onehot = np.zeros((labels, len(index)))
    onehot[index, np.arange(len(index))] = 1.0
    target += onehot @ values
