"""`scope3 scenarios`: a tenant's reduction scenarios, listed and run from a YAML file.

The commands act as the tenant's own database role (from its secrets file), so row-level security
limits them to the tenant's inventory and scenarios.
"""

from __future__ import annotations

import click
import pandas as pd
import sqlalchemy as sa

from .. import db, frames, scenarios, tenancy
from . import echo_json, main


def _tenant_engine(ctx: click.Context, slug: str) -> sa.Engine:
    creds = tenancy.tenant_credentials(ctx.obj.data_dir, slug)
    return db.create_engine(creds.database_url)


@main.group("scenarios")
def scenarios_group() -> None:
    """Reduction scenarios: levers, costs, cost curve and the target pathway."""


@scenarios_group.command("list")
@click.argument("slug")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def scenarios_list(ctx: click.Context, slug: str, as_json: bool) -> None:
    """List the scenarios stored for tenant SLUG."""
    df = scenarios.list_scenarios(_tenant_engine(ctx, slug))
    if as_json:
        echo_json(frames.rows(df))
    elif df.empty:
        click.echo(f"no scenarios stored for {slug} (run one with `scope3 scenarios run {slug} FILE.yaml --save`)")
    else:
        click.echo(df.to_string(index=False))


@scenarios_group.command("run")
@click.argument("slug")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--save", is_flag=True, help="Also store the scenario for the tenant under its name.")
@click.option("--replace", is_flag=True, help="With --save, replace a stored scenario of the same name.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary, levers and years as JSON.")
@click.pass_context
def scenarios_run(ctx: click.Context, slug: str, path: str, save: bool, replace: bool, as_json: bool) -> None:
    """Run the scenario in PATH (YAML) on tenant SLUG's base-year inventory and print the result table."""
    scenario = scenarios.from_yaml(path)
    engine = _tenant_engine(ctx, slug)
    result = scenarios.run(engine, scenario)
    if save:
        scenarios.save(engine, scenario, replace=replace)
    if as_json:
        echo_json({"summary": result.summary, "levers": frames.rows(result.levers),
                   "years": frames.rows(result.totals), "fingerprint": result.fingerprint})
        return
    s = result.summary
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        click.echo(f"scenario {s['name']!r} for {slug}: {s['base_year']} -> {s['target_year']}")
        click.echo(scenarios.result_table(result).to_string(index=False))
        click.echo("")
        click.echo(result.totals.round(1).to_string(index=False))
    click.echo(
        f"\nin {s['target_year']}: {s['scenario_target_t']:,.1f} t CO2e, "
        f"{_versus(s['reduction_vs_bau_pct'], 'business as usual')}, "
        f"{_versus(s['reduction_vs_base_pct'], str(s['base_year']))}; target pathway "
        f"{s['pathway_target_t']:,.1f} t ({'on track' if s['on_track'] else 'off track'})"
    )
    if save:
        click.echo(f"saved scenario {scenario.name!r} for {slug}")


def _versus(reduction_pct: float, what: str) -> str:
    """"12.3% below 2025" or "4.5% above 2025", never "-4.5% below"."""
    return f"{abs(reduction_pct):.1f}% {'below' if reduction_pct >= 0 else 'above'} {what}"
