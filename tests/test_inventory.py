"""Inventory API on demo data, periods frozen by the database, recalculation, and activity import."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from scope3lib import demo
from scope3lib.accounting import inventory, uncertainty
from scope3lib.categories import CATEGORIES, Method
from scope3lib.errors import ActivityImportError, PeriodError
from scope3lib.factors import FactorDataset, builtin_factors, store
from tests.helpers import TenantFactory, TenantFixture, activity_frame, run_cli

pytestmark = pytest.mark.db


@pytest.fixture(scope="module")
def demo_tenant(make_module_tenant: TenantFactory) -> TenantFixture:
    """The first demo tenant's data, 120 suppliers and 2 meters; shared by the module's tests in order."""
    return make_module_tenant("inv-demo", name="Inventory Demo", demo_profile=demo.DEMO_TENANTS[0], suppliers=120,
                              devices=2)


@pytest.fixture
def tenant_engine(demo_tenant: TenantFixture) -> Engine:
    return demo_tenant.engine


def test_summary_on_demo_data(tenant_engine: Engine, demo_tenant: TenantFixture) -> None:
    data = demo_tenant.data
    s = inventory.summary(tenant_engine, "2025-01-01", "2025-12-31", exclusions={14: "no franchises"})
    assert list(s.index) == list(range(1, 16))
    expected = data.entries.groupby("category")["kg_co2e"].sum()
    assert set(s.index[s["included"]]) == set(expected.index)
    for c, kg in expected.items():
        assert s.loc[c, "kg_co2e"] == pytest.approx(kg, rel=1e-9)
        assert s.loc[c, "t_co2e"] == pytest.approx(kg / 1000, rel=1e-9)
    assert s.loc[14, "exclusion_reason"] == "no franchises"
    assert s.loc[13, "exclusion_reason"] == "no activity recorded in the period"
    # Category 1: the primary share is the supplier-specific entries' share of emissions.
    e1 = data.entries[data.entries["category"] == 1]
    primary = e1.loc[e1["method"] == "supplier_specific", "kg_co2e"].sum() / e1["kg_co2e"].sum()
    assert s.loc[1, "primary_share"] == pytest.approx(primary, abs=1e-4)
    weighted = (e1["data_quality"] * e1["kg_co2e"]).sum() / e1["kg_co2e"].sum()
    assert s.loc[1, "data_quality"] == pytest.approx(weighted, abs=0.01)
    assert "spend_based" in s.loc[1, "methods"]
    assert s.loc[1, "spend_usd"] == pytest.approx(e1["spend"].sum(), rel=1e-6)


def test_breakdowns_add_up(tenant_engine: Engine) -> None:
    total = inventory.entries(tenant_engine)["kg_co2e"].sum()
    for frame in (inventory.by_category(tenant_engine), inventory.by_supplier(tenant_engine),
                  inventory.by_method(tenant_engine), inventory.by_period(tenant_engine)):
        assert frame["kg_co2e"].sum() == pytest.approx(total, rel=1e-9)
    assert len(inventory.by_period(tenant_engine)) == 12


def test_monte_carlo_over_the_demo_inventory_is_seeded(tenant_engine: Engine) -> None:
    a = inventory.uncertainty_by_category(tenant_engine, draws=2000, seed=7)
    b = inventory.uncertainty_by_category(tenant_engine, draws=2000, seed=7)
    pd.testing.assert_frame_equal(a, b)
    t = a.loc["total"]
    assert t["p2_5"] < t["kg_co2e"] < t["p97_5"]


def test_periods_freeze_entries_for_the_tenant_role(tenant_engine: Engine) -> None:
    inventory.create_period(tenant_engine, "2025-H1", "2025-01-01", "2025-06-30")
    with pytest.raises(PeriodError, match="overlaps"):
        inventory.create_period(tenant_engine, "2025-Q2", "2025-04-01", "2025-06-30")
    inventory.close_period(tenant_engine, "2025-H1")
    with pytest.raises(sa.exc.DBAPIError, match="period 2025-H1 is closed"), tenant_engine.begin() as conn:
        conn.execute(sa.text("UPDATE emission_entries SET kg_co2e = 0 WHERE period_start = '2025-03-01'"))
    with pytest.raises(sa.exc.DBAPIError, match="period 2025-H1 is closed"), tenant_engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM emission_entries WHERE period_start = '2025-02-01'"))
    with pytest.raises(sa.exc.DBAPIError, match="is closed"), tenant_engine.begin() as conn:
        conn.execute(sa.text("UPDATE periods SET status = 'open' WHERE label = '2025-H1'"))
    with pytest.raises(sa.exc.DBAPIError, match="is closed"), tenant_engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM periods WHERE label = '2025-H1'"))
    # Nor can the tenant forge the recalculation record the trigger looks for.
    with pytest.raises(sa.exc.ProgrammingError, match="permission denied"), tenant_engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO period_recalculations (tenant_id, period_id, txid, factor_source, "
                             "factor_version, reason, report, requested_by) SELECT tenant_id, id, txid_current(), "
                             "'x', 'y', 'z', '{}', 'me' FROM periods"))
    # The open half of the year still changes.
    with tenant_engine.begin() as conn:
        n = conn.execute(sa.text("UPDATE emission_entries SET description = 'checked' "
                                 "WHERE period_start = '2025-09-01'")).rowcount
    assert n > 0


def test_frozen_for_the_admin_too(engine: Engine, tenant_engine: Engine) -> None:
    inventory.close_period(tenant_engine, "2025-H1") if "2025-H1" not in set(
        inventory.periods(tenant_engine).query("status == 'closed'")["label"]) else None
    with pytest.raises(sa.exc.DBAPIError, match="is closed"), engine.begin() as conn:
        conn.execute(sa.text("UPDATE emission_entries SET kg_co2e = 0 WHERE period_start = '2025-01-01'"))


def test_periods_are_isolated(tenant_engine: Engine, tenant_b: TenantFixture) -> None:
    other = tenant_b.engine
    assert "2025-H1" in set(inventory.periods(tenant_engine)["label"])
    assert inventory.periods(other).empty
    with other.begin() as conn:
        assert conn.execute(sa.text("UPDATE periods SET label = 'x'")).rowcount == 0
        assert conn.scalar(sa.text("SELECT count(*) FROM period_recalculations")) == 0
    inventory.create_period(other, "2025-H1", "2025-01-01", "2025-06-30")  # same label, other tenant
    with pytest.raises(PeriodError, match="no period"):
        inventory.recalculate(other, "2025-H2", "epa-useeio", "1.3.0")


@pytest.fixture
def scaled_epa(engine: Engine) -> Iterator[str]:
    """A test-only release of the EPA factors, 10% higher, removed afterwards."""
    epa = builtin_factors("epa-useeio")
    factors = pd.DataFrame({
        "factor_key": epa["factor_key"], "description": epa["description"], "unit": epa["unit"],
        "region": epa["region"], "year": epa["year"], "kg_co2e_per_unit": epa["kg_co2e_per_unit"] * 1.1,
        "gwp": "AR5",
    })
    version = "1.3.0-test-x1.1"
    ds = FactorDataset(source="epa-useeio", name="test", version=version, publisher="test", licence="test",
                       citation="test: EPA v1.3.0 x 1.1", sha256="0" * 64, factors=factors)
    store.import_dataset(engine, ds)
    yield version
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM factor_datasets WHERE version = :v"), {"v": version})


def test_recalculation_reports_then_applies_to_a_closed_period(tenant_engine: Engine, scaled_epa: str) -> None:
    entries = inventory.entries(tenant_engine, "2025-01-01", "2025-06-30")
    epa = entries[entries["factor_source"] == "epa-useeio"]
    # The demo books landfill spend under category 12, where the GHG Protocol allows no spend-based
    # method: those entries are kept, with the reason, not recalculated.
    allowed = epa["category"].map(lambda c: Method.SPEND_BASED in CATEGORIES[int(c)].methods)
    spend_kg = epa[allowed].groupby("category")["kg_co2e"].sum()
    report = inventory.recalculate(tenant_engine, "2025-H1", "epa-useeio", scaled_epa, threshold=0.05)
    assert not report.applied
    # Every EPA-based entry rises by 10%; base year = this period (none is marked).
    for c, kg in spend_kg.items():
        assert report.by_category.loc[c, "change_kg"] == pytest.approx(0.1 * kg, rel=1e-9)
    assert report.entries_recalculated == int(allowed.sum())
    assert len(report.entries_kept) == int((~allowed).sum())
    assert report.entries_kept["reason"].str.contains("not allowed for category").all()
    assert report.base_kg_co2e == pytest.approx(entries["kg_co2e"].sum())
    assert report.total_change_kg == pytest.approx(0.1 * spend_kg.sum(), rel=1e-9)
    assert report.significant == (abs(report.total_change_kg) / report.base_kg_co2e >= 0.05)
    big = report.by_category["change_of_base"].abs() >= 0.05
    assert (report.by_category["significant"] == big).all()
    assert inventory.entries(tenant_engine, "2025-01-01", "2025-06-30")["kg_co2e"].sum() == pytest.approx(
        entries["kg_co2e"].sum())  # nothing changed yet
    with pytest.raises(Exception, match="needs a reason"):
        inventory.recalculate(tenant_engine, "2025-H1", "epa-useeio", scaled_epa, apply=True)
    applied = inventory.recalculate(tenant_engine, "2025-H1", "epa-useeio", scaled_epa, apply=True,
                                    reason="EPA release test")
    assert applied.applied
    after = inventory.entries(tenant_engine, "2025-01-01", "2025-06-30")
    assert after["kg_co2e"].sum() == pytest.approx(entries["kg_co2e"].sum() + report.total_change_kg, rel=1e-9)
    recalculated = after["id"].isin(epa.loc[allowed, "id"])
    assert set(after.loc[recalculated, "factor_version"]) == {scaled_epa}
    assert set(after.loc[after["id"].isin(epa.loc[~allowed, "id"]), "factor_version"]) == {"1.3.0"}
    audit = pd.read_sql("SELECT reason, factor_version, report FROM period_recalculations", tenant_engine)
    assert audit["reason"].tolist() == ["EPA release test"]
    assert audit.loc[0, "report"]["total_change_kg"] == pytest.approx(report.total_change_kg)
    # The recalculation's permission ended with its transaction.
    with pytest.raises(sa.exc.DBAPIError, match="is closed"), tenant_engine.begin() as conn:
        conn.execute(sa.text("UPDATE emission_entries SET kg_co2e = 0 WHERE period_start = '2025-03-01'"))


def test_import_is_all_or_nothing_with_line_numbers(tenant_engine: Engine, demo_tenant: TenantFixture) -> None:
    supplier = demo_tenant.data.suppliers["name"].iloc[0]
    good = {"category": 1, "method": "spend_based", "factor_source": "epa-useeio", "factor_key": "327310",
            "factor_version": "1.3.0", "spend": "1000", "currency": "USD", "spend_year": "2022",
            "supplier": supplier, "period_start": "2025-10-01", "period_end": "2025-10-31"}
    rows = activity_frame([
        good,
        {**good, "currency": "GBP", "spend_year": "2025"},
        {**good, "supplier": "Nobody Ltd"},
        {**good, "period_start": "2025-02-01", "period_end": "2025-02-28"},
        {**good, "period_end": ""},
    ])
    before_ids = set(inventory.entries(tenant_engine)["id"])
    with pytest.raises(ActivityImportError) as err:
        inventory.import_activity(tenant_engine, rows, source="acts.csv")
    problems = dict(err.value.problems)
    assert set(problems) == {3, 4, 5, 6}
    assert "no GBP exchange rate for 2025" in problems[3]
    assert "unknown supplier 'Nobody Ltd'" in problems[4]
    assert "period 2025-H1 is closed" in problems[5]
    assert "period_end is required" in problems[6]
    assert "4 of 5 rows refused; nothing was imported" in str(err.value)
    assert set(inventory.entries(tenant_engine)["id"]) == before_ids
    done = inventory.import_activity(tenant_engine, activity_frame([good, {**good, "spend": "500"}]))
    assert done.rows == 2 and done.kg_co2e == pytest.approx(1500 * 3.924)
    after = inventory.entries(tenant_engine)
    new = after[~after["id"].isin(before_ids)].sort_values("id")
    assert set(new["data_source"]) == {"import"}
    assert set(new["factor_version"]) == {"1.3.0"}
    assert np.allclose(new["kg_co2e"], [3924.0, 1962.0])


def test_cli_calc_and_import_activity(database_url: str, data_dir: Path, tmp_path: Path,
                                      demo_tenant: TenantFixture) -> None:
    supplier = demo_tenant.data.suppliers["name"].iloc[1]
    good = {"category": 1, "method": "average_data", "quantity": "2", "unit": "MWh", "factor_source": "egrid",
            "factor_key": "CAMX", "supplier": supplier, "period_start": "2025-11-01", "period_end": "2025-11-30"}
    path = tmp_path / "acts.csv"
    activity_frame([good, {**good, "unit": "kg"}]).to_csv(path, index=False)
    out = tmp_path / "out.csv"
    calc = run_cli(database_url, data_dir, "calc", str(path), "--out", str(out))
    assert calc.returncode == 1, calc.stderr
    assert "line 3: unit 'kg' cannot be converted" in calc.stderr
    result = pd.read_csv(out, keep_default_na=False)
    assert float(result.loc[0, "kg_co2e"]) == pytest.approx(2000 * 0.195037)
    assert result.loc[0, "factor_version"] == 2023 or str(result.loc[0, "factor_version"]) == "2023"
    imp = run_cli(database_url, data_dir, "import", "activity", demo_tenant.slug, str(path))
    assert imp.returncode == 1 and "line 3:" in imp.stderr and "nothing was imported" in imp.stderr
    xlsx = tmp_path / "acts.xlsx"
    activity_frame([good]).to_excel(xlsx, index=False)
    ok = run_cli(database_url, data_dir, "import", "activity", demo_tenant.slug, str(xlsx))
    assert ok.returncode == 0, ok.stderr
    assert "imported 1 rows" in ok.stdout


def test_uncertainty_spread_grows_with_worse_quality() -> None:
    assert uncertainty.sdg95(2) < uncertainty.sdg95(4) < uncertainty.sdg95(5)
