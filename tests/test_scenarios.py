"""Reduction scenarios: every lever, payback, NPV and the cost curve against values worked out by hand;
refusals; storage per tenant (round trip, isolation under row-level security); the CLI."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from scope3lib import scenarios
from scope3lib.demo import DemoData
from scope3lib.errors import InvalidLever, ScenarioError
from scope3lib.factors.lookup import grid_factor
from tests.helpers import TenantFactory, TenantFixture, inventory_data, run_cli

# The hand-made base-year inventory every expected value below is worked out from (kg CO2e, USD).
#   Steelco     cat 1, spend-based,        10,000 kg, 5,000 USD -> 2.0 kg/USD, CAMX
#   Greensteel  cat 1, supplier-specific,   2,000 kg, 2,000 USD -> 1.0 kg/USD, CAMX
#   Truckers    cat 4, spend-based,         4,000 kg, 4,000 USD, GB
#   (none)      cat 6, spend-based,         1,000 kg, 1,000 USD
SUPPLIERS = [("Steelco", "331110", "CAMX"), ("Greensteel", "331110", "CAMX"), ("Truckers", "484121", "GB")]
ROWS = [(1, "Steelco", False, 10_000.0, 5_000.0), (1, "Greensteel", True, 2_000.0, 2_000.0),
        (4, "Truckers", False, 4_000.0, 4_000.0), (6, None, False, 1_000.0, 1_000.0)]
TOTAL = 17_000.0


def hand_baseline() -> pd.DataFrame:
    entries = pd.DataFrame({
        "category": [r[0] for r in ROWS], "supplier": [r[1] for r in ROWS],
        "method": ["supplier_specific" if r[2] else "spend_based" for r in ROWS],
        "kg_co2e": [r[3] for r in ROWS], "spend_usd": [r[4] for r in ROWS],
    })
    suppliers = pd.DataFrame(SUPPLIERS, columns=["name", "naics_code", "region"])
    return scenarios.baseline_from_entries(entries, suppliers)


BASE = hand_baseline()
SECTORS = pd.Series({"541511": 0.5, "331110": 3.0})


def scenario(*levers: dict[str, Any], **kw: Any) -> scenarios.Scenario:
    data: dict[str, Any] = {"name": "s", "base_year": 2025, "target_year": 2027, "growth": 0.0,
                            "discount_rate": 0.0, "levers": list(levers)}
    data.update(kw)
    return scenarios.parse(data)


def project(*levers: dict[str, Any], **kw: Any) -> scenarios.ScenarioResult:
    return scenarios.project(scenario(*levers, **kw), BASE, SECTORS)


def lever_row(result: scenarios.ScenarioResult, i: int = 0) -> pd.Series:
    return result.levers.iloc[i]


# --- the levers, by hand ---------------------------------------------------------------------------


def test_baseline_groups_by_category_supplier_and_data_type() -> None:
    assert BASE["kg_co2e"].sum() == TOTAL
    steel = BASE[BASE["supplier"] == "Steelco"].iloc[0]
    assert (steel["category"], steel["region"], bool(steel["specific"]), steel["spend_usd"]) == (1, "CAMX", False, 5000)
    assert bool(BASE.loc[BASE["supplier"] == "Greensteel", "specific"].iloc[0])


def test_no_lever_leaves_business_as_usual_with_compound_growth() -> None:
    r = project(growth=0.05)
    assert r.totals["bau_t"].tolist() == pytest.approx([17.0, 17.85, 18.7425])
    assert r.totals["scenario_t"].tolist() == pytest.approx(r.totals["bau_t"].tolist())
    assert r.summary["reduction_vs_base_pct"] == pytest.approx(100 * (17 - 18.7425) / 17)


def test_renewable_electricity_for_a_supplier() -> None:
    gf = grid_factor(None, "CAMX", 2025)
    assert gf is not None
    r = project({"kind": "renewable_electricity", "supplier": "Steelco", "annual_kwh": 10_000, "share": 0.5,
                 "premium_per_kwh": 0.02, "start_year": 2026})
    per_year = 10_000 * 0.5 * gf.value  # kg; under Steelco's 10,000 kg so not capped
    row = lever_row(r)
    assert row["abated_t"] == pytest.approx(2 * per_year / 1000)
    assert row["annual_saving"] == pytest.approx(-100.0)  # the premium: 5,000 kWh x 0.02 USD
    assert row["npv"] == pytest.approx(-200.0)
    assert math.isinf(row["payback_years"])
    assert row["cost_per_t"] == pytest.approx(200.0 / (2 * per_year / 1000))
    assert r.totals["abated_t"].tolist() == pytest.approx([0, per_year / 1000, per_year / 1000])


def test_renewable_electricity_for_a_region_is_capped_at_its_emissions() -> None:
    r = project({"kind": "renewable_electricity", "region": "gb", "annual_kwh": 1e9, "share": 1.0,
                 "start_year": 2025})
    assert lever_row(r)["abated_t"] == pytest.approx(3 * 4.0)  # all of Truckers' 4,000 kg, three years


def test_energy_efficiency_payback_and_npv() -> None:
    r = project({"kind": "energy_efficiency", "category": 1, "reduction": 0.1, "implementation_cost": 1000,
                 "annual_saving": 400, "start_year": 2026}, target_year=2028, discount_rate=0.1)
    row = lever_row(r)
    assert row["abated_t"] == pytest.approx(3 * 0.1 * 12_000 / 1000)  # 1,200 kg a year, 2026-2028
    assert row["payback_years"] == pytest.approx(2.5)
    npv = -1000 / 1.1 + 400 / 1.1 + 400 / 1.1**2 + 400 / 1.1**3
    assert row["npv"] == pytest.approx(npv)
    assert row["cost_per_t"] == pytest.approx(-npv / 3.6)


def test_energy_efficiency_on_a_supplier_grows_with_the_business() -> None:
    r = project({"kind": "energy_efficiency", "supplier": "Steelco", "reduction": 0.2, "start_year": 2025},
                growth=0.05)
    assert lever_row(r)["abated_t"] == pytest.approx((2000 + 2100 + 2205) / 1000)
    cat1 = r.by_category[(r.by_category["category"] == 1) & (r.by_category["year"] == 2027)].iloc[0]
    assert cat1["scenario_kg"] == pytest.approx(12_000 * 1.1025 - 2205)


def test_supplier_switch_to_a_named_supplier() -> None:
    # Half of Steelco's spend moves to Greensteel: 0.5 x (1 - 1.0/2.0) = 25% of Steelco's 10,000 kg.
    r = project({"kind": "supplier_switch", "supplier": "Steelco", "to_supplier": "Greensteel", "share": 0.5,
                 "start_year": 2025})
    assert r.totals["abated_t"].tolist() == pytest.approx([2.5, 2.5, 2.5])


def test_supplier_switch_to_a_lower_intensity_sector() -> None:
    # 1 - 0.5/2.0 = 75% of Steelco's 10,000 kg.
    r = project({"kind": "supplier_switch", "supplier": "Steelco", "to_naics": "541511", "start_year": 2027})
    assert r.totals["abated_t"].tolist() == pytest.approx([0, 0, 7.5])


def test_transport_mode_shift() -> None:
    # 0.5 x (1 - 0.025/0.1) = 37.5% of category 4's 4,000 kg.
    r = project({"kind": "transport_mode_shift", "category": 4, "to_mode": "rail", "share": 0.5,
                 "road_factor": 0.1, "to_factor": 0.025, "start_year": 2026})
    assert r.totals["abated_t"].tolist() == pytest.approx([0, 1.5, 1.5])


def test_spend_reduction_saves_the_avoided_spend() -> None:
    r = project({"kind": "spend_reduction", "supplier": "Truckers", "reduction": 0.25, "start_year": 2026})
    row = lever_row(r)
    assert row["abated_t"] == pytest.approx(2.0)  # 1,000 kg a year, 2026-2027
    assert row["annual_saving"] == pytest.approx(1000.0)  # 25% of 4,000 USD
    assert row["payback_years"] == 0.0
    assert row["npv"] == pytest.approx(2000.0)
    assert row["cost_per_t"] == pytest.approx(-1000.0)


def test_supplier_engagement_leaves_supplier_specific_data_alone() -> None:
    # 0.5 x 0.2 = 10% of the spend-based 15,000 kg; Greensteel's 2,000 kg are already supplier-specific.
    r = project({"kind": "supplier_engagement", "share": 0.5, "reduction": 0.2, "start_year": 2025})
    assert r.totals["abated_t"].tolist() == pytest.approx([1.5, 1.5, 1.5])
    cat1 = r.by_category[(r.by_category["category"] == 1) & (r.by_category["year"] == 2025)].iloc[0]
    assert cat1["abated_kg"] == pytest.approx(1000.0)


def test_levers_stack_without_double_counting() -> None:
    # Efficiency removes 10% of 12,000 kg; the spend cut then halves the remaining 10,800 kg.
    r = project({"kind": "energy_efficiency", "category": 1, "reduction": 0.1, "start_year": 2025},
                {"kind": "spend_reduction", "category": 1, "reduction": 0.5, "start_year": 2025})
    assert r.levers["abated_t"].tolist() == pytest.approx([3 * 1.2, 3 * 5.4])
    assert r.summary["reduction_vs_bau_t"] == pytest.approx(6.6)
    assert r.summary["reduction_vs_base_pct"] == pytest.approx(100 * 6.6 / 17)
    assert r.summary["abated_t"] == pytest.approx(r.totals["abated_t"].sum())


def test_scenario_totals_payback_npv_and_cost_per_tonne() -> None:
    r = project({"kind": "energy_efficiency", "category": 1, "reduction": 0.1, "implementation_cost": 1000,
                 "annual_saving": 200, "start_year": 2025},
                {"kind": "spend_reduction", "supplier": "Truckers", "reduction": 0.25, "implementation_cost": 500,
                 "start_year": 2025}, discount_rate=0.05)
    s = r.summary
    assert s["implementation_cost"] == 1500 and s["annual_saving"] == pytest.approx(1200)
    assert s["payback_years"] == pytest.approx(1.25)
    npv = -1500 + 1200 * (1 + 1 / 1.05 + 1 / 1.05**2)
    assert s["npv"] == pytest.approx(npv)
    assert s["cost_per_t"] == pytest.approx(-npv / (3 * 1.2 + 3 * 1.0))


def test_cost_curve_puts_the_cheapest_tonne_first() -> None:
    r = project(
        {"kind": "energy_efficiency", "label": "pricey", "category": 1, "reduction": 0.1, "implementation_cost": 9000,
         "start_year": 2025},
        {"kind": "supplier_engagement", "label": "nothing", "share": 0.0, "reduction": 0.2, "start_year": 2025},
        {"kind": "spend_reduction", "label": "saver", "supplier": "Truckers", "reduction": 0.25, "start_year": 2025},
        {"kind": "transport_mode_shift", "label": "cheap", "category": 4, "to_mode": "sea", "share": 0.5,
         "road_factor": 0.1, "to_factor": 0.02, "implementation_cost": 100, "start_year": 2025},
    )
    curve = scenarios.cost_curve(r)
    assert curve["label"].tolist() == ["saver", "cheap", "pricey", "nothing"]
    assert curve["cost_per_t"].iloc[0] < 0 < curve["cost_per_t"].iloc[1] < curve["cost_per_t"].iloc[2]
    assert math.isnan(curve["cost_per_t"].iloc[3])
    assert curve["cum_end_t"].iloc[2] == pytest.approx(curve["abated_t"].iloc[:3].sum())
    fig = scenarios.cost_curve_figure(r)
    assert list(fig.data[0].text) == ["saver", "cheap", "pricey"]


def test_target_pathway_is_the_sbti_linear_4_2_percent() -> None:
    assert scenarios.SBTI_1P5C_ANNUAL_RATE == 0.042
    r = project(target_year=2030)
    assert r.totals["pathway_t"].tolist() == pytest.approx([17 * (1 - 0.042 * t) for t in range(6)])
    assert not r.summary["on_track"]
    assert scenarios.target_pathway(100.0, 2020, [2050])[0] == 0.0  # never below zero
    cut = project({"kind": "spend_reduction", "category": 1, "reduction": 0.5, "start_year": 2026}, target_year=2030)
    assert cut.summary["on_track"]  # 17,000 -> 11,000 kg is below 17,000 x (1 - 0.21)


def test_same_inputs_give_the_same_result() -> None:
    levers = ({"kind": "energy_efficiency", "category": 1, "reduction": 0.1, "start_year": 2026},
              {"kind": "supplier_engagement", "share": 0.3, "reduction": 0.1, "start_year": 2027})
    a, b = project(*levers, growth=0.02), project(*levers, growth=0.02)
    assert a.fingerprint == b.fingerprint
    pd.testing.assert_frame_equal(a.totals, b.totals)
    pd.testing.assert_frame_equal(a.levers, b.levers)
    assert project(*levers, growth=0.03).fingerprint != a.fingerprint


def test_comparison_figure_has_bau_each_scenario_and_the_pathway() -> None:
    a = project(name="a")
    b = project({"kind": "spend_reduction", "category": 6, "reduction": 1.0, "start_year": 2026}, name="b")
    fig = scenarios.comparison_figure([a, b])
    assert [t.name for t in fig.data][:3] == ["business as usual", "a", "b"]
    assert list(fig.data[2].y) == pytest.approx([17, 16, 16])


# --- refusals --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("lever", "words"), [
    ({"kind": "energy_efficiency", "supplier": "Nobody", "reduction": 0.1, "start_year": 2026},
     ["no supplier named 'Nobody'"]),
    ({"kind": "energy_efficiency", "category": 1, "reduction": 1.5, "start_year": 2026},
     ["reduction", "less than or equal to 1"]),
    ({"kind": "spend_reduction", "category": 1, "reduction": -0.1, "start_year": 2026},
     ["reduction", "greater than or equal to 0"]),
    ({"kind": "energy_efficiency", "category": 16, "reduction": 0.1, "start_year": 2026},
     ["unknown category 16"]),
    ({"kind": "energy_efficiency", "category": 9, "reduction": 0.1, "start_year": 2026},
     ["category 9 has no emissions in 2025"]),
    ({"kind": "energy_efficiency", "category": 1, "reduction": 0.1, "start_year": 2024}, ["starts in 2024"]),
    ({"kind": "renewable_electricity", "region": "ERCT", "annual_kwh": 10, "share": 0.5, "start_year": 2026},
     ["applies to no emissions"]),
    ({"kind": "renewable_electricity", "region": "GB", "supplier": "Truckers", "annual_kwh": 10, "share": 0.5,
      "start_year": 2026}, ["exactly one of supplier or region"]),
    ({"kind": "supplier_switch", "supplier": "Greensteel", "to_supplier": "Steelco", "start_year": 2026},
     ["not lower than"]),
    ({"kind": "supplier_switch", "supplier": "Steelco", "to_naics": "999999", "start_year": 2026},
     ["no EEIO factor for NAICS '999999'"]),
    ({"kind": "transport_mode_shift", "category": 1, "to_mode": "rail", "share": 0.5, "road_factor": 0.1,
      "to_factor": 0.02, "start_year": 2026}, ["category", "4 or 9"]),
    ({"kind": "transport_mode_shift", "category": 4, "to_mode": "rail", "share": 0.5, "road_factor": 0.1,
      "to_factor": 0.2, "start_year": 2026}, ["not below the road factor"]),
    ({"kind": "teleport", "start_year": 2026}, ["teleport"]),
    ({"kind": "spend_reduction", "category": 1, "reduction": 0.1, "start_year": 2026, "colour": "red"},
     ["colour"]),
])
def test_invalid_levers_are_refused_with_the_reason(lever: dict[str, Any], words: list[str]) -> None:
    with pytest.raises(InvalidLever) as exc:
        project(lever)
    for w in words:
        assert w in str(exc.value), str(exc.value)


def test_target_year_before_base_year_is_refused() -> None:
    with pytest.raises(InvalidLever, match="target year 2020 is not after base year 2025"):
        scenario(target_year=2020)


def test_empty_baseline_is_refused() -> None:
    with pytest.raises(ScenarioError, match="inventory is empty"):
        scenarios.project(scenario(), BASE.iloc[0:0], SECTORS)


def test_yaml_file_round_trip(tmp_path: Path) -> None:
    s = scenario({"kind": "spend_reduction", "category": 6, "reduction": 0.5, "start_year": 2026})
    path = tmp_path / "s.yaml"
    import yaml

    path.write_text(yaml.safe_dump(s.to_dict()))
    assert scenarios.from_yaml(path) == s
    path.write_text("name: [unclosed")
    with pytest.raises(InvalidLever, match="not valid YAML"):
        scenarios.from_yaml(path)


# --- stored per tenant -----------------------------------------------------------------------------


HALVES = ((dt.date(2025, 1, 1), dt.date(2025, 6, 30)), (dt.date(2025, 7, 1), dt.date(2025, 12, 31)))


def hand_inventory() -> DemoData:
    """The hand-made inventory as a tenant's 2025 entries, each split in two halves of the year."""
    suppliers = [{"name": name, "naics_code": naics, "country": "US", "region": region}
                 for name, naics, region in SUPPLIERS]
    entries = [{"supplier": supplier, "category": cat, "period_start": start, "period_end": end,
                "method": "supplier_specific" if specific else "spend_based", "spend": spend / 2,
                "spend_currency": "USD", "spend_year": 2022, "kg_co2e": kg / 2, "data_source": "import",
                "data_quality": 4}
               for start, end in HALVES for cat, supplier, specific, kg, spend in ROWS]
    return inventory_data(suppliers, entries)


Pair = tuple[TenantFixture, TenantFixture]


@pytest.fixture(scope="module")
def tenants(make_module_tenant: TenantFactory) -> Pair:
    return make_module_tenant("scen-a", data=hand_inventory()), make_module_tenant("scen-b", data=hand_inventory())


PLAN = {"name": "plan", "base_year": 2025, "target_year": 2027, "growth": 0.0, "discount_rate": 0.0,
        "levers": [{"kind": "supplier_switch", "supplier": "Steelco", "to_supplier": "Greensteel", "share": 0.5,
                    "start_year": 2025}]}


def test_run_on_a_tenant_matches_the_hand_values(tenants: Pair) -> None:
    a = tenants[0].engine
    base = scenarios.baseline(a, 2025)
    assert base["kg_co2e"].sum() == pytest.approx(TOTAL)
    r = scenarios.run(a, scenarios.parse(PLAN))
    assert r.totals["abated_t"].tolist() == pytest.approx([2.5, 2.5, 2.5])
    with pytest.raises(ScenarioError, match="no emission entries in base year 2019"):
        scenarios.baseline(a, 2019)


def test_save_load_round_trip_reproduces_the_result(tenants: Pair) -> None:
    a = tenants[0].engine
    s = scenarios.parse({**PLAN, "name": "round-trip", "growth": 0.02, "discount_rate": 0.07})
    scenarios.save(a, s)
    loaded = scenarios.load(a, "round-trip")
    assert loaded == s
    first, again = scenarios.run(a, s), scenarios.run(a, loaded)
    assert first.fingerprint == again.fingerprint
    pd.testing.assert_frame_equal(first.totals, again.totals)
    with pytest.raises(ScenarioError, match="already exists"):
        scenarios.save(a, s)
    changed = scenarios.parse({**s.to_dict(), "growth": 0.05})
    scenarios.save(a, changed, replace=True)
    assert scenarios.load(a, "round-trip").growth == 0.05
    listed = scenarios.list_scenarios(a)
    assert listed.loc[listed["name"] == "round-trip", "levers"].tolist() == [1]
    scenarios.delete(a, "round-trip")
    with pytest.raises(ScenarioError, match="no scenario named 'round-trip'"):
        scenarios.load(a, "round-trip")


def test_tenant_cannot_read_another_tenants_scenarios(tenants: Pair) -> None:
    a, b = (t.engine for t in tenants)
    scenarios.save(a, scenarios.parse({**PLAN, "name": "secret-of-a"}))
    assert "secret-of-a" not in scenarios.list_scenarios(b)["name"].tolist()
    with pytest.raises(ScenarioError, match="no scenario named"):
        scenarios.load(b, "secret-of-a")
    with b.connect() as conn:
        assert conn.scalar(sa.text("SELECT count(*) FROM scenarios WHERE name = 'secret-of-a'")) == 0
    with b.begin() as conn:
        assert conn.execute(sa.text("UPDATE scenarios SET growth = 0.9 WHERE name = 'secret-of-a'")).rowcount == 0
    scenarios.save(b, scenarios.parse({**PLAN, "name": "secret-of-a"}))  # names are per tenant
    assert scenarios.load(a, "secret-of-a").growth == 0.0
    # B cannot plant a scenario in A's name either.
    with a.connect() as conn:
        tid_a = conn.scalar(sa.text("SELECT tenant_of(current_user)"))
    with pytest.raises(sa.exc.ProgrammingError, match="row-level security"), b.begin() as conn:
        conn.execute(sa.text("INSERT INTO scenarios (tenant_id, name, base_year, target_year, growth, "
                             "discount_rate, levers) VALUES (:t, 'planted', 2025, 2030, 0, 0, '[]')"),
                     {"t": tid_a})


def test_read_only_role_cannot_save(tenants: Pair) -> None:
    ro = tenants[0].readonly
    with pytest.raises(ScenarioError, match="may not write"):
        scenarios.save(ro, scenarios.parse({**PLAN, "name": "from-dashboard"}))
    assert isinstance(scenarios.list_scenarios(ro), pd.DataFrame)


def test_dashboard_figures(tenants: Pair) -> None:
    a = tenants[0].engine
    scenarios.save(a, scenarios.parse({**PLAN, "name": "dash"}), replace=True)
    figs = scenarios.dashboard_figures(a, ["dash"])
    assert set(figs) == {"comparison", "cost_curve"}
    assert [t.name for t in figs["comparison"].data] == ["business as usual", "dash",
                                                         "target pathway (4.2%/yr, SBTi 1.5°C)"]
    assert np.allclose(figs["comparison"].data[1].y, [14.5, 14.5, 14.5])


# --- CLI -------------------------------------------------------------------------------------------


def test_cli_run_save_and_list(tenants: Pair, database_url: str, data_dir: Path, tmp_path: Path) -> None:
    import yaml

    path = tmp_path / "cli.yaml"
    path.write_text(yaml.safe_dump({**PLAN, "name": "from-cli"}))
    r = run_cli(database_url, data_dir, "scenarios", "run", "scen-a", str(path), "--save")
    assert r.returncode == 0, r.stderr
    assert "TOTAL" in r.stdout and "saved scenario 'from-cli'" in r.stdout
    r = run_cli(database_url, data_dir, "scenarios", "list", "scen-a")
    assert r.returncode == 0 and "from-cli" in r.stdout
    r = run_cli(database_url, data_dir, "scenarios", "list", "scen-b")
    assert r.returncode == 0 and "from-cli" not in r.stdout

    path.write_text(yaml.safe_dump({**PLAN, "target_year": 2020}))
    r = run_cli(database_url, data_dir, "scenarios", "run", "scen-a", str(path))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert [ln for ln in r.stderr.splitlines() if ln] == [
        "error: scenario 'plan' refused: target year 2020 is not after base year 2025"]


# --- the analyst notebook --------------------------------------------------------------------------

NOTEBOOK = Path(__file__).parent.parent / "notebooks" / "analyst" / "scenarios.ipynb"


def test_notebook_is_committed_without_outputs() -> None:
    import nbformat

    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)


def test_notebook_runs_on_a_tenant(tenants: Pair, monkeypatch: pytest.MonkeyPatch) -> None:
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("SCOPE3_TENANT_DATABASE_URL", tenants[0].database_url)
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    printed = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "2025: 17 t CO2e across 3 suppliers" in printed
    assert "refused" not in printed
