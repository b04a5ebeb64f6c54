"""`scope3 factors`: import official factor files, list datasets and factors; `scope3 calc`."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

import click

from ..config import Settings
from ..factors import lookup, sources, store
from . import admin_engine as _engine
from . import main

if TYPE_CHECKING:
    import pandas as pd


class _SourceChoice(click.Choice):
    """The names of registered factor sources, read from the registry when first needed (loading every source
    module at import time would slow every `scope3` command)."""

    def __init__(self, names: Callable[[], list[str]]) -> None:
        self._names = names
        super().__init__([], case_sensitive=False)

    @property  # type: ignore[override]
    def choices(self) -> list[str]:
        return self._names()

    @choices.setter
    def choices(self, value: object) -> None:  # click.Choice.__init__ assigns it; the registry is the truth
        pass


@main.group("factors")
def factors_group() -> None:
    """Versioned emission-factor datasets (public reference data)."""


@factors_group.command("import")
@click.argument("kind", type=_SourceChoice(sources.importable))
@click.argument("path", type=click.Path(dir_okay=False))
@click.pass_context
def factors_import(ctx: click.Context, kind: str, path: str) -> None:
    """Import an official factor file as published (KIND: a source with an importer, e.g. epa-useeio, desnz/defra).

    Importing the same file again changes nothing; a new release is stored as a new version.
    """
    engine = _engine(ctx)
    store.ensure_builtin(engine)
    click.echo(store.import_file(engine, kind, path).message())


@factors_group.command("datasets")
@click.pass_context
def factors_datasets(ctx: click.Context) -> None:
    """List stored datasets with their version, licence and number of factors."""
    engine = _engine(ctx)
    store.ensure_builtin(engine)
    df = store.datasets(engine)
    for r in df.itertuples():
        kind = "built-in subset" if r.builtin else f"sha256 {str(r.sha256)[:12]}"
        click.echo(f"{r.source:<12} {r.version:<11} {r.factors:>6} factors  {r.licence}  ({kind})")
        click.echo(f"{'':<12} {r.citation}")


@factors_group.command("list")
@click.option("--source", required=True, help="Dataset source, as `scope3 factors datasets` lists them.")
@click.option("--version", default=None, help="Dataset version (default: the latest imported).")
@click.option("--format", "fmt", type=click.Choice(["csv", "table"]), default="table", show_default=True)
@click.pass_context
def factors_list(ctx: click.Context, source: str, version: str | None, fmt: str) -> None:
    """Print every factor of a dataset: factor_key, description, unit, region, year, kg_co2e_per_unit."""
    engine = _engine(ctx)
    store.ensure_builtin(engine)
    df = store.list_factors(engine, source, version)[
        ["factor_key", "description", "unit", "region", "year", "kg_co2e_per_unit"]
    ]
    if fmt == "csv":
        df.to_csv(sys.stdout, index=False)
    else:
        click.echo(df.to_string(index=False, max_colwidth=70))


def _factor_table(ctx: click.Context) -> pd.DataFrame:
    """The platform's factors; without a platform database, the built-in set (the lookup's rule)."""
    settings: Settings = ctx.obj
    if not settings.database_url and not (settings.data_dir / "postgres").is_dir():
        click.echo(f"no platform database in {settings.data_dir}: calculating with the built-in factor set", err=True)
        return lookup.factor_table(None)
    engine = _engine(ctx)
    store.ensure_builtin(engine)
    return lookup.factor_table(engine)


@main.command("calc")
@click.argument("input_path", metavar="INPUT", type=click.Path(dir_okay=False))
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False),
              help="Where to write the rows with kg_co2e, the factor used, data quality and error (CSV).")
@click.pass_context
def calc(ctx: click.Context, input_path: str, out_path: str) -> None:
    """Calculate an activity file (CSV or .xlsx); refused rows keep their reason in the `error` column.

    Exit code 1 when any row was refused (the output is written either way).
    """
    from ..accounting.calculation import calculate, read_activity_file

    rows = read_activity_file(input_path)
    out = calculate(rows, _factor_table(ctx))
    out.to_csv(out_path, index=False)
    refused = int((out["error"] != "").sum())
    done = len(out) - refused
    click.echo(f"{done:,} row{'' if done == 1 else 's'} calculated, {refused:,} refused, "
               f"{out['kg_co2e'].sum():,.1f} kg CO2e; written to {out_path}")
    if refused:
        for line, reason in zip(out.index[out["error"] != ""], out.loc[out["error"] != "", "error"], strict=True):
            click.echo(f"  line {int(line) + 2}: {reason}", err=True)
        ctx.exit(1)
