"""Calculation methods, unit and currency conversion, refusals, data quality and Monte Carlo (no database).

Expected values are worked by hand from the published figures typed in scope3lib/currency.py and
scope3lib/factors/builtin.csv (EPA v1.3.0 NAICS 327310 with margins = 3.924 kg CO2e per 2022 USD;
eGRID2023 CAMX = 0.195037 kg CO2e/kWh).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from scope3lib.accounting import quality, uncertainty
from scope3lib.accounting.calculation import calculate
from scope3lib.categories import Method
from scope3lib.errors import InvalidArgument
from scope3lib.factors.lookup import factor_table
from tests.helpers import activity_row


def row(**kw: object) -> dict[str, object]:
    return activity_row(**{"category": 1, "period_start": "2024-03-01", "period_end": "2024-03-31", **kw})


def calc(*rows: dict[str, object]) -> pd.DataFrame:
    return calculate(pd.DataFrame(list(rows)), factor_table(None))


def spend(amount: float, cur: str, year: int, key: str = "327310", **kw: object) -> dict[str, object]:
    fields: dict[str, object] = {"method": "spend_based", "factor_source": "epa-useeio", "factor_key": key,
                                 "spend": str(amount), "currency": cur, "spend_year": str(year)}
    fields.update(kw)
    return row(**fields)


def test_epa_cement_in_2022_usd_is_spend_times_factor() -> None:
    out = calc(spend(1000, "USD", 2022))
    assert out.loc[0, "error"] == ""
    assert out.loc[0, "factor_value"] == 3.924
    assert out.loc[0, "factor_unit"] == "USD_2022"
    assert out.loc[0, "factor_version"] == "1.3.0"
    assert out.loc[0, "kg_co2e"] == pytest.approx(3924.0)


def test_eur_2024_spend_is_converted_to_2022_usd_by_the_cited_table() -> None:
    # By hand: ECB 2024 average 1.0824 USD/EUR; CPI-U 2022 = 292.655, 2024 = 313.689.
    usd_2022 = 2500 * 1.0824 * 292.655 / 313.689
    out = calc(spend(2500, "EUR", 2024))
    assert out.loc[0, "amount_in_factor_unit"] == pytest.approx(usd_2022, rel=1e-12)
    assert out.loc[0, "kg_co2e"] == pytest.approx(usd_2022 * 3.924, rel=1e-12)
    assert round(out.loc[0, "kg_co2e"], 2) == 9906.35


def test_jpy_2019_uses_g5a_rate_quoted_per_dollar() -> None:
    # G.5A 2019: 109.0188 yen per dollar; CPI-U 2019 = 255.657.
    out = calc(spend(1_000_000, "JPY", 2019))
    expected = 1_000_000 / 109.0188 * 292.655 / 255.657 * 3.924
    assert out.loc[0, "kg_co2e"] == pytest.approx(expected, rel=1e-12)


def test_activity_in_miles_is_converted_with_pint() -> None:
    # 1 mile = 1.609344 km exactly; a per-km factor applies to the km.
    factors = pd.concat([factor_table(None), pd.DataFrame([{
        "source": "test", "version": "1", "factor_key": "van", "unit": "km", "region": "GB", "year": 2024,
        "kg_co2e_per_unit": 0.25, "latest": True}])], ignore_index=True)
    rows = pd.DataFrame([row(category=4, method="distance_based", quantity="100", unit="mile", factor_source="test",
                             factor_key="van")])
    out = calculate(rows, factors)
    assert out.loc[0, "error"] == ""
    assert out.loc[0, "amount_in_factor_unit"] == pytest.approx(160.9344)
    assert out.loc[0, "kg_co2e"] == pytest.approx(160.9344 * 0.25)


def test_mwh_against_a_kwh_grid_factor() -> None:
    out = calc(row(method="average_data", quantity="2.5", unit="MWh", factor_source="egrid", factor_key="CAMX"))
    assert out.loc[0, "kg_co2e"] == pytest.approx(2500 * 0.195037)


def test_supplier_specific_allocates_by_revenue_share() -> None:
    out = calc(row(method="supplier_specific", spend="250000", currency="USD", spend_year="2024", supplier="S",
                   supplier_kg_co2e="8000000", supplier_revenue="40000000"))
    assert out.loc[0, "kg_co2e"] == pytest.approx(8_000_000 * 250_000 / 40_000_000)
    assert out.loc[0, "factor_source"] == "supplier"
    assert out.loc[0, "factor_unit"] == "USD_2024"


def test_hybrid_adds_allocated_scope_1_2_and_eeio_upstream() -> None:
    out = calc(spend(1000, "USD", 2022, method="hybrid", supplier="S", supplier_kg_co2e="2000000",
                     supplier_revenue="4000000", eeio_direct_share="0.25"))
    assert out.loc[0, "kg_co2e"] == pytest.approx(2_000_000 * 1000 / 4_000_000 + 1000 * 3.924 * 0.75)


REFUSALS = [
    (row(method="teleport"), "unknown method 'teleport'"),
    (row(method=""), "method is empty"),
    (row(category=16, method="spend_based"), "category must be a whole number from 1 to 15"),
    (row(category=3, method="spend_based", factor_source="epa-useeio", factor_key="327310"),
     "method spend_based is not allowed for category 3 (Fuel- and energy-related activities)"),
    (row(method="spend_based"), "factor_source and factor_key are required"),
    (spend(1, "USD", 2022, key="999999"), "unknown factor '999999' in epa-useeio 1.3.0"),
    (row(method="spend_based", factor_source="nope", factor_key="1", spend="1", currency="USD", spend_year="2022"),
     "unknown factor dataset 'nope'"),
    (row(method="spend_based", factor_source="epa-useeio", factor_key="327310", factor_version="0.9", spend="1",
         currency="USD", spend_year="2022"), "no version '0.9' of factor dataset 'epa-useeio'"),
    (row(method="average_data", quantity="3", unit="kg", factor_source="egrid", factor_key="CAMX"),
     "unit 'kg' cannot be converted to the factor's unit 'kWh'"),
    (row(method="average_data", quantity="3", unit="furlongs-ish", factor_source="egrid", factor_key="CAMX"),
     "unknown unit 'furlongs-ish'"),
    (row(method="average_data", quantity="", unit="kWh", factor_source="egrid", factor_key="CAMX"),
     "quantity is required"),
    (row(method="average_data", quantity="3", unit="", factor_source="egrid", factor_key="CAMX"), "unit is required"),
    (row(method="average_data", quantity="3", unit="kWh", factor_source="epa-useeio", factor_key="327310"),
     "the factor is per USD_2022 (spend-based); use method spend_based"),
    (row(category=4, method="distance_based", quantity="3", unit="kWh", factor_source="egrid", factor_key="CAMX"),
     "distance-based needs a factor per tonne.km, passenger.km or km, not per kWh"),
    (row(method="spend_based", factor_source="egrid", factor_key="CAMX", spend="1", currency="USD",
         spend_year="2022"), "the factor is per kWh, not per unit of money"),
    (spend(1, "GBP", 2024), "no GBP exchange rate for 2024 in the cited table"),
    (spend(1, "EUR", 2018), "no EUR exchange rate for 2018 in the cited table"),
    (spend(1, "XYZ", 2022), "no exchange rates for currency 'XYZ'"),
    (spend(1, "", 2022), "currency is required"),
    (spend(1, "USD", 2030), "no US CPI-U for 2030 in the cited table"),
    (row(method="spend_based", factor_source="epa-useeio", factor_key="327310", spend="", currency="USD",
         spend_year="2022"), "spend is required"),
    (row(method="spend_based", factor_source="epa-useeio", factor_key="327310", spend="5", currency="USD",
         spend_year=""), "spend_year is required"),
    (row(method="supplier_specific", spend="10", currency="USD", spend_year="2024", supplier_revenue="100"),
     "supplier_kg_co2e is required"),
    (row(method="supplier_specific", spend="10", currency="USD", spend_year="2024", supplier_kg_co2e="5"),
     "supplier_revenue is required"),
    (row(method="supplier_specific", spend="1000", currency="USD", spend_year="2024", supplier_kg_co2e="5",
         supplier_revenue="100"), "spend exceeds the supplier's revenue"),
    (spend(1, "USD", 2022, method="hybrid", supplier_kg_co2e="5", supplier_revenue="100"),
     "eeio_direct_share is required for hybrid"),
]


@pytest.mark.parametrize(("bad", "message"), REFUSALS, ids=[m[:40] for _, m in REFUSALS])
def test_each_refusal_is_per_row_with_its_reason(bad: dict[str, object], message: str) -> None:
    out = calc(spend(1000, "USD", 2022), bad, spend(10, "USD", 2022))
    assert message in out.loc[1, "error"], out.loc[1, "error"]
    assert np.isnan(out.loc[1, "kg_co2e"])
    assert pd.isna(out.loc[1, "data_quality"])
    # The neighbours are calculated regardless.
    assert out.loc[0, "error"] == "" and out.loc[2, "error"] == ""
    assert out.loc[2, "kg_co2e"] == pytest.approx(39.24)


def test_missing_columns_are_refused_for_the_whole_frame() -> None:
    with pytest.raises(InvalidArgument, match="lack column"):
        calculate(pd.DataFrame([{"category": 1}]), factor_table(None))


def test_data_quality_from_method_source_and_age() -> None:
    out = calc(
        spend(100, "USD", 2022),  # spend-based, factor 2022 vs activity 2024: 4,4,1,3,4 -> 3.2 -> 3
        row(method="supplier_specific", spend="10", currency="USD", spend_year="2024", supplier_kg_co2e="5",
            supplier_revenue="100"),  # 3,2,1,1,2 -> 1.8 -> 2
        spend(100, "USD", 2022, period_start="2040-01-01"),  # 18 years: temporal 5 -> 4,4,5,3,4 -> 4
    )
    assert out["data_quality"].tolist() == [3, 2, 4]
    scores = quality.pedigree(np.array([quality.METHODS.index(Method.SPEND_BASED)] * 2), np.array(["iot", "ml"]))
    assert scores[0].tolist() == [2, 2, 3, 3, 4]  # metered: measured and complete
    assert scores[1].tolist() == [4, 4, 3, 3, 4]


def test_pedigree_to_uncertainty_follows_the_ecoinvent_factors() -> None:
    # All indicators 1: only the basic factor 1.05 -> SDg95 = 1.05.
    assert uncertainty.sdg95(1) == pytest.approx(1.05)
    # All 4: sqrt(ln1.05^2 + ln1.2^2 + ln1.1^2 + ln1.2^2 + ln1.05^2 + ln1.5^2), by hand.
    logs = np.log([1.05, 1.2, 1.1, 1.2, 1.05, 1.5])
    assert uncertainty.sdg95(4) == pytest.approx(float(np.exp(np.sqrt((logs**2).sum()))))


def test_monte_carlo_is_seeded_and_brackets_the_point_value() -> None:
    rng = np.random.default_rng(1)
    entries = pd.DataFrame({
        "category": rng.integers(1, 4, 400), "kg_co2e": rng.lognormal(8, 1, 400),
        "data_quality": rng.integers(1, 6, 400), "supplier_id": rng.integers(0, 50, 400),
        "factor_key": "k", "factor_source": "s", "factor_version": "v",
    })
    a = uncertainty.monte_carlo(entries, draws=2000, seed=42)
    b = uncertainty.monte_carlo(entries, draws=2000, seed=42)
    c = uncertainty.monte_carlo(entries, draws=2000, seed=43)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)
    assert a.loc["total", "kg_co2e"] == pytest.approx(entries["kg_co2e"].sum())
    assert (a["p2_5"] < a["kg_co2e"]).all() and (a["kg_co2e"] < a["p97_5"]).all()
    assert set(a.index) == {"1", "2", "3", "total"}
