"""`scope3 import activity`, `scope3 periods`, `scope3 inventory`: a tenant's inventory from the command line.

These commands act as the tenant's own database role (from its secrets file), so row-level
security and the frozen-period trigger apply exactly as in a notebook.
"""

from __future__ import annotations

import click
import sqlalchemy as sa

from .. import db, tenancy
from ..accounting import inventory
from ..errors import ActivityImportError
from . import main


def _tenant_engine(ctx: click.Context, slug: str) -> sa.Engine:
    creds = tenancy.tenant_credentials(ctx.obj.data_dir, slug)
    return db.create_engine(creds.database_url)


# Another module may define the `import` group first; share it rather than replace it.
_import = main.commands.get("import")
if not isinstance(_import, click.Group):

    @main.group("import")
    def _import_group() -> None:
        """Import data into a tenant."""

    _import = _import_group


@_import.command("activity")
@click.argument("slug")
@click.argument("path", type=click.Path(dir_okay=False))
@click.pass_context
def import_activity(ctx: click.Context, slug: str, path: str) -> None:
    """Import an activity file (CSV or .xlsx) into tenant SLUG, all or nothing."""
    engine = _tenant_engine(ctx, slug)
    try:
        result = inventory.import_activity_file(engine, path)
    except ActivityImportError as exc:
        click.echo(f"error: {exc}", err=True)
        ctx.exit(1)
    click.echo(f"imported {result.rows} rows into {slug}: {result.kg_co2e:,.1f} kg CO2e")


@main.group("periods")
def periods_group() -> None:
    """A tenant's reporting periods; closing one freezes its entries."""


@periods_group.command("create")
@click.argument("slug")
@click.argument("label")
@click.option("--start", required=True, help="First day, YYYY-MM-DD.")
@click.option("--end", required=True, help="Last day, YYYY-MM-DD.")
@click.option("--base-year", is_flag=True, help="Mark as the base year recalculations are measured against.")
@click.pass_context
def periods_create(ctx: click.Context, slug: str, label: str, start: str, end: str, base_year: bool) -> None:
    inventory.create_period(_tenant_engine(ctx, slug), label, start, end, base_year)
    click.echo(f"created period {label} ({start} to {end}) for {slug}")


@periods_group.command("close")
@click.argument("slug")
@click.argument("label")
@click.pass_context
def periods_close(ctx: click.Context, slug: str, label: str) -> None:
    inventory.close_period(_tenant_engine(ctx, slug), label)
    click.echo(f"closed period {label} of {slug}: its entries are frozen")


@periods_group.command("list")
@click.argument("slug")
@click.pass_context
def periods_list(ctx: click.Context, slug: str) -> None:
    click.echo(inventory.periods(_tenant_engine(ctx, slug)).to_string(index=False))


@main.group("inventory")
def inventory_group() -> None:
    """A tenant's Scope 3 inventory."""


@inventory_group.command("summary")
@click.argument("slug")
@click.option("--start", default=None, help="First period_start included, YYYY-MM-DD.")
@click.option("--end", default=None, help="Last period_start included, YYYY-MM-DD.")
@click.option("--format", "fmt", type=click.Choice(["csv", "table"]), default="table", show_default=True)
@click.pass_context
def inventory_summary(ctx: click.Context, slug: str, start: str | None, end: str | None, fmt: str) -> None:
    """The GHG Protocol table: the 15 categories, included or excluded, method, quality, t CO2e."""
    engine = _tenant_engine(ctx, slug)
    df = inventory.summary(engine, start, end)
    click.echo(df.to_csv() if fmt == "csv" else df.to_string(float_format=lambda v: f"{v:,.2f}"))
    if fmt == "table":
        from ..suppliers.coverage import coverage

        c = coverage(engine, start, end)
        click.echo("\n" + c.sentence())
        if len(c.largest_unclassified):
            click.echo("Largest unclassified vendors (`scope3 spend unclassified` suggests sectors):\n"
                       + c.largest_unclassified.to_string(index=False, float_format=lambda v: f"{v:,.2f}"))


@inventory_group.command("recalculate")
@click.argument("slug")
@click.argument("period")
@click.option("--source", required=True, help="Factor dataset source, e.g. epa-useeio.")
@click.option("--version", required=True, help="The dataset version to apply.")
@click.option("--threshold", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.05,
              show_default=True, help="Significance threshold, share of base-year emissions.")
@click.option("--apply", "do_apply", is_flag=True, help="Apply (otherwise only report).")
@click.option("--reason", default=None, help="Why (required with --apply; recorded with the report).")
@click.pass_context
def inventory_recalculate(ctx: click.Context, slug: str, period: str, source: str, version: str, threshold: float,
                          do_apply: bool, reason: str | None) -> None:
    """Report (and with --apply, make) the change a factor dataset version brings to PERIOD."""
    r = inventory.recalculate(_tenant_engine(ctx, slug), period, source, version, threshold=threshold,
                              apply=do_apply, reason=reason)
    click.echo(r.by_category.to_string(float_format=lambda v: f"{v:,.4f}"))
    click.echo(f"total change {r.total_change_kg:,.1f} kg CO2e against base year {r.base_period} "
               f"({r.base_kg_co2e:,.1f} kg): {'significant' if r.significant else 'below the threshold'}; "
               f"{r.entries_recalculated} entries recalculated, {len(r.entries_kept)} kept"
               + ("; applied" if r.applied else "; not applied (use --apply --reason ...)"))
