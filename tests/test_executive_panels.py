"""The executive dashboard's tenant-wide panels (hotspots, how much is estimated, verification, scenarios):
computed with the tenant's read-only role, an empty state for each, a failing panel reduced to one line,
a tampered entry named in red, and the same four sections in the monthly report."""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import nbformat
import pandas as pd
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from scope3lib import db, demo, scenarios, schema
from scope3lib.ledger import log as ledger_log
from scope3lib.ml import estimates, hotspots
from scope3lib.ml.suppliers import tenant_suppliers
from scope3lib.reporting import runs as reports
from scope3lib.reporting.executive import HOTSPOT_MIN_SUPPLIERS, ExecutiveDashboard, Panel
from tests.helpers import TenantFactory, TenantFixture

pytestmark = pytest.mark.db

REPO = Path(__file__).resolve().parents[1]
DASHBOARD = REPO / "notebooks" / "dashboards" / "executive.ipynb"
KEYS = ["hotspots", "estimated", "coverage", "engagement", "verification", "scenarios"]
TITLES = ["Hotspots", "How much is estimated", "Spend coverage", "Supplier engagement", "Verification", "Scenarios"]
SCENARIO = {"name": "engage-suppliers", "base_year": 2025, "target_year": 2030, "growth": 0.02, "discount_rate": 0.05,
            "levers": [{"kind": "supplier_engagement", "category": 1, "share": 0.5, "reduction": 0.2,
                        "start_year": 2026, "implementation_cost": 50000, "annual_saving": 2000},
                       {"kind": "energy_efficiency", "category": 4, "reduction": 0.1, "start_year": 2027,
                        "implementation_cost": 20000, "annual_saving": 15000}]}


# The demo tenants' first seed: 220 suppliers, 55 of them reporting, and 2 meters.
DEMO = {"demo_profile": demo.DEMO_TENANTS[0], "suppliers": 220, "devices": 2}


@pytest.fixture(scope="module")
def bare(make_module_tenant: TenantFactory) -> TenantFixture:
    """A demo tenant as provisioned: no checkpoint signed, no scenario stored, no ML estimate."""
    return make_module_tenant("panels-bare", **DEMO)


@pytest.fixture(scope="module")
def full(engine: Engine, data_dir: Path, make_module_tenant: TenantFactory) -> TenantFixture:
    """A demo tenant with ML estimates on its spend-based entries, a stored scenario and a signed checkpoint."""
    tenant = make_module_tenant("panels-full", **DEMO)
    rw = tenant.engine
    # The demo's 55 reporters train a model; it is applied whether or not it beats EEIO out of fold
    # (predict_tenant's gate), so the inventory holds real estimates from the real write path.
    model = estimates.train_tenant(rw, data_dir, tenant.slug)
    suppliers = tenant_suppliers(rw)
    targets = suppliers[~suppliers["reports"]]
    predicted = model.predict(targets).assign(supplier_id=targets["supplier_id"].to_numpy())
    assert estimates.write_estimates(rw, predicted) > 0
    scenarios.save(rw, scenarios.parse(SCENARIO))
    ledger_log.checkpoint(engine, data_dir, tenant.slug)
    return tenant


def panels_of(url: str) -> dict[str, Panel]:
    viewer = db.create_engine(url)
    try:
        dashboard = ExecutiveDashboard(viewer)
        computed = dashboard.tenant_panels()
        assert dashboard.tenant_panels() is computed  # once, not on every redraw
        return {p.key: p for p in computed}
    finally:
        viewer.dispose()


@contextmanager
def without_grant(engine: Engine, table: str) -> Iterator[None]:
    """The read-only group role loses SELECT on ``table`` for the block, as a migration might forget it."""
    with engine.begin() as conn:
        ro = schema.group_role(schema.role_prefix(conn), "ro")
        conn.execute(sa.text(f'REVOKE SELECT ON {table} FROM "{ro}"'))
    try:
        yield
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f'GRANT SELECT ON {table} TO "{ro}"'))


def entry_count(url: str) -> int:
    tenant = db.create_engine(url)
    try:
        with tenant.connect() as conn:
            return int(conn.scalar(sa.text("SELECT count(*) FROM emission_entries")))
    finally:
        tenant.dispose()


# --- with the read-only role ----------------------------------------------------------------------


def test_every_panel_is_computed_with_the_read_only_role(full: TenantFixture) -> None:
    panels = panels_of(full.database_url_readonly)
    assert list(panels) == KEYS and [p.title for p in panels.values()] == TITLES
    # Without an ERP extract, the spend coverage panel says how to import one (tests/test_company_data.py); without
    # a data request, the engagement panel how to send one (tests/test_engagement.py).
    assert {k: p.state for k, p in panels.items()} == dict.fromkeys(KEYS, "ok") | {"coverage": "empty",
                                                                                    "engagement": "empty"}, {
        k: p.html() for k, p in panels.items()}
    viewer = full.readonly

    hot = panels["hotspots"]
    assert hot.data is not None and not hot.data.empty
    pd.testing.assert_frame_equal(hot.data, hotspots.tenant_hotspots(viewer))
    first = hot.data.iloc[0]
    assert re.search(rf"<b>{len(hot.data)}</b> of \d+ suppliers are out of line", hot.html())
    assert first["name"] in hot.html() and first["explanation"] in hot.html()
    assert f"{first['kg_at_stake'] / 1000:,.1f}" in hot.html()

    est = panels["estimated"]
    assert est.data is not None
    expected = estimates.estimated_share(viewer)["ml_share"]
    pd.testing.assert_series_equal(est.data.loc[expected.index, "ml_share"], expected, check_names=False)
    assert 0 < est.data.loc[0, "ml_share"] < 1 and "are estimated by ML" in est.html()
    assert "ML estimate" in [t.name for t in est.figures()[0].data]

    ver = panels["verification"]
    n = entry_count(full.database_url_readonly)
    report = ledger_log.verify(viewer)
    assert report.last_checkpoint is not None
    assert "ledger-green" in ver.html() and f"Verified: all {n:,} entries match" in ver.html()
    assert f"tree size {report.last_checkpoint.tree_size:,} leaves" in ver.html()
    assert f"{report.last_checkpoint.signed_at.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC" in ver.html()
    assert "<b>100.0%</b>" in ver.html() and "Discrepancies: <b>0</b>" in ver.html()

    scen = panels["scenarios"]
    comparison, curve = scen.figures()
    assert [t.name for t in comparison.data] == ["business as usual", "engage-suppliers",
                                                 "target pathway (4.2%/yr, SBTi 1.5°C)"]
    assert len(curve.data) == 1 and len(curve.data[0].x) == 2  # one bar per lever


def test_empty_states_say_what_to_do(bare: TenantFixture, full: TenantFixture) -> None:
    panels = panels_of(bare.database_url_readonly)  # row-level security: nothing of the full tenant's shows
    assert panels["hotspots"].state == "ok"  # 220 suppliers: enough to compare
    assert {k: panels[k].state for k in KEYS[1:]} == dict.fromkeys(KEYS[1:], "empty")
    est = panels["estimated"].html()
    assert "No ML estimates" in est and "<code>scope3 ml train panels-bare</code>" in est
    assert panels["estimated"].figures()  # the data sources are still shown
    ver = panels["verification"].html()
    assert "ledger-amber" in ver
    assert "no checkpoint signed yet: run <code>scope3 ledger checkpoint panels-bare</code>" in ver
    assert f"(0 of {entry_count(bare.database_url_readonly):,})" in ver
    assert "No scenarios stored yet" in panels["scenarios"].html()
    assert "scope3 scenarios run panels-bare FILE.yaml --save" in panels["scenarios"].html()


def test_a_tenant_without_data_then_with_too_few_suppliers(make_tenant: TenantFactory) -> None:
    creds = make_tenant(name="Empty")
    panels = panels_of(creds.database_url_readonly)
    assert {k: p.state for k, p in panels.items()} == dict.fromkeys(KEYS, "empty")
    assert "Too few suppliers to compare: 0" in panels["hotspots"].html()
    assert "No emission entries yet" in panels["estimated"].html()
    assert "no checkpoint signed yet" in panels["verification"].html()

    few = HOTSPOT_MIN_SUPPLIERS - 3
    creds.load_demo(suppliers=few, seed=3, devices=1)
    hot = panels_of(creds.database_url_readonly)["hotspots"]
    assert hot.state == "empty"
    assert f"Too few suppliers to compare: {few} with both spend and emissions" in hot.html()


# --- failures -------------------------------------------------------------------------------------


def test_a_failing_panel_says_why_in_one_line_and_the_others_still_show(
        engine: Engine, bare: TenantFixture, caplog: pytest.LogCaptureFixture) -> None:
    with without_grant(engine, "scenarios"), caplog.at_level(logging.ERROR, "scope3lib.reporting.executive"):
        panels = panels_of(bare.database_url_readonly)
    scen = panels["scenarios"]
    assert scen.state == "unavailable"
    assert re.search(r"<p [^>]*>panel unavailable: permission denied for table scenarios</p>$", scen.html())
    assert [panels[k].state for k in KEYS[:3]] == ["ok", "empty", "empty"]
    assert "Traceback" not in "".join(p.html() for p in panels.values())
    logged = [r for r in caplog.records if r.name == "scope3lib.reporting.executive"]
    assert len(logged) == 1 and logged[0].exc_info is not None and "'scenarios'" in logged[0].getMessage()



def test_a_scenario_the_inventory_no_longer_supports_is_named_not_a_stack(bare: TenantFixture) -> None:
    rw = bare.engine
    broken = {**SCENARIO, "name": "broken", "levers": [{"kind": "supplier_switch", "supplier": "Nobody Ltd",
                                                        "to_naics": "541511", "start_year": 2026}]}
    scenarios.save(rw, scenarios.parse(broken))
    try:
        alone = panels_of(bare.database_url_readonly)["scenarios"]
        scenarios.save(rw, scenarios.parse(SCENARIO))
        beside = panels_of(bare.database_url_readonly)["scenarios"]
    finally:
        for name in scenarios.list_scenarios(rw)["name"]:
            scenarios.delete(rw, name)
    reason = ("scenario &#x27;broken&#x27;: lever 1 (supplier_switch: Nobody Ltd -&gt; NAICS 541511): no supplier "
              "named &#x27;Nobody Ltd&#x27; in the 2025 inventory")
    assert alone.state == "unavailable" and f"panel unavailable: {reason}" in alone.html()
    # Beside one that runs, the broken one is named and the other is drawn.
    assert beside.state == "ok" and f"Not shown: {reason}" in beside.html()
    assert "(engage-suppliers)" in beside.html()
    assert [t.name for t in beside.figures()[0].data][1] == "engage-suppliers"


def test_a_tampered_entry_is_a_discrepancy_in_the_verification_panel(engine: Engine,
                                                                      full: TenantFixture) -> None:
    with engine.begin() as conn:
        entry = int(conn.scalar(sa.text("SELECT min(e.id) FROM emission_entries e JOIN tenants t ON "
                                        "t.id = e.tenant_id WHERE t.slug = :s"), {"s": full.slug}))

    def rewrite(expression: str) -> None:
        # As the admin, behind the ledger's back: replica mode skips the trigger that would log the change.
        with engine.begin() as conn:
            conn.execute(sa.text("SET LOCAL session_replication_role = replica"))
            conn.execute(sa.text(f"UPDATE emission_entries SET kg_co2e = {expression} WHERE id = :i"), {"i": entry})

    rewrite("kg_co2e * 2")
    try:
        ver = panels_of(full.database_url_readonly)["verification"]
    finally:
        rewrite("kg_co2e / 2")  # exact in binary floating point: the log matches again
    assert ledger_log.verify(engine, full.slug).ok
    html = ver.html()
    assert ver.state == "ok" and "ledger-red" in html and "ledger-green" not in html
    assert "1 discrepancy: the inventory or its log no longer matches" in html
    assert "Discrepancies: <b>1</b>" in html
    assert re.search(rf"<td>changed</td>\s*<td>{entry}</td>", html)
    assert f"entry {entry}: kg_co2e is " in html and " but the log records " in html
    assert ver.data is not None and ver.data["entry_id"].tolist() == [entry]


# --- where the panels are shown -------------------------------------------------------------------


def test_the_dashboard_notebook_shows_the_panels_in_a_kernel(engine: Engine, full: TenantFixture,
                                                             monkeypatch: pytest.MonkeyPatch,
                                                             capfd: pytest.CaptureFixture[str]) -> None:
    """The notebook Voila runs, executed by a real kernel with the read-only URL; one panel fails, and its
    error goes to the kernel process's stderr (the service log), not to the page."""
    from nbclient import NotebookClient

    monkeypatch.setenv("SCOPE3_TENANT_DATABASE_URL", full.database_url_readonly)
    # ipykernel forwards file descriptor 2 to the page, as under Voila, except when it sees pytest.
    monkeypatch.delenv("PYTEST_CURRENT_TEST")
    nb = nbformat.read(DASHBOARD, as_version=4)
    with without_grant(engine, "ledger_checkpoints"):
        NotebookClient(nb, timeout=180, kernel_name="python3").execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o["output_type"] == "error" or o.get("name") == "stderr"], outputs
    assert "dashboard panel 'verification' failed" in capfd.readouterr().err
    # The first view is plain HTML outputs (drawn before any widget); the controls are widgets.
    html = " ".join(str(o.get("data", {}).get("text/html", "")) for o in outputs)
    widgets = json.dumps(nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"])
    assert "SelectionRangeSliderModel" in widgets and "DropdownModel" in widgets
    state = html + widgets
    for title in TITLES:
        assert f"<h3>{title}</h3>" in state
    assert "panel unavailable: permission denied for table ledger_checkpoints" in state
    assert "are estimated by ML" in state and "out of line with their sector peers" in state
    assert "Traceback" not in state


def test_the_monthly_report_has_the_four_sections(tmp_path: Path, full: TenantFixture) -> None:
    spec = reports.get_spec("monthly")
    result = reports.run_report(full.engine, full.database_url, full.slug, "monthly", spec,
                                {"months": 6}, output_root=tmp_path / "out")
    assert result.status == "succeeded", result.error
    html = result.output_html.read_text() if result.output_html else ""
    for title in TITLES:
        assert re.search(rf"<h2[^>]*>{title}<", html), title
    assert "out of line with their sector peers" in html
    assert "are estimated by ML" in html and "July 2025 to December 2025" in html
    assert "Verified: all" in html and "engage-suppliers" in html
    assert "panel unavailable" not in html and "Traceback" not in html


def test_the_monthly_report_keeps_its_parameters() -> None:
    nb = nbformat.read(str(reports.get_spec("monthly").notebook_path()), as_version=4)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and tagged[0] is nb.cells[0]
    assert reports.validate_parameters(reports.get_spec("monthly").notebook_path(),
                                       {"months": 3, "end": "2025-06", "top_n": 5}) == {
        "months": 3, "end": "2025-06", "top_n": 5}
    assert all(not c.outputs and c.execution_count is None for c in nb.cells if c.cell_type == "code")


def test_the_dashboard_service_computes_the_tenant_panels_once_per_change_of_the_data(
        engine: Engine, full: TenantFixture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the service's cache directory, a page whose data did not change loads the panels the last one
    computed; a change of the data (a scenario saved) computes them again; a failing panel is never kept."""
    cache = tmp_path / "panels"
    monkeypatch.setenv("SCOPE3_DASHBOARD_CACHE_DIR", str(cache))
    first = panels_of(full.database_url_readonly)
    assert len(list(cache.iterdir())) == 1
    assert cache.stat().st_mode & 0o777 == 0o700

    def computed(*_: object) -> None:
        raise AssertionError("computed again although the data did not change")

    with monkeypatch.context() as patched:
        patched.setattr(ExecutiveDashboard, "_render", computed)
        again = panels_of(full.database_url_readonly)
    assert {k: p.html() for k, p in again.items()} == {k: p.html() for k, p in first.items()}

    scenarios.save(full.engine, scenarios.parse({**SCENARIO, "name": "second-plan"}))
    try:
        changed = panels_of(full.database_url_readonly)
        with without_grant(engine, "scenarios"):
            failing = panels_of(full.database_url_readonly)
    finally:
        scenarios.delete(full.engine, "second-plan")
    assert "2 stored scenarios" in changed["scenarios"].html() and len(list(cache.iterdir())) == 1
    assert failing["scenarios"].state == "unavailable" and len(list(cache.iterdir())) == 1
    # The data version of that page could not be read (the revoked table is one it covers), so the cache was
    # not consulted at all; with a readable version, a set holding a failed panel is still not kept.
    from scope3lib.reporting import tenant_cache

    broken = [next(iter(first.values())), Panel("scenarios", "Scenarios", (), "unavailable")]
    version = ("role", "a-version-with-a-failed-panel")
    assert tenant_cache.cached(full.readonly, lambda: broken, version) is broken
    assert tenant_cache.load(version) is None and len(list(cache.iterdir())) == 1


def test_the_refresher_keeps_the_panels_of_the_data_as_it_changes(full: TenantFixture, tmp_path: Path) -> None:
    """The process beside the dashboard's Voila computes the panels of the current data, and again after a change,
    keeping one file."""
    import os
    import subprocess
    import sys

    from tests.helpers import wait_until

    cache = tmp_path / "panels"
    env = {**os.environ, "SCOPE3_DASHBOARD_CACHE_DIR": str(cache),
           "SCOPE3_TENANT_DATABASE_URL": full.database_url_readonly}
    refresher = subprocess.Popen([sys.executable, "-m", "scope3lib.reporting.tenant_cache", "--every=1"], env=env,
                                 stderr=subprocess.PIPE, text=True)
    try:
        first = wait_until(lambda: list(cache.glob("*.pickle")), 120, "the refresher's first panels", interval=0.5)
        scenarios.save(full.engine, scenarios.parse({**SCENARIO, "name": "third-plan"}))
        wait_until(lambda: [f for f in cache.glob("*.pickle") if f not in first], 120, "the panels of the new data",
                   interval=0.5)
        assert len(list(cache.glob("*.pickle"))) == 1
    finally:
        scenarios.delete(full.engine, "third-plan")
        refresher.terminate()
        _, err = refresher.communicate(timeout=30)
    assert err.count("tenant panels computed in") == 2, err


def test_the_first_view_is_prepared_once_per_data_version_and_widgets_take_over_from_it(
        full: TenantFixture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """In the dashboard service a page's first view (default selection, tenant-wide panels) is plain HTML prepared
    once per data version, as a preheated kernel does before its viewer: a page of unchanged data reuses it, a
    change of the data (a supplier renamed) prepares it again. A redrawn part hides the plain HTML it replaces."""
    from scope3lib.reporting import executive

    monkeypatch.setenv("SCOPE3_DASHBOARD_CACHE_DIR", str(tmp_path / "panels"))
    viewer = db.create_engine(full.database_url_readonly)
    try:
        first = ExecutiveDashboard(viewer).first_view()
        assert "Total emissions" in first.selection and "<svg class='s3-chart'" in first.selection
        assert all(f"<h3>{title}</h3>" in first.tenant for title in TITLES)
        assert ExecutiveDashboard(viewer).first_view() is first

        with full.engine.begin() as c:
            top = c.execute(sa.text("SELECT s.id, s.name FROM suppliers s JOIN emission_entries e ON e.supplier_id = "
                                    "s.id GROUP BY s.id, s.name ORDER BY sum(e.kg_co2e) DESC LIMIT 1")).one()
            c.execute(sa.text("UPDATE suppliers SET name = 'Renamed Meanwhile Ltd' WHERE id = :i"), {"i": top.id})
        try:
            again = ExecutiveDashboard(viewer).first_view()
        finally:
            with full.engine.begin() as c:
                c.execute(sa.text("UPDATE suppliers SET name = :n WHERE id = :i"), {"n": top.name, "i": top.id})
        assert again is not first and "Renamed Meanwhile Ltd" in again.selection
        assert "Renamed Meanwhile Ltd" not in first.selection
    finally:
        viewer.dispose()

    import ipywidgets as w

    taken = executive._take_over("s3-page-selection", [w.HTML("<p>new</p>"), w.HTML("<p>more</p>")])
    assert taken[0].value == "<style>.s3-page-selection { display: none; }</style><p>new</p>"
    assert [x.value for x in executive._take_over("s3-page-meters", [])] == [
        "<style>.s3-page-meters { display: none; }</style>"]
