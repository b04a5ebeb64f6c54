"""`scope3 hub`: run and inspect a tenant's JupyterHub."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from .. import db
from ..config import Settings
from ..hub import settings as hub_settings
from ..hub.spawner import ensure_system_user, ensure_traversable, system_username
from ..reporting import runs as reports
from . import main

HUB_CONFIG_FILE = Path(__file__).resolve().parents[2] / "hub_config" / "jupyterhub_config.py"


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


def prepare(settings: Settings, slug: str) -> hub_settings.HubSettings:
    """Validate the tenant's hub settings and get the machine ready to run its hub."""
    from ..hub import config as hub_config  # jupyter_server: seconds to import, so only when needed
    from ..ml.registry import registry_dir

    s = load_settings(settings, slug)
    s.state_dir.mkdir(parents=True, exist_ok=True)
    if hub_config.spawner_mode(s) == "local":
        # Servers and services run as tenant system users: they must reach this installation.
        # (sys.base_prefix: a virtual environment's interpreter and standard library live there.)
        for path in {Path(sys.prefix), Path(sys.base_prefix), hub_config.REPO}:
            ensure_traversable(path)
        for service in ("dashboard", "reports"):
            ensure_system_user(system_username(slug, service))
        # The scheduler service writes the tenant's report outputs as its own system user.
        reports_user = ensure_system_user(system_username(slug, "reports"))
        out = reports.DEFAULT_OUTPUT / slug
        out.mkdir(parents=True, exist_ok=True)
        os.chown(out, reports_user.pw_uid, reports_user.pw_gid)
        # ...and trains and reads the tenant's models (the nightly estimates report): the models are
        # its own (0700); the directories above it may be passed through but not listed, and the
        # hub's state (its database) is the hub's alone.
        models = registry_dir(settings.data_dir, slug)
        models.mkdir(parents=True, exist_ok=True)
        ensure_traversable(models.parent)
        models.parent.chmod(0o711)
        s.state_dir.chmod(0o700)
        for path in (models, *models.iterdir()):
            os.chown(path, reports_user.pw_uid, reports_user.pw_gid)
        models.chmod(0o700)
    return s


def hub_command(slug: str) -> list[str]:
    return [str(Path(sys.prefix) / "bin" / "jupyterhub"), "-f", str(HUB_CONFIG_FILE)]


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
@click.pass_context
def hub_start(ctx: click.Context, slug: str) -> None:
    """Run tenant SLUG's hub in the foreground (Ctrl-C stops it and its servers)."""
    from ..hub import config as hub_config

    settings: Settings = ctx.obj
    s = prepare(settings, slug)
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
