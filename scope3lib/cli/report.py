"""`scope3 report`: run a report now, list runs, and the per-tenant scheduler service."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import click

from .. import db, tenancy
from ..config import Settings, TenantSettings
from ..reporting import runs as reports
from . import main


@main.group("report")
def report_group() -> None:
    """Scheduled papermill reports (reports/schedules.yaml)."""


def _tenant_url(settings: Settings, slug: str) -> str:
    """The tenant's read-write URL: from the hub's environment, else from the tenant's secrets file."""
    here = TenantSettings()
    if here.tenant == slug and here.tenant_database_url:
        return here.tenant_database_url
    return tenancy.tenant_credentials(settings.data_dir, slug).database_url


@report_group.command("run")
@click.argument("name")
@click.option("--tenant", "slug", required=True, help="Tenant to run the report for.")
@click.option("-p", "--parameter", "params", type=(str, str), multiple=True, metavar="KEY VALUE",
              help="Override a notebook parameter (checked against its parameters cell).")
@click.option("--schedules", type=click.Path(dir_okay=False), default=None,
              help="The schedules file declaring the report (default: the platform's reports/schedules.yaml).")
@click.option("--output", type=click.Path(file_okay=False), default=None,
              help="Root directory of the outputs (<root>/<tenant>/<report>/; default: the tenant's own "
                   "DATA_DIR/tenants/<tenant>/reports/<report>/).")
@click.pass_context
def report_run(ctx: click.Context, name: str, slug: str, params: tuple[tuple[str, str], ...], schedules: str | None,
               output: str | None) -> None:
    """Run report NAME for a tenant now; exit 1 if it fails."""
    from pathlib import Path

    spec = reports.get_spec(name, Path(schedules) if schedules else None)
    url = _tenant_url(ctx.obj, slug)
    given: dict[str, Any] = dict(params)
    reports.validate_parameters(spec.notebook_path(), {**spec.parameters, **given})
    result = reports.run_report(db.connect(url), url, slug, name, spec, given,
                                output_root=Path(output) if output else None, data_dir=ctx.obj.data_dir)
    if result.status == "succeeded":
        where = result.output_html or result.output_ipynb
        click.echo(f"report {name} for {slug}: succeeded in {result.seconds:.1f}s -> {where}")
        return
    click.echo(f"error: report {name} for {slug} failed after {result.attempt} attempt(s) in cell "
               f"{result.failed_cell}: {result.error}", err=True)
    ctx.exit(1)


@report_group.command("history")
@click.argument("slug")
@click.option("--limit", type=click.IntRange(1, 10_000), default=20, show_default=True)
@click.pass_context
def report_history(ctx: click.Context, slug: str, limit: int) -> None:
    """List a tenant's report runs, newest first."""
    for r in reports.history(db.connect(_tenant_url(ctx.obj, slug)), limit):
        where = r["output_html"] or r["output_ipynb"] or ""
        problem = f" cell {r['failed_cell']}: {r['error']}" if r["status"] == "failed" else ""
        click.echo(f"{r['id']:>6} {r['started_at']:%Y-%m-%d %H:%M:%S} {r['report']:<12} {r['trigger']:<8} "
                   f"attempt {r['attempt']} {r['status']:<9}{problem} {where}")


@report_group.command("scheduler")
@click.argument("slug")
@click.option("--interval", type=click.FloatRange(1), default=20.0, show_default=True,
              help="Seconds between checks for due reports.")
@click.option("--rollup-every", type=click.FloatRange(0), default=0.0, show_default=True,
              help="Seconds between meter rollups (readings into daily emission entries); 0: none.")
@click.pass_context
def report_scheduler(ctx: click.Context, slug: str, interval: float, rollup_every: float) -> None:
    """Run tenant SLUG's scheduled reports as they fall due, and its meter rollup (the hub runs this as its
    `reports` service)."""
    logging.getLogger().setLevel(logging.INFO)
    url = _tenant_url(ctx.obj, slug)
    scheduler = reports.Scheduler(db.connect(url), url, slug, start=dt.datetime.now(dt.UTC),
                                  rollup_every_s=rollup_every)
    click.echo(f"scheduler for {slug}: checking every {interval:g}s", err=True)
    scheduler.run_forever(interval)
