"""`scope3 hub`: run and inspect a tenant's JupyterHub."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from .. import db, paths
from ..config import Settings
from ..hub import settings as hub_settings
from ..hub.spawner import ensure_system_user, system_username
from ..reporting import runs as reports
from . import main


@main.group("hub")
def hub_group() -> None:
    """A tenant's JupyterHub (JupyterLab for analysts, the Voila dashboard for executives)."""


def load_settings(settings: Settings, slug: str) -> hub_settings.HubSettings:
    """The tenant hub's settings; its hub file is written with the defaults first if the tenant has none
    (the only case that needs the database)."""
    d = hub_settings.tenant_dir(settings.data_dir, slug)
    if not (d / hub_settings.HUB_FILE).exists() or not (d / hub_settings.HUB_SECRETS_FILE).exists():
        hub_settings.ensure(db.admin_engine(settings), settings.data_dir, slug)
    return hub_settings.load(settings.data_dir, slug)


def prepare(settings: Settings, slug: str, *, grant_access: bool = False) -> hub_settings.HubSettings:
    """Validate the tenant's hub settings and check the machine before anyone's code runs on it.

    With the local spawner (servers as the tenant's system users) it refuses, with what to do, an
    installation those users cannot reach and a database that lets them in without a password, and closes
    the tenant's files to every other tenant's users (:mod:`scope3lib.hub.machine`).
    """
    from ..hub import config as hub_config  # jupyter_server: seconds to import, so only when needed
    from ..hub import machine
    from ..ml.registry import registry_dir

    s = load_settings(settings, slug)
    machine.proxy_command()  # refuses in one line, before anything else, when the proxy is missing
    s.state_dir.mkdir(parents=True, exist_ok=True)
    if hub_config.spawner_mode(s) != "local":
        return s
    services = {name: ensure_system_user(system_username(slug, name)) for name in ("dashboard", "reports")}
    machine.check_installation_reachable(services["dashboard"], grant=grant_access)
    machine.check_database_requires_passwords(s, db.admin_url(settings), services["dashboard"])
    machine.close_tenant_files(s, services["reports"], settings.data_dir, registry_dir(settings.data_dir, slug),
                               reports.output_dir(settings.data_dir, slug))
    return s


def hub_command(slug: str) -> list[str]:
    return [str(Path(sys.prefix) / "bin" / "jupyterhub"), "-f", str(paths.hub_config_file())]


def hub_env(settings: Settings, slug: str) -> dict[str, str]:
    env = dict(os.environ)
    env["SCOPE3_HUB_TENANT"] = slug
    env["SCOPE3_DATA_DIR"] = str(settings.data_dir)
    if settings.database_url is None:
        # Every process of this hub uses the same embedded server.
        env["SCOPE3_DATABASE_URL"] = db.admin_url(settings)
    return env


@hub_group.command("start")
@click.argument("slug")
@click.option("--grant-access", is_flag=True,
              help="Add execute permission for others on the directories above this installation that the tenant's "
                   "system users cannot pass (they are named first); without it the hub refuses to start.")
@click.pass_context
def hub_start(ctx: click.Context, slug: str, grant_access: bool) -> None:
    """Run tenant SLUG's hub in the foreground (Ctrl-C stops it and its servers)."""
    from ..hub import config as hub_config

    settings: Settings = ctx.obj
    s = prepare(settings, slug, grant_access=grant_access)
    click.echo(f"tenant {slug}: hub on http://{s.hub.bind_ip}:{s.hub.port}{s.hub.base_url} "
               f"(spawner: {hub_config.spawner_mode(s)})", err=True)
    env = hub_env(settings, slug)
    os.chdir(s.state_dir)
    os.execve(hub_command(slug)[0], hub_command(slug), env)


@hub_group.command("settings")
@click.argument("slug")
@click.pass_context
def hub_show(ctx: click.Context, slug: str) -> None:
    """Print the tenant hub's settings after layering (secrets hidden)."""
    from ..hub import config as hub_config

    s = load_settings(ctx.obj, slug)
    out = s.model_dump(mode="json")
    out["secrets"] = {k: "***" for k in out["secrets"]}
    out["database_url"] = db.redact_url(s.database_url)
    out["database_url_readonly"] = db.redact_url(s.database_url_readonly)
    out["spawner_mode"] = hub_config.spawner_mode(s)
    click.echo(json.dumps(out, indent=2))
