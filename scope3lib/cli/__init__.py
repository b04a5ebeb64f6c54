"""The ``scope3`` command line: provisioning, ingest, simulator, demo.

Every command refuses bad input with a one-line message on stderr and exit code 1 (an error) or
2 (misuse), never a traceback.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import click
import sqlalchemy as sa

from .. import db
from ..config import Settings
from ..errors import Scope3Error


class _Group(click.Group):
    """Turns platform errors into one line and an exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except Scope3Error as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except sa.exc.OperationalError as exc:
            click.echo(f"error: database unavailable: {' '.join(str(exc.orig).split())}", err=True)
            ctx.exit(1)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception as exc:
            if logging.getLogger().isEnabledFor(logging.INFO):
                raise
            click.echo(f"error: unexpected {type(exc).__name__}: {exc} (run with -v for the traceback)", err=True)
            ctx.exit(1)


def echo_json(data: object) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


@click.group(cls=_Group)
@click.option("-v", "--verbose", is_flag=True, help="Log at INFO level (DEBUG with -vv).")
@click.pass_context
def main(ctx: click.Context, verbose: bool) -> None:
    """Scope 3 emissions platform: provisioning, meter ingest, demo."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    ctx.obj = Settings()


def admin_engine(ctx: click.Context, *, migrate: bool = False) -> sa.Engine:
    """The admin engine of the platform database, refused in one line when it is not this version's schema.

    ``migrate``: the command creates or migrates the schema itself (`db upgrade`, `demo`), so an empty
    database (and a new embedded server) is fine.
    """
    from .. import schema

    settings: Settings = ctx.find_object(Settings)  # type: ignore[assignment]
    engine = db.admin_engine(settings, create=migrate)
    if not migrate:
        schema.check_current(engine)
    return engine



# Each module adds its commands to `main`.
from . import (  # noqa: E402
    api,
    demo,
    engage,
    factors,
    hub,
    inventory,
    ledger,
    meters,
    ml,
    pact,
    provisioning,
    report,
    scenarios,
    suppliers,
)

__all__ = [
    "admin_engine", "api", "demo", "echo_json", "engage", "factors", "hub", "inventory", "ledger", "main", "meters",
    "ml", "pact", "provisioning", "report", "scenarios", "suppliers",
]
