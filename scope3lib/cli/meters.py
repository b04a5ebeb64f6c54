"""Meter commands: the ingest service and the meter simulator."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable

import click
import sqlalchemy as sa

from .. import devices, tenancy
from ..broker import EmbeddedBroker, MqttParams, free_port, parse_mqtt_url, port_open
from ..config import Settings
from ..meters import MeterSimulator, SimulatedMeter, make_meters
from . import admin_engine as _engine
from . import main


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

    settings: Settings = ctx.obj
    url = settings.ingest_database_url or tenancy.ingest_database_url(_engine(ctx), settings.data_dir)
    params, embedded = broker_for(settings)
    if embedded:
        click.echo(f"no SCOPE3_MQTT_URL: started an embedded broker on {params.host}:{params.port}", err=True)
    service = IngestService(url, params, client_id=settings.ingest_client_id,
                            shared_group=settings.ingest_shared_group, batch_size=settings.ingest_batch_size,
                            batch_ms=settings.ingest_batch_ms, max_payload_bytes=settings.max_payload_bytes)
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


def simulated_meters(engine: sa.Engine, slug: str, count: int, region: str) -> list[SimulatedMeter]:
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
    meters = simulated_meters(_engine(ctx), slug, count, region)
    sim = MeterSimulator(parse_mqtt_url(settings.mqtt_url), meters, rate)
    worker = threading.Thread(target=sim.run, kwargs={"duration": duration}, daemon=True)
    def stop() -> None:
        sim.stop()
        worker.join()

    until_signal(worker.start, stop, duration=duration)
    click.echo(f"published {sim.published} readings for {len(meters)} meters of {slug}")


