"""Faults during a stream of readings: every reading published is stored exactly once.

Real processes throughout: the ingest service is killed with SIGKILL and restarted; Mosquitto (with
persistence) is restarted; a private PostgreSQL (never the machine's shared server) is stopped and
started again.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg
import pytest
import sqlalchemy as sa
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy.engine import Engine

from scope3lib import db, schema, tenancy
from scope3lib.meters.broker import MqttParams
from scope3lib.meters.contract import readings_topic
from tests.helpers import (
    INGEST,
    REPO,
    SecureMosquitto,
    TenantFactory,
    TenantFixture,
    new_slug,
    rfc3339,
    scope3_env,
    start_ingest_service,
    wait_until,
)

pytestmark = [pytest.mark.db, pytest.mark.broker, pytest.mark.slow]


class Stream:
    """Publishes ``per_device`` readings for each device (QoS 1, own credentials) in a background thread."""

    def __init__(self, port: int, slug: str, creds: dict[str, tuple[str | None, str | None]], per_device: int,
                 rate: float) -> None:
        self.expected: set[tuple[str, dt.datetime, float]] = set()
        self.clients: list[tuple[mqtt.Client, str]] = []
        base = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(days=1)
        self.plan: list[tuple[int, str, bytes]] = []
        for i, (dev, (user, password)) in enumerate(creds.items()):
            c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"dev-{secrets.token_hex(4)}",
                            protocol=mqtt.MQTTv311, clean_session=False)
            if user:
                c.username_pw_set(user, password)
            c.max_inflight_messages_set(100)
            c.max_queued_messages_set(0)
            c.reconnect_delay_set(0.2, 2)
            c.on_publish = self._on_publish
            c.connect("127.0.0.1", port)
            c.loop_start()
            self.clients.append((c, readings_topic(slug, dev)))
            for j in range(per_device):
                ts = base + dt.timedelta(seconds=j)
                kwh = round(0.01 * (j % 97) + i, 3)
                self.expected.add((dev, ts, kwh))
                self.plan.append((i, dev, json.dumps({"ts": rfc3339(ts), "kwh": kwh}).encode()))
        self.plan.sort(key=lambda p: (p[2], p[0]))  # interleave devices
        self.rate = rate
        self.acked = 0  # PUBACKs: paho keeps what it could not send while disconnected and sends it later
        self._lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _on_publish(self, client: mqtt.Client, userdata: object, mid: int, reason: object, props: object) -> None:
        with self._lock:
            self.acked += 1

    def _run(self) -> None:
        started = time.monotonic()
        for n, (i, _, payload) in enumerate(self.plan):
            client, topic = self.clients[i]
            client.publish(topic, payload, qos=1)
            delay = started + n / self.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)

    def start(self) -> Stream:
        self.thread.start()
        return self

    def finish(self, timeout: float = 120) -> None:
        self.thread.join(timeout)
        deadline = time.monotonic() + timeout
        while self.acked < len(self.plan):
            assert time.monotonic() < deadline, "the broker did not acknowledge every reading"
            time.sleep(0.05)
        for c, _ in self.clients:
            c.disconnect()
            c.loop_stop()


def stored(url: str, slug: str) -> list[tuple[str, dt.datetime, float]]:
    with psycopg.connect(url) as c:
        return [(k, ts, kwh) for k, ts, kwh in c.execute(
            "SELECT d.device_key, r.ts, r.kwh FROM readings r JOIN devices d ON d.id = r.device_id "
            "JOIN tenants t ON t.id = d.tenant_id WHERE t.slug = %s", (slug,))]


def assert_exactly_once(rows: list[tuple[str, dt.datetime, float]], expected: set[tuple[str, dt.datetime, float]]
                        ) -> None:
    assert len(rows) == len(expected), f"{len(rows)} rows for {len(expected)} readings"
    assert set(rows) == expected


def ingest_process(mqtt_url: str, ingest_url: str, client_id: str, workdir: Path) -> subprocess.Popen[bytes]:
    env = scope3_env(None, workdir, SCOPE3_MQTT_URL=mqtt_url, SCOPE3_INGEST_DATABASE_URL=ingest_url,
                     SCOPE3_INGEST_CLIENT_ID=client_id, SCOPE3_INGEST_BATCH_SIZE="200", SCOPE3_INGEST_BATCH_MS="50")
    log = open(workdir / f"ingest-{client_id}.log", "ab")  # noqa: SIM115 - kept open for the process
    return subprocess.Popen(INGEST, env=env, stdout=log, stderr=log, cwd=REPO)


@pytest.fixture
def device_creds(engine: Engine, tenant_a: TenantFixture,
                 secure_broker: SecureMosquitto) -> dict[str, tuple[str | None, str | None]]:
    creds: dict[str, tuple[str | None, str | None]] = {}
    for _ in range(4):
        c = tenant_a.add_device(prefix="f")
        creds[c.device] = (c.mqtt_username, c.mqtt_password)
    secure_broker.files.sync(engine)
    time.sleep(0.3)  # let Mosquitto apply the reload
    return creds


def test_ingest_killed_mid_stream_stores_everything_once(engine: Engine, tenant_a: TenantFixture,
                                                         secure_broker: SecureMosquitto, ingest_url: str,
                                                         device_creds: dict[str, tuple[str | None, str | None]],
                                                         tmp_path: Path) -> None:
    client_id = f"kill-{secrets.token_hex(3)}"
    mqtt_url = secure_broker.params.url()
    proc = ingest_process(mqtt_url, ingest_url, client_id, tmp_path)
    try:
        wait_until(lambda: _subscribed(secure_broker, client_id), 30, "ingest did not connect")
        time.sleep(1)  # its SUBSCRIBE follows the connection
        stream = Stream(secure_broker.port, tenant_a.slug, device_creds, per_device=1000, rate=1500).start()
        total = len(stream.expected)
        wait_until(lambda: len(stored(ingest_url_admin(engine), tenant_a.slug)) >= total // 4, 60,
                   "nothing stored before the kill")
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        time.sleep(0.5)  # messages keep arriving at the broker and queue in the session
        proc = ingest_process(mqtt_url, ingest_url, client_id, tmp_path)
        stream.finish()
        wait_until(lambda: len(_mine(engine, tenant_a.slug, stream.expected)) >= total, 90,
                   "not every reading arrived after the restart")
        time.sleep(1)  # and nothing more arrives
        assert_exactly_once(_mine(engine, tenant_a.slug, stream.expected), stream.expected)
    finally:
        proc.terminate()
        proc.wait(30)


def test_broker_restart_mid_stream_loses_nothing(engine: Engine, tenant_a: TenantFixture,
                                                 secure_broker: SecureMosquitto, ingest_url: str,
                                                 device_creds: dict[str, tuple[str | None, str | None]]) -> None:
    svc = start_ingest_service(ingest_url, secure_broker.params, prefix="brk", batch_size=200, batch_ms=50)
    try:
        stream = Stream(secure_broker.port, tenant_a.slug, device_creds, per_device=750, rate=1500).start()
        total = len(stream.expected)
        wait_until(lambda: svc.stats.rows_written >= total // 4, 60, "nothing stored before the restart")
        secure_broker.stop()  # SIGTERM: Mosquitto saves sessions and queued messages
        time.sleep(1)
        secure_broker.start()
        stream.finish()
        wait_until(lambda: len(_mine(engine, tenant_a.slug, stream.expected)) >= total, 90,
                   "not every reading arrived after the broker restart")
        time.sleep(1)
        assert_exactly_once(_mine(engine, tenant_a.slug, stream.expected), stream.expected)
        assert svc.stats.mqtt_connects >= 2
    finally:
        svc.stop()
        if secure_broker.proc is None:
            secure_broker.start()


class PrivatePostgres:
    """An embedded PostgreSQL (pgserver) of this test alone, which the test may stop and start."""

    def __init__(self, where: Path) -> None:
        from pgserver._commands import pg_ctl

        self._pg_ctl = pg_ctl
        self.admin_url = db.embedded_postgres(where)
        self.pgdata = (where / "postgres").resolve()
        self.server = db._EMBEDDED_HANDLES[self.pgdata]
        self.socket_dir = sa.engine.make_url(db.sqlalchemy_url(self.admin_url)).query["host"]

    def stop(self) -> None:
        self._pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.pgdata, user=self.server.system_user)  # type: ignore[attr-defined]

    def start(self) -> None:
        self._pg_ctl(["-w", "-o", '-h ""', "-o", f"-k {self.socket_dir}", "-l", str(self.pgdata / "log"), "start"],
                     pgdata=self.pgdata, user=self.server.system_user, timeout=30)  # type: ignore[attr-defined]


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    where = Path(tempfile.mkdtemp(prefix="scope3-test-pgfault-"))
    pg = PrivatePostgres(where)
    yield pg
    with __import__("contextlib").suppress(Exception):
        pg.stop()


def test_postgres_restart_mid_stream_loses_nothing(private_postgres: PrivatePostgres, broker: MqttParams,
                                                   tmp_path: Path) -> None:
    engine = db.create_engine(private_postgres.admin_url)
    try:
        schema.upgrade(engine)
        with TenantFactory(engine, tmp_path) as make_tenant:
            tenant = make_tenant(new_slug("pg"), name="Fault", meters=3, meter_region="GB")
        slug = tenant.slug
        creds: dict[str, tuple[str | None, str | None]] = dict.fromkeys(tenant.meters, (None, None))  # anonymous
        ingest_url = tenancy.ingest_database_url(engine, tmp_path)
    finally:
        engine.dispose()
    svc = start_ingest_service(ingest_url, broker, prefix="pgr", batch_size=200, batch_ms=50)
    try:
        stream = Stream(broker.port, slug, creds, per_device=1000, rate=1500).start()
        total = len(stream.expected)
        wait_until(lambda: svc.stats.rows_written >= total // 4, 60, "nothing stored before the restart")
        private_postgres.stop()
        time.sleep(1.5)  # the stream goes on; the ingest holds its batch unacknowledged and retries
        assert svc.health()[0] is False or svc.stats.db_errors > 0 or svc.stats.rows_written >= total
        private_postgres.start()
        stream.finish()
        wait_until(lambda: len(stored(private_postgres.admin_url, slug)) >= total, 90,
                   "not every reading arrived after PostgreSQL came back")
        time.sleep(1)
        assert_exactly_once(stored(private_postgres.admin_url, slug), stream.expected)
        assert svc.stats.db_errors >= 1
        assert svc.health() == (True, "mqtt=up database=up")
    finally:
        svc.stop()


def _mine(engine: Engine, slug: str, expected: set[tuple[str, dt.datetime, float]]
          ) -> list[tuple[str, dt.datetime, float]]:
    keys = {k for k, _, _ in expected}
    return [r for r in stored(ingest_url_admin(engine), slug) if r[0] in keys]


def ingest_url_admin(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False).replace("postgresql+psycopg://", "postgresql://")


def _subscribed(secure_broker: SecureMosquitto, client_id: str) -> bool:
    log = (secure_broker.workdir / "mosquitto.log").read_text(errors="replace")
    return f"as {client_id} " in log
