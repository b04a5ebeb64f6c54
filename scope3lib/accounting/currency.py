"""Exchange rates and price indices for spend-based factors, each value with its citation.

A spend-based (EEIO) factor is stated per unit of one currency at one year's prices: the EPA
Supply Chain factors are kg CO2e per 2022 US dollar (purchaser price). Spend in another currency
or year is converted in two steps, the usual order for EEIO work:

1. to US dollars at the annual average exchange rate **of the spend's year**;
2. from that year's dollars to the factor's price year with the US CPI-U annual averages
   (``usd_factor_year = usd_spend_year * CPI[factor_year] / CPI[spend_year]``).

Only values found in the publishers' releases are typed in. A currency-year that is not in the
table is **not** guessed: rows that need it are refused with the reason (see ``calculation.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import pandas as pd

_G5A_2021 = (
    "Federal Reserve Board, G.5A Foreign Exchange Rates (Annual), release federalreserve.gov/releases/g5a/20210104"
)
_G5A_2024 = "Federal Reserve Board, G.5A Foreign Exchange Rates (Annual), release of February 1, 2024 (data year 2023)"
_ECB = (
    "European Central Bank, euro foreign exchange reference rates, annual average, series EXR.A.USD.EUR.SP00.A"
)


@dataclass(frozen=True)
class Rate:
    """One annual average rate as published: ``value`` in ``quote`` (``"per_usd"``: currency units per
    US dollar; ``"usd_per"``: US dollars per currency unit, the way G.5A quotes EUR and GBP)."""

    currency: str
    year: int
    value: float
    quote: str
    citation: str

    @property
    def usd_per_unit(self) -> float:
        return self.value if self.quote == "usd_per" else 1.0 / self.value


def _g5a(year: int, citation: str, eur: float, gbp: float, jpy: float, cny: float, inr: float,
         mxn: float) -> list[Rate]:
    return [
        Rate("EUR", year, eur, "usd_per", citation),
        Rate("GBP", year, gbp, "usd_per", citation),
        Rate("JPY", year, jpy, "per_usd", citation),
        Rate("CNY", year, cny, "per_usd", citation),
        Rate("INR", year, inr, "per_usd", citation),
        Rate("MXN", year, mxn, "per_usd", citation),
    ]


#: Annual average exchange rates. G.5A averages the noon buying rates in New York certified by the
#: Federal Reserve Bank of New York. 2024 and 2025 G.5A figures were not available to us, so those
#: years carry only the euro, from the ECB's reference rates; other currencies in 2024-2025 are refused.
EXCHANGE_RATES: tuple[Rate, ...] = (
    *_g5a(2019, _G5A_2021, eur=1.1194, gbp=1.2768, jpy=109.0188, cny=6.9081, inr=70.3777, mxn=19.2469),
    *_g5a(2020, _G5A_2024, eur=1.1410, gbp=1.2829, jpy=106.7754, cny=6.9042, inr=74.1429, mxn=21.5462),
    *_g5a(2021, _G5A_2024, eur=1.1830, gbp=1.3764, jpy=109.8429, cny=6.4508, inr=73.9351, mxn=20.2844),
    *_g5a(2022, _G5A_2024, eur=1.0534, gbp=1.2371, jpy=131.4589, cny=6.7290, inr=78.5792, mxn=20.1208),
    *_g5a(2023, _G5A_2024, eur=1.0817, gbp=1.2440, jpy=140.5001, cny=7.0809, inr=82.5708, mxn=17.7334),
    Rate("EUR", 2024, 1.0824, "usd_per", f"{_ECB}, 2024 = 1.0824 USD per EUR"),
    Rate("EUR", 2025, 1.12998, "usd_per", f"{_ECB}, 2025 = 1.1299831 USD per EUR"),
)

_CPI_CITATION = (
    "US Bureau of Labor Statistics, CPI for All Urban Consumers (CPI-U), U.S. city average, all items, "
    "not seasonally adjusted, 1982-84=100, series CUUR0000SA0, annual average (period M13)"
)

#: US CPI-U annual averages (1982-84 = 100), the price index for US-dollar factors.
PRICE_INDEX_USD: dict[int, float] = {
    2019: 255.657,
    2020: 258.811,
    2021: 270.970,
    2022: 292.655,
    2023: 304.702,
    2024: 313.689,
    # BLS averaged the eleven months it published: no October 2025 index was collected during the
    # lapse in appropriations.
    2025: 321.943,
}


@dataclass(frozen=True)
class PriceIndex:
    currency: str
    values: dict[int, float]
    citation: str


PRICE_INDICES: dict[str, PriceIndex] = {"USD": PriceIndex("USD", PRICE_INDEX_USD, _CPI_CITATION)}


def exchange_rates() -> pd.DataFrame:
    """The exchange-rate table: currency, year, value as published, quote, usd_per_unit, citation."""
    return pd.DataFrame(
        [
            {"currency": r.currency, "year": r.year, "value": r.value, "quote": r.quote,
             "usd_per_unit": r.usd_per_unit, "citation": r.citation}
            for r in EXCHANGE_RATES
        ]
    )


def price_indices() -> pd.DataFrame:
    """The price-index table: currency, year, index, citation."""
    return pd.DataFrame(
        [
            {"currency": p.currency, "year": y, "index": v, "citation": p.citation}
            for p in PRICE_INDICES.values()
            for y, v in sorted(p.values.items())
        ]
    )


# Years the lookup arrays cover; outside them nothing is known.
_FIRST_YEAR, _LAST_YEAR = 1990, 2100


@dataclass(frozen=True)
class _Lookup:
    currencies: dict[str, int]
    usd_per_unit: np.ndarray  # [currency, year - _FIRST_YEAR], NaN where unknown
    cpi: np.ndarray  # [year - _FIRST_YEAR] of the USD index, NaN where unknown


@cache
def _lookup() -> _Lookup:
    currencies = {"USD": 0}
    for r in EXCHANGE_RATES:
        currencies.setdefault(r.currency, len(currencies))
    span = _LAST_YEAR - _FIRST_YEAR + 1
    usd = np.full((len(currencies), span), np.nan)
    usd[0, :] = 1.0  # a US dollar is a US dollar in every year
    for r in EXCHANGE_RATES:
        usd[currencies[r.currency], r.year - _FIRST_YEAR] = r.usd_per_unit
    cpi = np.full(span, np.nan)
    for year, value in PRICE_INDEX_USD.items():
        cpi[year - _FIRST_YEAR] = value
    return _Lookup(currencies, usd, cpi)


def usd_per_unit(currency: np.ndarray | pd.Series, year: np.ndarray | pd.Series) -> np.ndarray:
    """US dollars per unit of ``currency`` at ``year``'s annual average; NaN where the table has no value.

    Vectorised: ``currency`` holds ISO 4217 codes, ``year`` integers (NaN/NA for missing).
    """
    look = _lookup()
    cur = pd.Series(np.asarray(currency, dtype=object))
    codes = cur.map(look.currencies).to_numpy(dtype="float64", na_value=np.nan)
    yrs = pd.to_numeric(pd.Series(np.asarray(year)), errors="coerce").to_numpy(dtype="float64")
    idx = yrs - _FIRST_YEAR
    ok = np.isfinite(codes) & np.isfinite(idx) & (idx >= 0) & (idx < look.cpi.size)
    out = np.full(len(cur), np.nan)
    out[ok] = look.usd_per_unit[codes[ok].astype(np.int64), idx[ok].astype(np.int64)]
    return out


def cpi_usd(year: np.ndarray | pd.Series) -> np.ndarray:
    """US CPI-U annual average of ``year`` (1982-84 = 100); NaN where unknown."""
    look = _lookup()
    yrs = pd.to_numeric(pd.Series(np.asarray(year)), errors="coerce").to_numpy(dtype="float64")
    idx = yrs - _FIRST_YEAR
    ok = np.isfinite(idx) & (idx >= 0) & (idx < look.cpi.size)
    out = np.full(len(yrs), np.nan)
    out[ok] = look.cpi[idx[ok].astype(np.int64)]
    return out


def known_currencies() -> set[str]:
    return set(_lookup().currencies)


def to_usd(amount: float, currency: str, year: int, price_year: int) -> float:
    """One amount in ``price_year`` US dollars (scalar helper for notebooks; NaN when unknown)."""
    rate = usd_per_unit(np.array([currency]), np.array([year]))[0]
    cpi = cpi_usd(np.array([year, price_year]))
    return float(amount * rate * cpi[1] / cpi[0])
