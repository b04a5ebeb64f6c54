"""Scheduled papermill reports: parameters checked, runs recorded, failures named, schedule honoured."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import nbformat
import pytest
import yaml

from scope3lib import db, demo
from scope3lib.errors import ConfigurationError
from scope3lib.reporting import runs as reports
from tests.helpers import TenantFactory, TenantFixture, run_cli

pytestmark = pytest.mark.db

PROBE = Path(__file__).parent / "notebooks" / "probe_report.ipynb"


def schedules(tmp_path: Path, **spec: object) -> Path:
    path = tmp_path / "schedules.yaml"
    base = {"notebook": str(PROBE), "schedule": "* * * * *", "tenants": "all", "retries": 1, "keep": 3}
    path.write_text(yaml.safe_dump({"reports": {"probe": {**base, **spec}}}))
    return path


def test_a_report_runs_with_the_tenant_role_and_is_recorded(tmp_path: Path, tenant_a: TenantFixture) -> None:
    spec = reports.get_spec("probe", schedules(tmp_path))
    engine = tenant_a.engine
    result = reports.run_report(engine, tenant_a.database_url, tenant_a.slug, "probe", spec, {"label": "ok"},
                                output_root=tmp_path / "out")
    assert result.status == "succeeded" and result.attempt == 1
    assert result.output_html is not None and result.output_html.parent == tmp_path / "out" / "alpha" / "probe"
    executed = nbformat.read(str(result.output_ipynb), as_version=4)
    out = "".join(o.get("text", "") for c in executed.cells for o in c.get("outputs", []))
    assert "tenants: ['alpha']" in out and "admin url visible: False" in out and "okok" in out
    html = result.output_html.read_text()
    assert "okok" in html and "import scope3lib" not in html  # results without the code
    run = reports.history(engine)[0]
    assert (run["report"], run["status"], run["trigger"], run["parameters"]["label"]) == ("probe", "succeeded",
                                                                                           "manual", "ok")
    assert run["finished_at"] >= run["started_at"]


def test_a_failing_report_is_retried_then_recorded_with_its_cell(tmp_path: Path, tenant_a: TenantFixture) -> None:
    spec = reports.get_spec("probe", schedules(tmp_path, retries=2))
    engine = tenant_a.engine
    result = reports.run_report(engine, tenant_a.database_url, tenant_a.slug, "probe", spec,
                                {"fail": True, "label": "boom"}, output_root=tmp_path / "out")
    assert result.status == "failed" and result.attempt == 3 and len(result.attempts) == 3
    assert result.failed_cell == 2 and result.error == "ValueError: planted failure boom"
    runs = [r for r in reports.history(engine) if r["id"] in result.attempts]
    assert [r["status"] for r in runs] == ["failed"] * 3
    assert all(r["failed_cell"] == 2 and "planted failure boom" in r["error"] for r in runs)


def test_bad_parameters_are_refused_before_running(tmp_path: Path, tenant_a: TenantFixture) -> None:
    with pytest.raises(reports.InvalidParameter, match=r"unknown parameter.*colour.*takes fail, label, repeat"):
        reports.validate_parameters(PROBE, {"colour": "red"})
    with pytest.raises(reports.InvalidParameter, match="'repeat' must be int, got 'many'"):
        reports.validate_parameters(PROBE, {"repeat": "many"})
    assert reports.validate_parameters(PROBE, {"repeat": "3", "fail": "false"}) == {"repeat": 3, "fail": False}
    r = run_cli("postgresql://unused@127.0.0.1:1/x", Path("/tmp"), "report", "run", "probe", "--tenant", "alpha",
                "-p", "repeat", "lots", "--schedules", str(schedules(tmp_path)), "--output", str(tmp_path / "out"),
                env={"SCOPE3_TENANT": "alpha", "SCOPE3_TENANT_DATABASE_URL": tenant_a.database_url})
    assert r.returncode == 2 and "'repeat' must be int" in r.stderr and "Traceback" not in r.stderr


def test_schedules_file_is_strict(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"reports\.probe\.scheduel"):
        reports.load_schedules(schedules(tmp_path, scheduel="* * * * *"))
    with pytest.raises(ConfigurationError, match="not a cron expression"):
        reports.load_schedules(schedules(tmp_path, schedule="every monday"))


def test_the_shipped_schedules_and_notebooks_agree() -> None:
    for name, spec in reports.load_schedules().items():
        reports.validate_parameters(spec.notebook_path(), spec.parameters)
        nb = nbformat.read(str(spec.notebook_path()), as_version=4)
        assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), name


def test_scheduler_runs_what_falls_due_once(tmp_path: Path, tenant_a: TenantFixture) -> None:
    path = schedules(tmp_path, schedule="*/5 * * * *", keep=2)
    start = dt.datetime(2026, 11, 26, 9, 1, tzinfo=dt.UTC)
    engine = tenant_a.engine
    sched = reports.Scheduler(engine, tenant_a.database_url, "alpha", schedules=path, output_root=tmp_path / "o",
                              start=start)
    assert sched.tick(start + dt.timedelta(minutes=3)) == []  # 09:04: nothing due yet
    first = sched.tick(start + dt.timedelta(minutes=4, seconds=30))  # 09:05:30: the 09:05 run
    assert [r.status for r in first] == ["succeeded"]
    assert sched.tick(start + dt.timedelta(minutes=6)) == []  # not again
    late = sched.tick(start + dt.timedelta(minutes=30))  # after downtime: one run, not five
    assert len(late) == 1
    runs = [r for r in reports.history(engine) if r["trigger"] == "schedule"]
    assert runs[0]["scheduled_for"] == dt.datetime(2026, 11, 26, 9, 30, tzinfo=dt.UTC)
    assert runs[1]["scheduled_for"] == dt.datetime(2026, 11, 26, 9, 5, tzinfo=dt.UTC)
    other = reports.Scheduler(engine, tenant_a.database_url, "beta-only", schedules=schedules(
        tmp_path, tenants=["beta"]), output_root=tmp_path / "o", start=start)
    assert other.tick(start + dt.timedelta(hours=1)) == []
    assert len(list((tmp_path / "o" / "alpha" / "probe").glob("*.html"))) == 2  # keep: 2


def test_runs_are_private_to_the_tenant(tmp_path: Path, tenant_a: TenantFixture,
                                        tenant_b: TenantFixture) -> None:
    spec = reports.get_spec("probe", schedules(tmp_path))
    reports.run_report(tenant_a.engine, tenant_a.database_url, "alpha", "probe", spec, output_root=tmp_path / "out")
    assert all(json.dumps(r, default=str).count("alpha") == 0 for r in reports.history(db.connect(
        tenant_b.database_url)))
    assert reports.history(db.connect(tenant_b.database_url)) == [] or all(
        r["report"] != "probe" for r in reports.history(db.connect(tenant_b.database_url)))


def test_monthly_report_on_demo_data(tmp_path: Path, make_tenant: TenantFactory) -> None:
    creds = make_tenant("monthly-demo", name="Monthly Demo", demo_profile=demo.DEMO_TENANTS[0])
    spec = reports.get_spec("monthly")
    result = reports.run_report(creds.engine, creds.database_url, "monthly-demo", "monthly",
                                spec, {"months": 6}, output_root=tmp_path / "out")
    assert result.status == "succeeded", result.error
    html = result.output_html.read_text() if result.output_html else ""
    assert "Scope 3 emissions report" in html and "July 2025 to December 2025" in html
    assert "Purchased goods and services" in html and "plotly" in html
