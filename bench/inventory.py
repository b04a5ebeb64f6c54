"""Benchmark: calculate 1,000,000 mixed activity and spend rows, and Monte Carlo over the demo inventory.

    .venv/bin/python bench/inventory.py [--rows 1000000] [--sample 100000] [--draws 10000]

Rows are text columns, as read from an activity CSV: spend in seven currencies and five years
(exchange rate and CPI-U price-year adjustment to 2022 USD), grid electricity in kWh and MWh, and
freight in tonne.km and tonne.mile against the DESNZ 2024 factors (pint unit conversion), each row
with its factor join and data-quality score. The same arithmetic is run by a plain per-row Python
loop on a subsample, timed and scaled to the full count, and both results are checked equal.
No database: factors come from the built-in set plus the official DESNZ workbook when it is present.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd

from scope3lib import demo
from scope3lib.accounting import currency, quality, uncertainty, units
from scope3lib.accounting.calculation import calculate
from scope3lib.categories import CATEGORIES
from scope3lib.factors import builtin_factors
from scope3lib.factors.lookup import factor_table as lookup_table
from scope3lib.factors.sources.desnz import read_desnz

DESNZ = (Path(__file__).resolve().parents[2] / "shared" / "data" / "factors"
         / "ghg-conversion-factors-2024-full_set__for_advanced_users__v1_1.xlsx")


def factor_table() -> tuple[pd.DataFrame, list[str]]:
    table = lookup_table(None)
    freight: list[str] = []
    if DESNZ.is_file():
        d = read_desnz(DESNZ).factors
        d = d[~d["factor_key"].isin(table["factor_key"])]
        table = pd.concat([table, d[["factor_key", "unit", "region", "year", "kg_co2e_per_unit"]].assign(
            source="desnz", version="2024-v1.1", latest=True)], ignore_index=True)
        freight = d.loc[d["unit"] == "tonne.km", "factor_key"].tolist()[:20]
    return table, freight


def make_rows(n: int, freight: list[str], seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    epa = builtin_factors("epa-useeio")
    epa = epa[epa["factor_key"].map(lambda k: True)]["factor_key"].to_numpy()
    grid = builtin_factors("egrid")["factor_key"].to_numpy()
    kinds = rng.choice(3 if freight else 2, size=n, p=[0.5, 0.3, 0.2] if freight else [0.6, 0.4])
    cur = rng.choice(["USD", "EUR", "GBP", "JPY", "CNY", "INR", "MXN"], size=n)
    year = rng.integers(2019, 2024, size=n).astype(str)
    spend = np.round(rng.lognormal(8, 1.5, size=n), 2).astype(str)
    qty = np.round(rng.lognormal(6, 1, size=n), 3).astype(str)
    df = pd.DataFrame({
        "category": np.where(kinds == 0, "1", np.where(kinds == 1, "3", "4")),
        "method": np.where(kinds == 0, "spend_based", np.where(kinds == 1, "average_data", "distance_based")),
        "quantity": np.where(kinds == 0, "", qty),
        "unit": np.where(kinds == 1, rng.choice(["kWh", "MWh"], size=n),
                         np.where(kinds == 2, rng.choice(["tonne.km", "tonne.mile"], size=n), "")),
        "factor_source": np.where(kinds == 0, "epa-useeio", np.where(kinds == 1, "egrid", "desnz")),
        "factor_key": np.where(kinds == 0, rng.choice(epa, size=n),
                               np.where(kinds == 1, rng.choice(grid, size=n),
                                        rng.choice(freight or ["-"], size=n))),
        "spend": np.where(kinds == 0, spend, ""),
        "currency": np.where(kinds == 0, cur, ""),
        "spend_year": np.where(kinds == 0, year, ""),
        "supplier": "",
        "period_start": "2024-01-01",
        "period_end": "2024-12-31",
    })
    # Category 12 allows no spend-based method; keep every category valid for its method.
    assert all(CATEGORIES[int(c)] for c in ("1", "3", "4"))
    return df


def per_row(rows: pd.DataFrame, factors: pd.DataFrame) -> list[float]:
    """The same arithmetic, one row at a time in plain Python (dict lookups, cached unit conversions)."""
    latest = {(s, k): (v, u, y) for s, k, v, u, y in zip(factors["source"], factors["factor_key"],
                                                       factors["kg_co2e_per_unit"], factors["unit"],
                                                       factors["year"], strict=True)}
    fx = {(r.currency, r.year): r.usd_per_unit for r in currency.EXCHANGE_RATES}
    cpi = currency.PRICE_INDEX_USD
    allowed = {(n, m.value) for n, c in CATEGORIES.items() for m in c.methods}
    base = {m.value: s for m, s in quality.PEDIGREE_BY_METHOD.items()}
    out: list[float] = []
    for r in rows.itertuples(index=False):
        method = r.method.strip().lower()
        category = int(r.category)
        if (category, method) not in allowed:
            out.append(math.nan)
            continue
        found = latest.get((r.factor_source.strip(), r.factor_key.strip()))
        if found is None:
            out.append(math.nan)
            continue
        value, funit, fyear = found
        if method == "spend_based":
            y = int(r.spend_year)
            c = r.currency.strip().upper()
            rate = 1.0 if c == "USD" else fx.get((c, y))
            if rate is None:
                out.append(math.nan)
                continue
            amount = float(r.spend) * rate * cpi[int(funit[4:])] / cpi[y]
        else:
            mult, _ = units.conversion(r.unit.strip(), funit)
            if mult is None:
                out.append(math.nan)
                continue
            amount = float(r.quantity) * mult
        gap = abs(int(r.period_start[:4]) - fyear)
        scores = list(base[method])
        scores[2] = 1 if gap < 3 else 2 if gap < 6 else 3 if gap < 10 else 4 if gap < 15 else 5
        _dq = math.floor(sum(scores) / 5 + 0.5)
        out.append(amount * value)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--sample", type=int, default=100_000, help="rows timed with the per-row loop")
    ap.add_argument("--draws", type=int, default=10_000)
    args = ap.parse_args()

    factors, freight = factor_table()
    rows = make_rows(args.rows, freight)
    print(f"{args.rows:,} rows: {dict(rows['method'].value_counts())}"
          + ("" if freight else " (DESNZ workbook not found: no distance-based rows)"))
    calculate(rows.head(1000), factors)  # warm caches (pint, imports) outside the timing
    t0 = time.perf_counter()
    out = calculate(rows, factors)
    vec = time.perf_counter() - t0
    refused = int((out["error"] != "").sum())
    print(f"vectorised: {vec:.3f} s, {args.rows / vec:,.0f} rows/s, {refused} refused, "
          f"{out['kg_co2e'].sum() / 1000:,.0f} t CO2e")

    sample = rows.head(args.sample)
    t0 = time.perf_counter()
    loop = per_row(sample, factors)
    loop_s = time.perf_counter() - t0
    scaled = loop_s * args.rows / len(sample)
    expected = out["kg_co2e"].head(args.sample).to_numpy()
    same = np.allclose(np.array(loop), expected, rtol=1e-12, equal_nan=True)
    print(f"per-row Python: {loop_s:.3f} s on {len(sample):,} rows, scaled to {args.rows:,}: {scaled:.2f} s "
          f"({args.rows / scaled:,.0f} rows/s); results equal: {same}")
    print(f"ratio: vectorised is {scaled / vec:.1f}x the per-row loop (target: 1M rows < 2 s: "
          f"{'met' if vec < 2 and args.rows >= 1_000_000 else 'not met'})")

    entries = pd.concat([demo.generate(p).entries.assign(tenant=p.slug) for p in demo.DEMO_TENANTS],
                        ignore_index=True)
    t0 = time.perf_counter()
    mc = uncertainty.monte_carlo(entries, draws=args.draws, seed=0,
                                 group=("tenant", "factor_source", "factor_version", "factor_key", "supplier"))
    mc_s = time.perf_counter() - t0
    t = mc.loc["total"]
    print(f"Monte Carlo: {len(entries):,} demo entries, {args.draws:,} draws in {mc_s:.3f} s "
          f"(target < 5 s: {'met' if mc_s < 5 else 'not met'}); total {t['kg_co2e'] / 1000:,.0f} t CO2e, "
          f"95% interval {t['p2_5'] / 1000:,.0f} - {t['p97_5'] / 1000:,.0f} t")


if __name__ == "__main__":
    main()
