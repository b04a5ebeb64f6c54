"""`scope3 demo`: the whole platform on embedded defaults, with two demo tenants and live meters."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time

import click
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from .. import db, schema, tenancy
from ..config import Settings
from ..hub import settings as hub_settings
from ..meters.broker import port_open
from ..meters.simulator import MeterSimulator
from ..reporting import runs as reports
from . import admin_engine as _engine
from . import main
from .hub import hub_env
from .meters import broker_for, simulated_meters, until_signal

DEMO_PASSWORD = "scope3-demo"


@main.command("demo")
@click.option("--duration", type=click.FloatRange(0), default=None,
              help="Stop after this many seconds (default: run until Ctrl-C).")
@click.option("--rate", type=click.FloatRange(0.1, 10_000), default=4.0, show_default=True,
              help="Meter messages per second per demo tenant.")
@click.option("--hubs/--no-hubs", default=True, show_default=True,
              help="Start each demo tenant's JupyterHub with its dashboard and report scheduler.")
@click.pass_context
def demo(ctx: click.Context, duration: float | None, rate: float, hubs: bool) -> None:
    """Run the whole platform on embedded defaults with two demo tenants and live meters."""
    settings: Settings = ctx.obj
    click.echo("starting PostgreSQL" + ("" if settings.database_url else " (embedded, pgserver)") + " ...")
    engine = _engine(ctx, migrate=True)
    schema.upgrade(engine)
    _provision_demo_tenants(engine, settings)
    run = _DemoRun(settings, engine, rate, hubs)
    until_signal(run.start, run.stop, duration=duration, tick=run.tick)


def _provision_demo_tenants(engine: sa.Engine, settings: Settings) -> None:
    """Create each demo tenant not yet in the database, with its generated data and two users."""
    from .. import demo as demo_data
    from ..demo.showcase import showcase

    existing = {str(t["slug"]) for t in tenancy.list_tenants(engine)}
    for profile in demo_data.DEMO_TENANTS:
        if profile.slug in existing:
            continue
        tenancy.create_tenant(engine, settings.data_dir, profile.slug, profile.name, profile.plan)
        demo_data.load(engine, profile.slug, demo_data.generate(profile))
        hub_settings.ensure(engine, settings.data_dir, profile.slug)
        tenancy.add_user(engine, profile.slug, f"{profile.slug}-analyst", "member", DEMO_PASSWORD)
        tenancy.add_user(engine, profile.slug, f"{profile.slug}-exec", "viewer", DEMO_PASSWORD)
        shown = showcase(engine, settings.data_dir, profile.slug)
        click.echo(f"provisioned demo tenant {profile.slug}: {profile.suppliers} suppliers, {profile.devices} meters, "
                   f"scenario {shown.scenario}, checkpoint signed at tree size {shown.checkpoint_size}; "
                   f"{shown.estimates}")


class _DemoRun:
    """The demo's moving parts (broker, ingest, simulated meters, hubs), started and stopped together."""

    def __init__(self, settings: Settings, engine: sa.Engine, rate: float, hubs: bool) -> None:
        from ingest_service import IngestService

        from .. import demo as demo_data

        self.settings, self.engine, self.rate, self.hubs = settings, engine, rate, hubs
        self.tenants = demo_data.DEMO_TENANTS
        self.params, self.embedded = broker_for(settings)
        self.service = IngestService(tenancy.ingest_database_url(engine, settings.data_dir), self.params,
                                     client_id="scope3-demo-ingest", batch_ms=settings.ingest_batch_ms,
                                     writers=settings.ingest_writers, queue_messages=settings.ingest_queue_messages)
        self.hub_procs: list[subprocess.Popen[bytes]] = []
        self.sims = [MeterSimulator(self.params, simulated_meters(engine, p.slug, p.devices, "CAMX",
                                                                    faults=dict(p.faults)), rate)
                     for p in self.tenants]
        self.workers = [threading.Thread(target=s.run, daemon=True) for s in self.sims]
        self.last_tick = 0.0

    def start(self) -> None:
        self.service.start()
        self.service.wait_connected(15)
        for w in self.workers:
            w.start()
        if self.hubs:
            for p in self.tenants:
                self.hub_procs.append(_start_hub(self.settings, p.slug))
            for p in self.tenants:
                _run_monthly_report(self.settings, p.slug)
        self._print_running()

    def _print_running(self) -> None:
        settings, params = self.settings, self.params
        click.echo("\nrunning:")
        click.echo(f"  PostgreSQL  {make_url(db.admin_url(settings)).render_as_string()}")
        click.echo(f"  MQTT broker {params.host}:{params.port} ({'embedded amqtt' if self.embedded else 'external'})")
        click.echo("  ingest      scope3/+/+/readings -> readings table")
        click.echo(f"  meters      {sum(len(s.meters) for s in self.sims)} simulated, {self.rate:g} msg/s per tenant")
        for p in self.tenants:
            creds = tenancy.tenant_credentials(settings.data_dir, p.slug)
            click.echo(f"  tenant {p.slug:<7} database_url={creds.database_url}")
            click.echo(f"                 users: {p.slug}-analyst (member), {p.slug}-exec (viewer), "
                       f"password {DEMO_PASSWORD}")
            if self.hubs:
                hub = hub_settings.load(settings.data_dir, p.slug).hub
                click.echo(f"                 hub: http://{hub.bind_ip}:{hub.port}/  (analyst: JupyterLab; "
                           f"executive: the dashboard)")
                if hub.api:
                    click.echo(f"                 API: http://{hub.bind_ip}:{hub.port}/services/api/docs  (a hub "
                               f"token, or a key from `scope3 apikey create {p.slug} NAME --scope read`)")
        click.echo("\nIn another shell, `scope3` commands reach this platform with:")
        click.echo(f"  export SCOPE3_DATA_DIR={settings.data_dir.resolve()}"
                   + ("" if not settings.database_url else " SCOPE3_DATABASE_URL=<as above>")
                   + (f" SCOPE3_MQTT_URL='{params.url()}'" if self.embedded else " SCOPE3_MQTT_URL=<as configured>"))
        click.echo("Ctrl-C stops everything.\n")

    def tick(self) -> None:
        """Print the readings counted per tenant, at most every 10 seconds."""
        if time.monotonic() - self.last_tick < 10:
            return
        self.last_tick = time.monotonic()
        with self.engine.connect() as conn:
            counts = conn.execute(sa.text(
                "SELECT t.slug, count(r.ts) AS n, max(r.ts) AS latest FROM tenants t "
                "LEFT JOIN readings r ON r.tenant_id = t.id GROUP BY t.slug ORDER BY t.slug")).all()
        click.echo("readings: " + ", ".join(f"{c.slug}={c.n}" for c in counts)
                   + f" | rejects={self.service.stats.rejects.total()}")

    def stop(self) -> None:
        click.echo("stopping ...")
        for proc in self.hub_procs:  # the hub stops its servers and services itself
            proc.send_signal(signal.SIGTERM)
        for proc in self.hub_procs:
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
        for s in self.sims:
            s.stop()
        for w in self.workers:
            w.join(timeout=40)
        self.service.stop()
        if self.embedded:
            self.embedded.stop()
        self.last_tick = 0.0
        self.tick()


def _start_hub(settings: Settings, slug: str) -> subprocess.Popen[bytes]:
    """``scope3 hub start SLUG`` in the background, its log in the tenant's directory."""
    log = hub_settings.tenant_dir(settings.data_dir, slug) / "hub.log"
    env = hub_env(settings, slug)
    proc = subprocess.Popen([sys.executable, "-m", "scope3lib", "hub", "start", slug], env=env,
                            stdout=log.open("ab"), stderr=subprocess.STDOUT)
    port = hub_settings.load(settings.data_dir, slug).hub.port
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if port_open("127.0.0.1", port):
            break
        time.sleep(0.5)
    if proc.poll() is not None:
        click.echo(f"  hub of {slug} did not start: see {log}", err=True)
    return proc


def _run_monthly_report(settings: Settings, slug: str) -> None:
    creds = tenancy.tenant_credentials(settings.data_dir, slug)
    spec = reports.get_spec("monthly")
    result = reports.run_report(db.connect(creds.database_url), creds.database_url, slug, "monthly", spec)
    where = result.output_html or result.error
    click.echo(f"  monthly report for {slug}: {result.status} -> {where}")
