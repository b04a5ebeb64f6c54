"""Meter commands: the ingest service, the broker's configuration, the meter simulator, the daily
emissions rollup and device status."""

from __future__ import annotations

import datetime as dt
import logging
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import click
import sqlalchemy as sa

from .. import tenancy
from ..config import Settings
from ..errors import ConfigurationError
from ..meters import devices, rollup, status
from ..meters.broker import (
    DEFAULT_MAX_INFLIGHT,
    DEFAULT_MAX_QUEUED_BYTES,
    EmbeddedBroker,
    MosquittoFiles,
    MqttParams,
    free_port,
    parse_mqtt_url,
    port_open,
    write_broker_config,
)
from ..meters.simulator import MeterSimulator, SimulatedMeter, make_meters
from . import admin_engine as _engine
from . import echo_json, main


def broker_for(settings: Settings) -> tuple[MqttParams, EmbeddedBroker | None]:
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
    from ingest_service.logs import configure

    settings: Settings = ctx.obj
    root = logging.getLogger()
    configure(settings.log_format, min(root.level, logging.INFO) if root.level else logging.INFO)
    url = settings.ingest_database_url or tenancy.ingest_database_url(_engine(ctx), settings.data_dir)
    params, embedded = broker_for(settings)
    if embedded:
        click.echo(f"no SCOPE3_MQTT_URL: started an embedded broker on {params.host}:{params.port}", err=True)
    try:
        service = IngestService(url, params, client_id=settings.ingest_client_id,
                                shared_group=settings.ingest_shared_group, batch_size=settings.ingest_batch_size,
                                batch_ms=settings.ingest_batch_ms, max_payload_bytes=settings.max_payload_bytes,
                                queue_messages=settings.ingest_queue_messages,
                                metrics_addr=settings.ingest_metrics_addr, writers=settings.ingest_writers)
    except OSError as exc:
        raise ConfigurationError(
            f"cannot serve metrics on {settings.ingest_metrics_addr}: {exc.strerror} "
            "(set SCOPE3_INGEST_METRICS_ADDR to a free host:port)") from None
    until_signal(service.start, service.stop)
    if embedded:
        embedded.stop()


def until_signal(start: Callable[[], object], stop: Callable[[], None], duration: float | None = None,
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


def simulated_meters(engine: sa.Engine, slug: str, count: int, region: str,
                     broker: MosquittoFiles | None = None, faults: dict[str, str] | None = None
                     ) -> list[SimulatedMeter]:
    """The tenant's first ``count`` devices (adding sim-NNN ones if it has fewer), with fresh credentials.

    The simulator re-issues the credentials of every device it drives: never point it at real meters.
    """
    existing = [(str(d["device"]), str(d["grid_region"])) for d in devices.list_devices(engine, slug)
                if d["revoked_at"] is None][:count]
    for i in range(len(existing), count):
        key = f"sim-{i + 1:03d}"
        devices.add_device(engine, slug, key, region)
        existing.append((key, region))
    creds = {}
    for key, _ in existing:
        c = devices.issue_credentials(engine, slug, key)
        creds[key] = (c.mqtt_username, c.mqtt_password)
    if broker is not None:  # once for all the new passwords, not once per device
        broker.sync(engine)
    return make_meters(slug, existing, credentials=creds, faults=faults)


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
    meters = simulated_meters(_engine(ctx), slug, count, region, broker=MosquittoFiles.from_settings(settings))
    sim = MeterSimulator(parse_mqtt_url(settings.mqtt_url), meters, rate)
    worker = threading.Thread(target=sim.run, kwargs={"duration": duration}, daemon=True)
    def stop() -> None:
        sim.stop()
        worker.join()

    until_signal(worker.start, stop, duration=duration)
    click.echo(f"published {sim.published} readings for {len(meters)} meters of {slug}")


@meters_group.command("rollup")
@click.argument("slug")
@click.option("--since", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="Recompute days from this date (UTC) on; default: every day with readings.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_context
def meters_rollup(ctx: click.Context, slug: str, since: dt.datetime | None, as_json: bool) -> None:
    """Turn SLUG's readings into daily emission entries (kWh x grid factor); safe to re-run."""
    result = rollup.rollup_daily(_engine(ctx), slug, since=since.date() if since else None)
    if as_json:
        echo_json(result.to_dict())
        return
    click.echo(f"{slug}: {result.inserted} daily entries added, {result.updated} updated, "
               f"{result.unchanged} unchanged; {result.kwh:,.3f} kWh -> {result.kg_co2e:,.3f} kg CO2e")
    for m in result.missing_factors:
        click.echo(f"no grid factor: device {m['device']} region {m['region']} ({m['days']} days, "
                   f"{m['kwh']:,.3f} kWh not converted)", err=True)
    for c in result.closed_days:
        click.echo(f"closed period: device {c['device']} day {c['day']} not changed", err=True)


@meters_group.command("status")
@click.argument("slug")
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
@click.pass_context
def meters_status(ctx: click.Context, slug: str, as_json: bool) -> None:
    """Each meter of SLUG: last seen, online or silent, readings today (UTC)."""
    df = status.device_status(_engine(ctx), tenant=slug)
    if as_json:
        echo_json(df.to_dict(orient="records"))
        return
    if df.empty:
        click.echo(f"tenant {slug} has no meters")
        return
    for r in df.itertuples():
        click.echo(f"{r.device:<24} {r.state:<8} last_seen={r.last_seen} readings_today={r.readings_today} "
                   f"region={r.grid_region}")


# --- broker --------------------------------------------------------------------------------------


@main.group("broker")
def broker_group() -> None:
    """The production MQTT broker (Mosquitto): configuration and accounts."""


@broker_group.command("config")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Directory for mosquitto.conf, passwd, acl, the pid file and persistence "
                   "[default: DATA_DIR/mosquitto].")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address of the plain listener.")
@click.option("--port", type=click.IntRange(1, 65535), default=1883, show_default=True,
              help="Port of the plain listener.")
@click.option("--tls-port", type=click.IntRange(1, 65535), default=None,
              help="Also write a TLS listener on this port (fill in its certificate paths).")
@click.option("--user", "run_user", default=None,
              help="Account Mosquitto drops to when started as root (it must read the files).")
@click.option("--max-queued-bytes", type=click.IntRange(1 << 20), default=DEFAULT_MAX_QUEUED_BYTES,
              show_default=True, help="Bytes of QoS 1 messages queued per client (beyond it they are dropped).")
@click.option("--max-inflight", type=click.IntRange(1, 65534), default=DEFAULT_MAX_INFLIGHT, show_default=True,
              help="Unacknowledged messages per client; above the ingest batch size.")
@click.option("--rotate-ingest", is_flag=True, help="Issue the ingest service's MQTT account a new password.")
@click.pass_context
def broker_config(ctx: click.Context, out: Path | None, host: str, port: int, tls_port: int | None,
                  run_user: str | None, max_queued_bytes: int, max_inflight: int, rotate_ingest: bool) -> None:
    """Write a production mosquitto.conf with its password file and ACL (from the database)."""
    settings: Settings = ctx.obj
    if max_inflight <= settings.ingest_batch_size:
        raise click.UsageError(f"--max-inflight ({max_inflight}) must exceed the ingest batch size "
                               f"({settings.ingest_batch_size}), or a batch could never fill")
    directory = out or (settings.mosquitto_conf.parent if settings.mosquitto_conf else
                        settings.data_dir / "mosquitto")
    result = write_broker_config(_engine(ctx), directory, host=host, port=port, tls_port=tls_port, user=run_user,
                                 max_queued_bytes=max_queued_bytes, max_inflight_messages=max_inflight,
                                 rotate_ingest=rotate_ingest)
    click.echo(f"wrote {result.files.conf} ({result.accounts} accounts in {result.files.password_file})")
    click.echo(f"start the broker:  mosquitto -c {result.files.conf}")
    if directory.resolve() != (settings.data_dir / "mosquitto").resolve():
        click.echo(f"and let provisioning reload it:  export SCOPE3_MOSQUITTO_CONF={result.files.conf}")
    if result.ingest_url:
        click.echo("the ingest service's broker account (shown once; `--rotate-ingest` issues a new one):")
        click.echo(f"export SCOPE3_MQTT_URL='{result.ingest_url}'")


@broker_group.command("sync")
@click.pass_context
def broker_sync(ctx: click.Context) -> None:
    """Rewrite the broker's password file and ACL from the database and reload it."""
    files = MosquittoFiles.from_settings(ctx.obj)
    if files is None:
        raise ConfigurationError("no Mosquitto configuration: run `scope3 broker config` or set SCOPE3_MOSQUITTO_CONF")
    reloaded = files.sync(_engine(ctx))
    click.echo(f"wrote {files.password_file} and {files.acl_file}; "
               + ("broker reloaded" if reloaded else "broker not running (it reads them when it starts)"))

