"""What executives, analysts and auditors see: the report's period, live meters, anomalies, readable output."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scope3lib import demo
from scope3lib.accounting import inventory
from scope3lib.meters.simulator import make_meters
from scope3lib.ml.anomalies import findings
from scope3lib.reporting import charts
from scope3lib.reporting import runs as reports
from scope3lib.reporting.executive import ExecutiveDashboard
from scope3lib.reporting.panels import PanelContext, build
from tests.helpers import TenantFactory, TenantFixture, run_cli, write_readings

pytestmark = pytest.mark.db

TODAY = dt.datetime.now(dt.UTC).date()


@pytest.fixture(scope="module")
def metered(make_module_tenant: TenantFactory) -> TenantFixture:
    """Last year's inventory (40 suppliers), and meters reading today: one healthy, one stuck."""
    tenant = make_module_tenant(suppliers=40, seed=5, devices=2)
    now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    healthy = [(now - dt.timedelta(minutes=2 * i), 1.0 + 0.1 * np.sin(i)) for i in range(25)]
    stuck = [(now - dt.timedelta(minutes=2 * i), 0.75 if i < 8 else 1.0 + 0.1 * np.cos(i)) for i in range(25)]
    write_readings(tenant.admin, tenant.slug, "meter-001", healthy)
    write_readings(tenant.admin, tenant.slug, "meter-002", stuck)
    return tenant


def test_the_report_covers_the_last_complete_year_not_the_days_of_this_one(metered: TenantFixture,
                                                                          database_url: str) -> None:
    rollup = run_cli(database_url, metered.data_dir, "meters", "rollup", metered.slug)
    assert rollup.returncode == 0, rollup.stderr  # today's meter entries exist now
    window = inventory.reporting_window(metered.readonly)
    year = demo.DemoProfile("x", "x", "free", seed=0).year  # the year the generated inventory covers
    assert (window.first, window.last, window.partial) == (dt.date(year, 1, 1), dt.date(year, 12, 31), False)
    assert window.label == f"January {year} to December {year}"
    six = inventory.reporting_window(metered.readonly, months=6)
    assert (six.first, six.last) == (dt.date(year, 7, 1), dt.date(year, 12, 31))
    now = inventory.reporting_window(metered.readonly, months=1, end=f"{TODAY:%Y-%m}")
    assert now.partial and now.first == TODAY.replace(day=1)


def test_a_tenant_in_its_first_year_gets_the_year_to_date_marked_partial(make_tenant: TenantFactory) -> None:
    tenant = make_tenant(meters=1)
    write_readings(tenant.admin, tenant.slug, next(iter(tenant.meters)),
                   [(dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5), 2.0)])
    from scope3lib.meters.rollup import rollup_daily

    rollup_daily(tenant.admin, tenant.slug)
    window = inventory.reporting_window(tenant.readonly)
    assert window.partial and window.first == dt.date(TODAY.year, 1, 1) and window.last == TODAY
    assert window.label.endswith("(year to date, partial)")


def test_a_period_without_entries_says_so_and_shows_no_zero(metered: TenantFixture, tmp_path: Path) -> None:
    spec = reports.get_spec("monthly")
    result = reports.run_report(metered.engine, metered.database_url, metered.slug, "monthly", spec,
                                {"months": 3, "end": "2019-12"}, output_root=tmp_path / "out",
                                data_dir=metered.data_dir)
    assert result.status == "succeeded", result.error
    html = result.output_html.read_text() if result.output_html else ""
    assert "No emission entries in October 2019 to December 2019: there is nothing to report" in html
    assert "0 t CO2e" not in html and "Total emissions" not in html
    assert re.search(r"<title>Monthly report, t\w+, \d\d \w+ \d{4}</title>", html)


def test_the_report_is_titled_and_shares_one_plotly(metered: TenantFixture, tmp_path: Path) -> None:
    spec = reports.get_spec("monthly")
    result = reports.run_report(metered.engine, metered.database_url, metered.slug, "monthly", spec, {},
                                output_root=tmp_path / "out", data_dir=metered.data_dir)
    assert result.status == "succeeded", result.error
    assert result.output_html is not None and result.output_ipynb is not None
    html = result.output_html.read_text()
    assert "<title>Notebook</title>" not in html and f"Monthly report, {metered.slug}" in html
    script = re.search(r'<script src="\.\./(plotly-[\d.]+\.min\.js)"></script>', html)
    assert script and (result.output_html.parent.parent / script.group(1)).stat().st_size > 1_000_000
    assert result.output_html.stat().st_size < 1_500_000 and result.output_ipynb.stat().st_size < 1_500_000
    assert "e+0" not in re.sub(r"<script.*?</script>", "", html, flags=re.S)  # no 1.2e+07 in the tables
    assert ">nan<" not in html.lower() and "NaN" not in re.sub(r"<script.*?</script>", "", html, flags=re.S)


def test_the_meters_panel_shows_todays_energy_priced_by_the_lookup(metered: TenantFixture) -> None:
    panel = build("meters", PanelContext(metered.readonly, pd.DataFrame()))
    table = panel.data
    assert table is not None and set(table["device"]) == {"meter-001", "meter-002"}
    row = table.set_index("device").loc["meter-001"]
    from scope3lib.factors.lookup import grid_factor

    factor = grid_factor(metered.readonly, str(row["grid_region"]), TODAY.year)
    assert factor is not None and row["kg_co2e_today"] == pytest.approx(row["kwh_today"] * factor.value)
    assert "kWh today" in panel.html() and "kg CO2e today" in panel.html() and "readings_today" not in panel.html()


def test_the_anomalies_panel_finds_the_stuck_meter(metered: TenantFixture) -> None:
    panel = build("anomalies", PanelContext(metered.readonly, pd.DataFrame()))
    assert panel.data is not None and ((panel.data["device_key"] == "meter-002")
                                       & (panel.data["kind"] == "stuck")).any()
    assert "stuck value" in panel.html() and "meter-002" in panel.html()


def test_the_simulators_planted_faults_are_found() -> None:
    meters = make_meters("t", [("m-stuck", "CAMX"), ("m-spike", "CAMX"), ("m-ok", "CAMX")],
                         faults={"m-stuck": "stuck", "m-spike": "spike"})
    rng = np.random.default_rng(0)
    start = dt.datetime(2026, 11, 2, 9, tzinfo=dt.UTC)
    rows = []
    for i in range(240):  # two hours of readings every 30 s
        now = start + dt.timedelta(seconds=30 * i)
        rows += [{"device_key": m.device, "ts": now, "kwh": m.reading(now, rng)["kwh"]} for m in meters]
    found = findings(pd.DataFrame(rows))
    kinds = found.groupby("device_key")["kind"].agg(set).to_dict()
    assert "stuck" in kinds.get("m-stuck", set()) and "spike" in kinds.get("m-spike", set())
    assert "m-ok" not in kinds


def test_the_dashboard_opens_on_the_reports_period(metered: TenantFixture) -> None:
    dashboard = ExecutiveDashboard(metered.readonly)
    first, last = dashboard._default_period()
    year = demo.DemoProfile("x", "x", "free", seed=0).year
    assert (dashboard.months[first], dashboard.months[last]) == (f"{year}-01", f"{year}-12")
    assert dashboard.months[-1] == f"{TODAY:%Y-%m}"  # today's meter entries are there, just not selected


def test_charts_say_what_they_show() -> None:
    entries = pd.DataFrame({"period_start": [dt.date(2025, 1, 1)] * 3, "kg_co2e": [1000.0, 2000.0, 1e-6],
                            "data_source": ["manual", "ml", "iot"]})
    trend = charts.trend(entries)
    assert {t.name for t in trend.data} == {"supplier data", "ML estimate", "metered"}
    donut = charts.data_sources(entries)
    assert list(donut.data[0].labels) == ["supplier data", "ML estimate"]  # 0.0000% is left out
    energy = charts.recent_energy(pd.DataFrame({"day": [TODAY], "kwh": [2.3], "kg_co2e": [0.8]}))
    assert len(energy.data[0].x) == 30 and energy.layout.yaxis2.rangemode == "tozero"
    assert energy.layout.xaxis.type == "date" and energy.layout.xaxis.tickformat == "%d %b"


def test_cli_messages_read_as_sentences(metered: TenantFixture, database_url: str, tmp_path: Path) -> None:
    scenario = tmp_path / "grow.yaml"
    scenario.write_text("name: grow\nbase_year: 2025\ntarget_year: 2030\ngrowth: 0.05\ndiscount_rate: 0.08\nlevers:\n"
                        "  - kind: spend_reduction\n    category: 1\n    reduction: 0.01\n    start_year: 2026\n")
    out = run_cli(database_url, metered.data_dir, "scenarios", "run", metered.slug, str(scenario))
    assert out.returncode == 0, out.stderr
    last = out.stdout.strip().splitlines()[-1]
    assert last.startswith("in 2030:") and "% above 2025" in last and "-" not in last.split("t CO2e", 1)[1], last


def test_demo_profile_can_be_unlearnable() -> None:
    learnable = demo.generate(dataclasses.replace(demo.DEMO_TENANTS[0], suppliers=120))
    flat = demo.generate(dataclasses.replace(demo.DEMO_TENANTS[0], suppliers=120, learnable=False))
    assert not learnable.truth["effect"].equals(flat.truth["effect"])
