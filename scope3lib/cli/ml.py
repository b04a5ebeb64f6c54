"""`scope3 ml`: train the supplier-intensity estimator, store its estimates, report it against EEIO;
hotspots and meter anomalies as tables."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from .. import db, tenancy
from ..config import Settings, TenantSettings
from . import echo_json, main

if TYPE_CHECKING:
    import pandas as pd
    from sqlalchemy.engine import Engine

# scikit-learn and skops are imported inside the commands: every `scope3` start would pay for them otherwise.


@main.group("ml")
def ml_group() -> None:
    """Estimates for suppliers without their own data, hotspots, meter anomalies."""


def _tenant_engine(settings: Settings, slug: str) -> Engine:
    """The tenant's own read-write role (row-level security), as the notebooks and reports use."""
    here = TenantSettings()
    if here.tenant == slug and here.tenant_database_url:
        return db.connect(here.tenant_database_url)
    tenancy.validate_slug(slug)
    return db.connect(tenancy.tenant_credentials(settings.data_dir, slug).database_url)


def _table(df: pd.DataFrame, as_json: bool) -> None:
    import pandas as pd

    from .. import frames

    if as_json:
        echo_json(frames.rows(df))
    else:
        with pd.option_context("display.width", 200, "display.max_columns", 20, "display.max_colwidth", 90):
            click.echo(df.to_string() if not df.empty else "(none)")


@ml_group.command("train")
@click.argument("slug")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the cross-validation and the model.")
@click.pass_context
def ml_train(ctx: click.Context, slug: str, seed: int) -> None:
    """Train on SLUG's reporting suppliers and store the model as the next version."""
    from ..ml import estimates

    est = estimates.train_tenant(_tenant_engine(ctx.obj, slug), ctx.obj.data_dir, slug, seed=seed)
    m = est.metrics
    verdict = ("it beats the EEIO baseline, so `scope3 ml predict` uses it" if m["beats_baseline"] else
               "it does not beat the EEIO baseline, so `scope3 ml predict` keeps the EEIO factors")
    click.echo(f"model {est.version} for {slug}: {int(m['suppliers'])} reporting suppliers; out of fold MAPE "
               f"{m['mape_pct']:.1f}% vs EEIO {m['eeio_mape_pct']:.1f}%, R² log {m['r2_log']:.3f} vs "
               f"{m['eeio_r2_log']:.3f}, 90% interval coverage {m['coverage']:.0%}; {verdict}")


@ml_group.command("predict")
@click.argument("slug")
@click.option("--version", default=None, help="Model version (default: the latest).")
@click.option("--dry-run", is_flag=True, help="Show the estimates without writing them.")
@click.option("--json", "as_json", is_flag=True, help="Print the estimates as JSON.")
@click.pass_context
def ml_predict(ctx: click.Context, slug: str, version: str | None, dry_run: bool, as_json: bool) -> None:
    """Estimate SLUG's non-reporting suppliers and store the estimates on their spend-based entries."""
    from ..ml import estimates

    out = estimates.predict_tenant(_tenant_engine(ctx.obj, slug), ctx.obj.data_dir, slug, version=version,
                                   write=not dry_run)
    if as_json:
        _table(out.predictions, True)
    if out.unknown_sectors:
        click.echo(f"warning: suppliers with NAICS code(s) {', '.join(out.unknown_sectors)} have no EEIO factor "
                   "and were not estimated", err=True)
    if out.basis == "eeio":
        click.echo(f"{slug}: fell back to EEIO, nothing written: {out.reason}", err=True)
        return
    if not as_json:
        done = "dry run: nothing written" if dry_run else f"{out.entries_updated} entries updated"
        click.echo(f"{slug}: model {out.model_version} estimated {len(out.predictions)} suppliers; {done}")


@ml_group.command("report")
@click.argument("slug")
@click.option("--version", default=None, help="Model version (default: the latest).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def ml_report(ctx: click.Context, slug: str, version: str | None, as_json: bool) -> None:
    """The model's out-of-fold metrics against the EEIO baseline, and the stored versions."""
    from .. import frames
    from ..ml import estimates
    from ..ml import registry as models_registry

    rep = estimates.report_tenant(ctx.obj.data_dir, slug, version)
    if as_json:
        echo_json({"metrics": frames.rows(rep.reset_index()),
                   "versions": frames.rows(models_registry.versions(ctx.obj.data_dir, slug))})
        return
    _table(rep.round(3), False)
    click.echo("")
    _table(models_registry.versions(ctx.obj.data_dir, slug), False)


@ml_group.command("hotspots")
@click.argument("slug")
@click.option("--limit", type=click.IntRange(1, 10_000), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def ml_hotspots(ctx: click.Context, slug: str, limit: int, as_json: bool) -> None:
    """Suppliers out of line with their sector, largest emissions at stake first."""
    from ..ml import hotspots

    h = hotspots.tenant_hotspots(_tenant_engine(ctx.obj, slug)).head(limit)
    _table(h if as_json else h[["name", "kg_at_stake", "explanation"]], as_json)


@ml_group.command("anomalies")
@click.argument("slug")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def ml_anomalies(ctx: click.Context, slug: str, as_json: bool) -> None:
    """Meter gaps, stuck values, spikes and drifts of SLUG's devices."""
    from ..ml import anomalies as meter_anomalies

    f = meter_anomalies.findings(meter_anomalies.device_readings(_tenant_engine(ctx.obj, slug)))
    _table(f.astype({"start": str, "end": str}) if as_json else f, as_json)
