"""Synthetic demo tenants: suppliers, a year of monthly emission entries, and meters.

Seeded and reproducible. The generator also returns its **ground truth** so that estimates can be
scored (issue 6): each supplier's true emission intensity is its sector's EPA factor (kg CO2e per
2022 USD) times a hidden supplier effect drawn from LogNormal(0, 0.4); a few planted outliers get
an effect 4-8 times larger. Suppliers that "report" disclose their true intensity (entries with
method ``supplier_specific``); the others are estimated from spend with the sector factor
(``spend_based``), as a company would before engaging them.

Demo spend is stated in 2022 US dollars, the price basis of the EPA factors, so the factor applies
without a currency or price-year conversion.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from .. import frames
from ..accounting import entries
from ..errors import Scope3Error
from ..factors import builtin_factors
from ..meters.credentials import mosquitto_hash
from ..models import Device, Supplier
from ..suppliers import records
from ..tenancy import tenant_id

# NAICS sector -> (GHG Protocol category the purchases fall under, relative number of suppliers).
SECTORS: dict[str, tuple[int, float]] = {
    "311611": (1, 3), "313210": (1, 3), "322211": (1, 5), "325211": (1, 5), "325412": (1, 2),
    "326199": (1, 6), "327310": (1, 2), "331110": (1, 4), "332710": (1, 7), "336390": (1, 5),
    "423430": (1, 3), "541511": (1, 5), "541611": (1, 4), "541330": (1, 4), "561320": (1, 3),
    "517311": (1, 2), "221310": (1, 1), "236220": (2, 3), "334111": (2, 3), "484121": (4, 5),
    "493110": (4, 3), "562111": (5, 2), "562212": (12, 1), "481111": (6, 2), "721110": (6, 2),
    "485111": (7, 2), "531120": (8, 2), "492110": (9, 3),
}

# A word for each sector, for supplier names a reader can place.
_SECTOR_WORD = {
    "311611": "Meats", "313210": "Textiles", "322211": "Packaging", "325211": "Polymers", "325412": "Pharma",
    "326199": "Plastics", "327310": "Cement", "331110": "Steel", "332710": "Machining", "336390": "Autoparts",
    "423430": "Computers", "541511": "Software", "541611": "Consulting", "541330": "Engineering",
    "561320": "Staffing", "517311": "Telecom", "221310": "Water", "236220": "Construction",
    "334111": "Hardware", "484121": "Freight", "493110": "Warehousing", "562111": "Waste",
    "562212": "Landfill", "481111": "Airlines", "721110": "Hotels", "485111": "Transit",
    "531120": "Properties", "492110": "Couriers",
}

# Country -> (share of suppliers, grid regions). US suppliers sit in eGRID subregions.
COUNTRIES: dict[str, tuple[float, list[str]]] = {
    "US": (0.60, ["CAMX", "ERCT", "RFCE", "RFCW", "NYUP", "SRSO", "NWPP", "MROW"]),
    "GB": (0.10, ["GB"]), "DE": (0.08, ["DE"]), "FR": (0.05, ["FR"]), "CN": (0.08, ["CN"]),
    "IN": (0.04, ["IN"]), "MX": (0.03, ["MX"]), "JP": (0.02, ["JP"]),
}

# The hidden part of each supplier's intensity (its "effect" on its sector's EEIO factor). Part of it depends
# on what is known about the supplier, as real intensities do, so a model can learn it (scope3lib.ml): the
# grid it runs on (a stated assumption of this generator, ordered like published grid intensities, not
# measured values), scaled by how energy-intensive its sector is; its size (-0.12 per decade of spend above
# 250,000 USD); an unexplained part LogNormal(0, 0.2); and planted outliers (3 %) multiplied by 4-8.
GRID_TERM: dict[str, float] = {
    "CN": 0.45, "IN": 0.55, "MX": 0.15, "JP": 0.10, "DE": 0.05, "GB": -0.25, "FR": -0.50,
    "CAMX": -0.20, "ERCT": 0.05, "RFCE": -0.05, "RFCW": 0.25, "NYUP": -0.35, "SRSO": 0.10, "NWPP": -0.25,
    "MROW": 0.30,
}
SIZE_SLOPE = -0.12  # log-effect per decade of annual spend above 250,000 USD
NOISE_SD = 0.2  # sd of the unexplained log-effect
OUTLIER_SHARE = 0.03


def supplier_effect(rng: np.random.Generator, sector_factor: np.ndarray, region: np.ndarray, spend: np.ndarray,
                    *, learnable: bool = True, outlier_share: float = OUTLIER_SHARE) -> tuple[np.ndarray, np.ndarray]:
    """Each supplier's effect (true intensity / sector factor) and whether it is a planted outlier.

    ``learnable=False`` draws the effect independently of everything known (LogNormal(0, 0.4)), a population on
    which the sector factor is already the best estimate: what an estimator must recognise and refuse to use.
    """
    n = len(sector_factor)
    if learnable:
        energy_weight = np.clip(np.log(sector_factor / 0.1) / np.log(10), 0.3, 1.0)  # services feel a third
        grid = pd.Series(region).map(GRID_TERM).fillna(0.0).to_numpy(dtype=float)
        log_effect = energy_weight * grid + SIZE_SLOPE * np.log10(spend / 250_000) + rng.normal(0, NOISE_SD, n)
        effect = np.exp(log_effect)
    else:
        effect = rng.lognormal(0.0, 0.4, size=n)
    outlier = rng.random(n) < outlier_share
    effect[outlier] *= rng.uniform(4, 8, size=int(outlier.sum()))
    return effect, outlier


_NAME_A = ["Northwind", "Bluewater", "Summit", "Granite", "Redwood", "Cobalt", "Harbor", "Pioneer", "Silver",
           "Evergreen", "Atlas", "Meridian", "Keystone", "Lakeside", "Ironbridge", "Crescent", "Falcon",
           "Horizon", "Orchard", "Sterling", "Tidewater", "Vanguard", "Westfield", "Beacon"]
_NAME_B = ["Industries", "Works", "Group", "Partners", "Supply", "Holdings", "Solutions", "Systems",
           "Logistics", "Manufacturing", "Services", "Trading"]


@dataclass(frozen=True)
class DemoProfile:
    slug: str
    name: str
    plan: str
    seed: int
    suppliers: int = 800
    devices: int = 8
    year: int = 2025
    learnable: bool = True  # see supplier_effect
    # Meters the demo's simulator plants a fault in, for the anomaly detection to find.
    faults: tuple[tuple[str, str], ...] = (("meter-003", "stuck"), ("meter-005", "spike"))


DEMO_TENANTS = (
    DemoProfile("acme", "Acme Manufacturing", "professional", seed=11),
    DemoProfile("globex", "Globex Retail", "enterprise", seed=23, suppliers=900, devices=6),
)


@dataclass
class DemoData:
    suppliers: pd.DataFrame  # name, naics_code, country, region, annual_spend, spend_currency
    entries: pd.DataFrame  # one row per supplier and month, columns of emission_entries
    devices: pd.DataFrame  # device_key, supplier, grid_region, category
    truth: pd.DataFrame  # name, sector_factor, effect, true_intensity, reports, outlier


@dataclass
class _Drawn:
    """The drawn suppliers and their hidden intensities, as arrays aligned by supplier."""

    names: np.ndarray
    naics: np.ndarray
    country: np.ndarray
    region: np.ndarray
    spend: np.ndarray  # annual, 2022 USD
    sector_factor: np.ndarray
    effect: np.ndarray
    true_intensity: np.ndarray
    reports: np.ndarray
    outlier: np.ndarray


def generate(profile: DemoProfile) -> DemoData:
    """Generate a tenant's demo data (pure: no database)."""
    # One generator drawn in a fixed order (suppliers, intensities, entries, devices): the data
    # depend on that order, and the seed reproduces them.
    rng = np.random.default_rng(profile.seed)
    drawn = _draw_suppliers(rng, profile.suppliers, profile.learnable)
    entries = _monthly_entries(rng, drawn, profile.year)
    devices = _devices(rng, drawn, profile.devices)
    suppliers = pd.DataFrame({
        "name": drawn.names, "naics_code": drawn.naics, "country": drawn.country, "region": drawn.region,
        "annual_spend": drawn.spend, "spend_currency": "USD",
    })
    truth = pd.DataFrame({
        "name": drawn.names, "naics_code": drawn.naics, "sector_factor": drawn.sector_factor, "effect": drawn.effect,
        "true_intensity": drawn.true_intensity, "reports": drawn.reports, "outlier": drawn.outlier,
    })
    return DemoData(suppliers=suppliers, entries=entries, devices=devices, truth=truth)


def _draw_suppliers(rng: np.random.Generator, n: int, learnable: bool = True) -> _Drawn:
    factors = builtin_factors("epa-useeio").set_index("factor_key")
    codes = np.array(list(SECTORS))
    weights = np.array([w for _, w in SECTORS.values()], dtype=float)
    naics = rng.choice(codes, size=n, p=weights / weights.sum())
    # Every sector appears at least once, so the demo covers all of them.
    naics[: len(codes)] = rng.permutation(codes)[: min(n, len(codes))]
    countries = np.array(list(COUNTRIES))
    shares = np.array([s for s, _ in COUNTRIES.values()])
    country = rng.choice(countries, size=n, p=shares / shares.sum())
    region = np.array([rng.choice(COUNTRIES[c][1]) for c in country])
    spend = np.clip(rng.lognormal(np.log(250_000), 1.3, size=n), 5_000, 80_000_000).round(-2)
    names = _unique_names(rng, n, naics)

    sector_factor = factors.loc[naics, "kg_co2e_per_unit"].to_numpy(dtype=float)
    effect, outlier = supplier_effect(rng, sector_factor, region, spend, learnable=learnable)
    reports = rng.random(n) < 0.25
    return _Drawn(names=names, naics=naics, country=country, region=region, spend=spend,
                  sector_factor=sector_factor, effect=effect, true_intensity=sector_factor * effect,
                  reports=reports, outlier=outlier)


def _monthly_entries(rng: np.random.Generator, drawn: _Drawn, year: int) -> pd.DataFrame:
    """One emission entry per supplier and month of ``year``: the supplier's disclosed intensity when it
    reports, else its sector's factor, applied to the month's spend."""
    n, names, naics, reports = len(drawn.names), drawn.names, drawn.naics, drawn.reports
    months = pd.date_range(f"{year}-01-01", periods=12, freq="MS")
    season = 1 + 0.15 * np.sin(2 * np.pi * (np.arange(12) - 2) / 12)
    monthly = (drawn.spend[:, None] / 12) * season[None, :] * rng.lognormal(0, 0.1, size=(n, 12))
    idx = np.repeat(np.arange(n), 12)
    month_idx = np.tile(np.arange(12), n)
    spend_m = monthly.ravel().round(2)
    applied = np.where(reports[idx], drawn.true_intensity[idx], drawn.sector_factor[idx])
    starts = months[month_idx]
    return pd.DataFrame({
        "supplier": names[idx],
        "category": [SECTORS[c][0] for c in naics[idx]],
        "period_start": starts.date,
        "period_end": (starts + pd.offsets.MonthEnd(0)).date,
        "method": np.where(reports[idx], "supplier_specific", "spend_based"),
        "description": [f"Purchases from {nm}" for nm in names[idx]],
        "spend": spend_m,
        "spend_currency": "USD",
        "spend_year": 2022,
        "factor_source": np.where(reports[idx], "supplier", "epa-useeio"),
        "factor_version": np.where(reports[idx], str(year), "1.3.0"),
        "factor_key": pd.Series(naics[idx], dtype=object).where(~reports[idx], None),
        "factor_value": applied,
        "factor_unit": "USD_2022",
        "kg_co2e": spend_m * applied,
        "data_source": np.where(reports[idx], "manual", "import"),
        # Pedigree: supplier-disclosed data 2, sector averages from spend 4 (GHG Protocol guidance).
        "data_quality": np.where(reports[idx], 2, 4),
    })


def _devices(rng: np.random.Generator, drawn: _Drawn, count: int) -> pd.DataFrame:
    """``count`` meters, each at the site of a different supplier."""
    site_suppliers = rng.choice(len(drawn.names), size=count, replace=False)
    return pd.DataFrame({
        "device_key": [f"meter-{i + 1:03d}" for i in range(count)],
        "supplier": drawn.names[site_suppliers],
        "grid_region": drawn.region[site_suppliers],
        "category": 1,
    })


def _unique_names(rng: np.random.Generator, n: int, naics: np.ndarray) -> np.ndarray:
    names: list[str] = []
    used: set[str] = set()
    for code in naics:
        while True:
            word = _SECTOR_WORD[code]
            candidate = f"{rng.choice(_NAME_A)} {word} {rng.choice(_NAME_B)}"
            if candidate in used:
                candidate = f"{candidate} {len(used) + 1}"
            if candidate not in used:
                break
        used.add(candidate)
        names.append(candidate)
    return np.array(names, dtype=object)


def load(engine: Engine, slug: str, data: DemoData) -> None:
    """Write demo data into an existing, empty tenant (admin connection; one transaction)."""
    with engine.begin() as conn:
        tid = tenant_id(conn, slug)
        if conn.scalar(sa.select(sa.func.count()).select_from(Supplier).where(Supplier.tenant_id == tid)):
            raise Scope3Error(f"tenant {slug!r} already has suppliers; demo data goes into an empty tenant")
        ids = records.add_many(conn, tid, data.suppliers, reason="demo data")
        rows = data.entries.assign(tenant_id=tid, supplier_id=data.entries["supplier"].map(ids))
        entries.insert(conn, rows.drop(columns=["supplier"]))
        devices = data.devices.assign(
            tenant_id=tid,
            supplier_id=data.devices["supplier"].map(ids),
            expected_interval_s=60,
            # Demo meters get their credentials from `scope3 meters simulate`, which re-issues them.
            credential_hash=[mosquitto_hash(secrets.token_urlsafe(18)) for _ in range(len(data.devices))],
        )
        conn.execute(sa.insert(Device), frames.rows(devices.drop(columns=["supplier"])))
