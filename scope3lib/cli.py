"""The ``scope3`` command line: provisioning, ingest, simulator, demo.

Every command refuses bad input with a one-line message on stderr and exit code 1 (an error) or
2 (misuse), never a traceback.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import click
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from . import db, devices, schema, tenancy
from .broker import EmbeddedBroker, MqttParams, free_port, parse_mqtt_url, port_open
from .config import Settings
from .errors import Scope3Error
from .meters import MeterSimulator, SimulatedMeter, make_meters


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


def _echo_json(data: object) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


@click.group(cls=_Group)
@click.option("-v", "--verbose", is_flag=True, help="Log at INFO level (DEBUG with -vv).")
@click.pass_context
def main(ctx: click.Context, verbose: bool) -> None:
    """Scope 3 emissions platform: provisioning, meter ingest, demo."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    ctx.obj = Settings()


def _engine(ctx: click.Context) -> sa.Engine:
    settings: Settings = ctx.find_object(Settings)  # type: ignore[assignment]
    return db.admin_engine(settings)


# --- db ----------------------------------------------------------------------------------------


@main.group("db")
def db_group() -> None:
    """The platform database."""


@db_group.command("upgrade")
@click.pass_context
def db_upgrade(ctx: click.Context) -> None:
    """Migrate the database to the latest schema (safe to re-run)."""
    engine = _engine(ctx)
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
    creds = tenancy.create_tenant(_engine(ctx), settings.data_dir, slug, name, plan)
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
                               expected_interval_s=interval)
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


@device_group.command("remove")
@click.argument("slug")
@click.argument("device_id")
@click.pass_context
def device_remove(ctx: click.Context, slug: str, device_id: str) -> None:
    """Delete a meter and its readings."""
    devices.remove_device(_engine(ctx), slug, device_id)
    click.echo(f"removed device {device_id} from tenant {slug}")


# --- services ----------------------------------------------------------------------------------


def _broker(settings: Settings) -> tuple[MqttParams, EmbeddedBroker | None]:
    """The configured broker, or an embedded amqtt broker (on 1883 when free)."""
    if settings.mqtt_url:
        return parse_mqtt_url(settings.mqtt_url), None
    port = 1883 if not port_open("127.0.0.1", 1883) else free_port()
    embedded = EmbeddedBroker(port=port).start()
    return embedded.params, embedded


@main.command("ingest")
@click.pass_context
def ingest(ctx: click.Context) -> None:
    """Run the ingest service: MQTT readings -> PostgreSQL, until interrupted (SIGINT/SIGTERM)."""
    from ingest_service import IngestService

    settings: Settings = ctx.obj
    url = settings.ingest_database_url or tenancy.ingest_database_url(_engine(ctx), settings.data_dir)
    params, embedded = _broker(settings)
    if embedded:
        click.echo(f"no SCOPE3_MQTT_URL: started an embedded broker on {params.host}:{params.port}", err=True)
    service = IngestService(url, params, client_id=settings.ingest_client_id,
                            shared_group=settings.ingest_shared_group, batch_size=settings.ingest_batch_size,
                            batch_ms=settings.ingest_batch_ms, max_payload_bytes=settings.max_payload_bytes)
    _until_signal(service.start, service.stop)
    if embedded:
        embedded.stop()


def _until_signal(start: Callable[[], object], stop: Callable[[], None], duration: float | None = None,
                  tick: Callable[[], None] | None = None) -> None:
    """Run ``start``, wait for SIGINT/SIGTERM (or ``duration`` seconds), then ``stop``."""
    stopping = threading.Event()

    def _handler(signum: int, frame: object) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, _handler)
    signal.signal(signal.SIGTERM, _handler)
    start()
    started = time.monotonic()
    try:
        while not stopping.wait(1):
            if duration is not None and time.monotonic() - started >= duration:
                break
            if tick is not None:
                tick()
    finally:
        stop()


@main.group("meters")
def meters_group() -> None:
    """Simulated smart meters."""


def _simulated_meters(engine: sa.Engine, slug: str, count: int, region: str) -> list[SimulatedMeter]:
    """The tenant's first ``count`` devices (adding sim-NNN ones if it has fewer), with fresh credentials.

    The simulator re-issues the credentials of every device it drives: never point it at real meters.
    """
    existing = [(str(d["device"]), str(d["grid_region"])) for d in devices.list_devices(engine, slug)][:count]
    for i in range(len(existing), count):
        key = f"sim-{i + 1:03d}"
        devices.add_device(engine, slug, key, region)
        existing.append((key, region))
    creds = {}
    for key, _ in existing:
        c = devices.issue_credentials(engine, slug, key)
        creds[key] = (c.mqtt_username, c.mqtt_password)
    return make_meters(slug, existing, credentials=creds)


@meters_group.command("simulate")
@click.option("--tenant", "slug", required=True, help="Tenant whose devices are simulated.")
@click.option("--devices", "count", type=click.IntRange(1, 100_000), default=10, show_default=True,
              help="Number of meters (the tenant's devices; sim-NNN ones are added if it has fewer).")
@click.option("--rate", type=click.FloatRange(0.01, 100_000), default=10.0, show_default=True,
              help="Messages per second, all meters together.")
@click.option("--region", default="CAMX", show_default=True, help="Grid region of added sim devices.")
@click.option("--duration", type=click.FloatRange(0), default=None, help="Stop after this many seconds.")
@click.pass_context
def meters_simulate(ctx: click.Context, slug: str, count: int, rate: float, region: str,
                    duration: float | None) -> None:
    """Publish realistic readings (daily and weekly load shapes, noise) for a tenant's meters."""
    settings: Settings = ctx.obj
    if not settings.mqtt_url:
        raise click.UsageError("set SCOPE3_MQTT_URL to the broker the ingest service listens to")
    meters = _simulated_meters(_engine(ctx), slug, count, region)
    sim = MeterSimulator(parse_mqtt_url(settings.mqtt_url), meters, rate)
    worker = threading.Thread(target=sim.run, kwargs={"duration": duration}, daemon=True)
    def stop() -> None:
        sim.stop()
        worker.join()

    _until_signal(worker.start, stop, duration=duration)
    click.echo(f"published {sim.published} readings for {len(meters)} meters of {slug}")


DEMO_PASSWORD = "scope3-demo"


@main.command("demo")
@click.option("--duration", type=click.FloatRange(0), default=None,
              help="Stop after this many seconds (default: run until Ctrl-C).")
@click.option("--rate", type=click.FloatRange(0.1, 10_000), default=4.0, show_default=True,
              help="Meter messages per second per demo tenant.")
@click.pass_context
def demo(ctx: click.Context, duration: float | None, rate: float) -> None:
    """Run the whole platform on embedded defaults with two demo tenants and live meters."""
    from ingest_service import IngestService

    from . import demo as demo_data

    settings: Settings = ctx.obj
    click.echo("starting PostgreSQL" + ("" if settings.database_url else " (embedded, pgserver)") + " ...")
    engine = _engine(ctx)
    schema.upgrade(engine)
    existing = {str(t["slug"]) for t in tenancy.list_tenants(engine)}
    for profile in demo_data.DEMO_TENANTS:
        if profile.slug in existing:
            continue
        tenancy.create_tenant(engine, settings.data_dir, profile.slug, profile.name, profile.plan)
        demo_data.load(engine, profile.slug, demo_data.generate(profile))
        tenancy.add_user(engine, profile.slug, f"{profile.slug}-analyst", "member", DEMO_PASSWORD)
        tenancy.add_user(engine, profile.slug, f"{profile.slug}-exec", "viewer", DEMO_PASSWORD)
        click.echo(f"provisioned demo tenant {profile.slug} ({profile.suppliers} suppliers, "
                   f"{profile.devices} meters)")
    params, embedded = _broker(settings)
    service = IngestService(tenancy.ingest_database_url(engine, settings.data_dir), params,
                            client_id="scope3-demo-ingest", batch_ms=settings.ingest_batch_ms)
    sims = [MeterSimulator(params, _simulated_meters(engine, p.slug, p.devices, "CAMX"), rate)
            for p in demo_data.DEMO_TENANTS]
    workers = [threading.Thread(target=s.run, daemon=True) for s in sims]

    def start() -> None:
        service.start()
        service.wait_connected(15)
        for w in workers:
            w.start()
        click.echo("\nrunning:")
        click.echo(f"  PostgreSQL  {make_url(db.admin_url(settings)).render_as_string()}")
        click.echo(f"  MQTT broker {params.host}:{params.port} ({'embedded amqtt' if embedded else 'external'})")
        click.echo("  ingest      scope3/+/+/readings -> readings table")
        click.echo(f"  meters      {sum(len(s.meters) for s in sims)} simulated, {rate:g} msg/s per tenant")
        for p in demo_data.DEMO_TENANTS:
            creds = tenancy.tenant_credentials(settings.data_dir, p.slug)
            click.echo(f"  tenant {p.slug:<7} database_url={creds.database_url}")
            click.echo(f"                 users: {p.slug}-analyst (member), {p.slug}-exec (viewer), "
                       f"password {DEMO_PASSWORD}")
        click.echo("Ctrl-C stops everything.\n")

    last = [0.0]

    def tick() -> None:
        if time.monotonic() - last[0] < 10:
            return
        last[0] = time.monotonic()
        with engine.connect() as conn:
            counts = conn.execute(sa.text(
                "SELECT t.slug, count(r.ts) AS n, max(r.ts) AS latest FROM tenants t "
                "LEFT JOIN readings r ON r.tenant_id = t.id GROUP BY t.slug ORDER BY t.slug")).all()
        click.echo("readings: " + ", ".join(f"{c.slug}={c.n}" for c in counts)
                   + f" | rejects={service.stats.rejects.total()}")

    def stop() -> None:
        click.echo("stopping ...")
        for s in sims:
            s.stop()
        for w in workers:
            w.join(timeout=40)
        service.stop()
        if embedded:
            embedded.stop()
        last[0] = 0.0
        tick()

    _until_signal(start, stop, duration=duration, tick=tick)
