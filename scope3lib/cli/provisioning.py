"""Provisioning commands: database, tenants, users, devices."""

from __future__ import annotations

import sys

import click

from .. import db, schema, tenancy
from ..config import Settings
from ..hub import settings as hub_settings
from ..meters import devices
from ..meters.broker import MosquittoFiles
from . import admin_engine as _engine
from . import echo_json as _echo_json
from . import main

# --- db ----------------------------------------------------------------------------------------


@main.group("db")
def db_group() -> None:
    """The platform database."""


@db_group.command("upgrade")
@click.pass_context
def db_upgrade(ctx: click.Context) -> None:
    """Migrate the database to the latest schema (safe to re-run)."""
    engine = _engine(ctx, migrate=True)
    schema.upgrade(engine)
    click.echo(f"database at revision {schema.current_revision(engine)}")


@db_group.command("url")
@click.pass_context
def db_url(ctx: click.Context) -> None:
    """Print the admin database URL (starts the embedded server if none is configured)."""
    click.echo(db.admin_url(ctx.find_object(Settings)))


# --- tenants -----------------------------------------------------------------------------------


@main.group("tenant")
def tenant_group() -> None:
    """Tenants and their database roles."""


@tenant_group.command("create")
@click.argument("slug")
@click.option("--name", required=True, help="Display name of the tenant.")
@click.option("--plan", default="free", show_default=True,
              help="free, starter, professional or enterprise (limits users and devices).")
@click.option("--json", "as_json", is_flag=True, help="Print the credentials as JSON.")
@click.pass_context
def tenant_create(ctx: click.Context, slug: str, name: str, plan: str, as_json: bool) -> None:
    """Create tenant SLUG with its read-write and read-only database roles."""
    settings: Settings = ctx.obj
    engine = _engine(ctx)
    creds = tenancy.create_tenant(engine, settings.data_dir, slug, name, plan)
    hub_settings.ensure(engine, settings.data_dir, slug)
    if as_json:
        _echo_json(creds.to_dict())
    else:
        click.echo(f"created tenant {slug} ({creds.plan}); credentials in "
                   f"{tenancy.tenant_dir(settings.data_dir, slug) / 'secrets.json'}")


@tenant_group.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def tenant_list(ctx: click.Context, as_json: bool) -> None:
    """List tenants with their plan and counts."""
    rows = tenancy.list_tenants(_engine(ctx))
    if as_json:
        _echo_json(rows)
        return
    for r in rows:
        click.echo(f"{r['slug']:<20} {r['plan']:<13} users={r['users']} devices={r['devices']} "
                   f"suppliers={r['suppliers']}  {r['name']}")


@tenant_group.command("credentials")
@click.argument("slug")
@click.pass_context
def tenant_credentials(ctx: click.Context, slug: str) -> None:
    """Print the tenant's database URLs (from its secrets file) as JSON."""
    _echo_json(tenancy.tenant_credentials(ctx.obj.data_dir, slug).to_dict())


@tenant_group.command("rotate")
@click.argument("slug")
@click.pass_context
def tenant_rotate(ctx: click.Context, slug: str) -> None:
    """Give the tenant's database roles new passwords; prints the new credentials as JSON."""
    _echo_json(tenancy.rotate_credentials(_engine(ctx), ctx.obj.data_dir, slug).to_dict())


@tenant_group.command("set-plan")
@click.argument("slug")
@click.argument("plan")
@click.pass_context
def tenant_set_plan(ctx: click.Context, slug: str, plan: str) -> None:
    """Change the tenant's plan."""
    tenancy.set_plan(_engine(ctx), slug, plan)
    click.echo(f"tenant {slug} is now on the {plan} plan")


# --- users -------------------------------------------------------------------------------------


@main.group("user")
def user_group() -> None:
    """Users and their role in a tenant."""


@user_group.command("add")
@click.argument("slug")
@click.argument("username")
@click.option("--role", required=True, help="owner, admin, member (analyst) or viewer (dashboards only).")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.pass_context
def user_add(ctx: click.Context, slug: str, username: str, role: str, password_stdin: bool) -> None:
    """Add USERNAME to tenant SLUG with ROLE."""
    if not password_stdin:
        raise click.UsageError("give the password on standard input with --password-stdin")
    password = sys.stdin.readline().rstrip("\r\n")
    tenancy.add_user(_engine(ctx), slug, username, role, password)
    click.echo(f"user {username} is {role} of tenant {slug}")


# --- devices -----------------------------------------------------------------------------------


@main.group("device")
def device_group() -> None:
    """Smart meters and their MQTT credentials."""


@device_group.command("add")
@click.argument("slug")
@click.argument("device_id")
@click.option("--region", required=True, help="Grid region: an eGRID subregion (CAMX) or a country (GB).")
@click.option("--supplier", default=None, help="Name of the supplier whose site the meter is at.")
@click.option("--category", type=click.IntRange(1, 15), default=1, show_default=True,
              help="GHG Protocol Scope 3 category the meter's energy is reported under.")
@click.option("--interval", type=click.IntRange(1), default=60, show_default=True,
              help="Expected seconds between readings (for online/silent status).")
@click.option("--json", "as_json", is_flag=True, help="Print topic and credentials as JSON.")
@click.pass_context
def device_add(ctx: click.Context, slug: str, device_id: str, region: str, supplier: str | None,
               category: int, interval: int, as_json: bool) -> None:
    """Register meter DEVICE_ID in tenant SLUG and issue its MQTT credentials."""
    creds = devices.add_device(_engine(ctx), slug, device_id, region, supplier=supplier, category=category,
                               expected_interval_s=interval, broker=MosquittoFiles.from_settings(ctx.obj))
    _echo_device_credentials(creds, as_json)


def _echo_device_credentials(creds: devices.DeviceCredentials, as_json: bool) -> None:
    if as_json:
        _echo_json(creds.to_dict())
    else:
        click.echo(f"topic: {creds.topic}\nusername: {creds.mqtt_username}\npassword: {creds.mqtt_password}")


@device_group.command("list")
@click.argument("slug")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def device_list(ctx: click.Context, slug: str, as_json: bool) -> None:
    """List a tenant's meters."""
    rows = devices.list_devices(_engine(ctx), slug)
    if as_json:
        _echo_json(rows)
        return
    for r in rows:
        click.echo(f"{r['device']:<20} {r['grid_region']:<6} cat={r['category']} readings={r['readings']} "
                   f"last_seen={r['last_seen']} supplier={r['supplier']}")


@device_group.command("rotate")
@click.argument("slug")
@click.argument("device_id")
@click.option("--json", "as_json", is_flag=True, help="Print topic and credentials as JSON.")
@click.pass_context
def device_rotate(ctx: click.Context, slug: str, device_id: str, as_json: bool) -> None:
    """Issue DEVICE_ID a new MQTT password; the old one stops working at once (broker reloaded)."""
    creds = devices.issue_credentials(_engine(ctx), slug, device_id, broker=MosquittoFiles.from_settings(ctx.obj))
    _echo_device_credentials(creds, as_json)


@device_group.command("remove")
@click.argument("slug")
@click.argument("device_id")
@click.pass_context
def device_remove(ctx: click.Context, slug: str, device_id: str) -> None:
    """Revoke a meter at once (broker reloaded) and delete it with its readings.

    A meter whose readings are in the emission inventory is kept, revoked, so the inventory stays
    reproducible.
    """
    broker = MosquittoFiles.from_settings(ctx.obj)
    deleted = devices.remove_device(_engine(ctx), slug, device_id, broker=broker)
    if deleted:
        click.echo(f"removed device {device_id} from tenant {slug}")
    else:
        click.echo(f"revoked device {device_id} of tenant {slug}; kept with its readings because emission "
                   "entries refer to it")
    if broker is None:
        click.echo("warning: no Mosquitto configuration (SCOPE3_MOSQUITTO_CONF): reload your broker's accounts "
                   "yourself", err=True)



@main.command("settings")
@click.option("--markdown", is_flag=True,
              help="Print the configuration reference (docs/configuration.md) instead: every variable and hub.yaml "
                   "key with its default and help text, from the settings classes.")
@click.pass_context
def show_settings(ctx: click.Context, markdown: bool) -> None:
    """Print every setting: its environment variable, current value (secrets hidden) and what it does."""
    if markdown:
        from ..config_reference import markdown as reference

        click.echo(reference(), nl=False)
        return
    settings: Settings = ctx.obj
    for name, field in Settings.model_fields.items():
        value = getattr(settings, name)
        if value is not None and ("url" in name):
            value = db.redact_url(str(value))
        click.echo(f"SCOPE3_{name.upper()}={'' if value is None else value}\n    {field.description}\n")
