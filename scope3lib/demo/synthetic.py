"""Synthetic supplier populations of any size with a ground truth, for the estimator's evaluation and benchmarks.

The same sectors, countries, regions and spend as the demo tenants, and the same hidden effect
(:func:`scope3lib.demo.data.supplier_effect`: the grid the supplier runs on, its size, an unexplained part and
planted outliers), with plain supplier names, so a population of 100,000 is drawn in a blink. Everything is
seeded and pure (no database).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..factors import builtin_factors
from .data import COUNTRIES, SECTORS, DemoData, supplier_effect


def synthetic_suppliers(n: int, seed: int, *, report_share: float = 0.25, outlier_share: float = 0.03) -> pd.DataFrame:
    """``n`` suppliers with their true intensity (kg CO2e per 2022 USD) and whether they report it.

    Columns: name, naics_code, category, country, region, annual_spend (2022 USD), sector_factor (EPA
    USEEIO v1.3.0 kg CO2e/USD), effect, true_intensity, reports, outlier.
    """
    rng = np.random.default_rng(seed)
    factors = builtin_factors("epa-useeio").set_index("factor_key")["kg_co2e_per_unit"]
    codes = np.array(list(SECTORS))
    weights = np.array([w for _, w in SECTORS.values()], dtype=float)
    naics = rng.choice(codes, size=n, p=weights / weights.sum())
    countries = np.array(list(COUNTRIES))
    shares = np.array([s for s, _ in COUNTRIES.values()])
    country = rng.choice(countries, size=n, p=shares / shares.sum())
    # Region: a uniform pick among the country's grid regions, vectorised through a padded table.
    regions = [COUNTRIES[c][1] for c in countries]
    width = max(len(r) for r in regions)
    table = np.array([(r * width)[:width] for r in regions], dtype=object)
    counts = np.array([len(r) for r in regions])
    ci = pd.Series(country).map({c: i for i, c in enumerate(countries)}).to_numpy(dtype=int)
    region = table[ci, (rng.random(n) * counts[ci]).astype(int)]
    spend = np.clip(rng.lognormal(np.log(250_000), 1.3, size=n), 5_000, 80_000_000).round(-2)
    sector_factor = factors.loc[naics].to_numpy(dtype=float)
    effect, outlier = supplier_effect(rng, sector_factor, region, spend, outlier_share=outlier_share)
    return pd.DataFrame({
        "name": [f"Supplier {seed}-{i:06d}" for i in range(n)],
        "naics_code": naics,
        "category": pd.Series(naics).map({k: c for k, (c, _) in SECTORS.items()}).to_numpy(dtype=int),
        "country": country,
        "region": region,
        "annual_spend": spend,
        "sector_factor": sector_factor,
        "effect": effect,
        "true_intensity": sector_factor * effect,
        "reports": rng.random(n) < report_share,
        "outlier": outlier,
    })


def demo_data(frame: pd.DataFrame, year: int = 2025) -> DemoData:
    """A :func:`synthetic_suppliers` frame as demo data :func:`scope3lib.demo.load` writes into a tenant:
    monthly entries, supplier-specific (the true intensity) for reporters, EEIO spend-based for the rest."""
    n = len(frame)
    months = pd.date_range(f"{year}-01-01", periods=12, freq="MS")
    idx = np.repeat(np.arange(n), 12)
    starts = months[np.tile(np.arange(12), n)]
    reports = frame["reports"].to_numpy()[idx]
    naics = frame["naics_code"].to_numpy()[idx]
    applied = np.where(reports, frame["true_intensity"].to_numpy()[idx], frame["sector_factor"].to_numpy()[idx])
    spend = (frame["annual_spend"].to_numpy()[idx] / 12).round(2)
    names = frame["name"].to_numpy()[idx]
    entries = pd.DataFrame({
        "supplier": names, "category": frame["category"].to_numpy()[idx], "period_start": starts.date,
        "period_end": (starts + pd.offsets.MonthEnd(0)).date,
        "method": np.where(reports, "supplier_specific", "spend_based"),
        "description": [f"Purchases from {nm}" for nm in names], "spend": spend, "spend_currency": "USD",
        "spend_year": 2022, "factor_source": np.where(reports, "supplier", "epa-useeio"),
        "factor_version": np.where(reports, str(year), "1.3.0"),
        "factor_key": pd.Series(naics, dtype=object).where(~reports, None), "factor_value": applied,
        "factor_unit": "USD_2022", "kg_co2e": spend * applied,
        "data_source": np.where(reports, "manual", "import"), "data_quality": np.where(reports, 2, 4),
    })
    suppliers = frame[["name", "naics_code", "country", "region", "annual_spend"]].assign(spend_currency="USD")
    devices = pd.DataFrame({"device_key": ["meter-001"], "supplier": frame["name"].iloc[:1].to_numpy(),
                            "grid_region": frame["region"].iloc[:1].to_numpy(), "category": 1})
    truth = frame[["name", "naics_code", "sector_factor", "effect", "true_intensity", "reports", "outlier"]]
    return DemoData(suppliers=suppliers, entries=entries, devices=devices, truth=truth)
