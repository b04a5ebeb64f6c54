"""Ingest end to end through a real Mosquitto into PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
import sqlalchemy as sa
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy.engine import Engine

from ingest_service import IngestService
from scope3lib.meters.broker import MqttParams
from scope3lib.meters.contract import readings_topic
from tests.helpers import (
    INGEST,
    SCOPE3,
    TenantFixture,
    count_readings,
    rfc3339,
    scope3_env,
    start_ingest_service,
    wait_until,
)

pytestmark = [pytest.mark.db, pytest.mark.broker]


class Publisher:
    def __init__(self, params: MqttParams) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"pub-{secrets.token_hex(4)}",
                                  protocol=mqtt.MQTTv5 if params.protocol == 5 else mqtt.MQTTv311)
        self.client.max_inflight_messages_set(500)
        self.client.connect(params.host, params.port)
        self.client.loop_start()

    def publish(self, topic: str, payload: bytes | str | dict[str, object]) -> None:
        data = json.dumps(payload) if isinstance(payload, dict) else payload
        self.client.publish(topic, data, qos=1).wait_for_publish(10)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def publisher(broker: MqttParams) -> Iterator[Publisher]:
    p = Publisher(broker)
    yield p
    p.close()


@pytest.fixture
def start_ingest(ingest_url: str, broker: MqttParams) -> Iterator[Callable[..., IngestService]]:
    """Starts ingest services (connected, subscribed) on the session's broker; stops them after the test."""
    started: list[IngestService] = []

    def start(client_id: str | None = None, **kwargs: object) -> IngestService:
        kwargs.setdefault("batch_ms", 50)
        svc = start_ingest_service(ingest_url, broker, client_id=client_id, **kwargs)
        started.append(svc)
        return svc

    yield start
    for svc in started:
        svc.stop()


@pytest.fixture
def device(tenant_a: TenantFixture) -> str:
    return tenant_a.add_device().device


def ts(minutes_ago: int) -> str:
    return rfc3339(dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=minutes_ago))


def rejects_for(engine: Engine, topic: str) -> list[tuple[bytes, str]]:
    with engine.connect() as c:
        return [(bytes(r.payload), r.reason) for r in
                c.execute(sa.text("SELECT payload, reason FROM rejects WHERE topic = :t ORDER BY id"), {"t": topic})]


def test_readings_land_and_replays_do_not_duplicate(engine: Engine, tenant_a: TenantFixture, device: str,
                                                     publisher: Publisher, start_ingest: Callable[..., IngestService]
                                                     ) -> None:
    svc = start_ingest()
    topic = readings_topic(tenant_a.slug, device)
    single = {"ts": ts(10), "kwh": 1.25}
    batch = {"readings": [{"ts": ts(m), "kwh": m / 10} for m in range(1, 10)]}
    publisher.publish(topic, single)
    publisher.publish(topic, batch)
    wait_until(lambda: count_readings(engine, device) == 10)
    for _ in range(3):  # replays, as after a crash before the acknowledgement
        publisher.publish(topic, single)
        publisher.publish(topic, batch)
    wait_until(lambda: svc.stats.messages_committed >= 8)
    assert count_readings(engine, device) == 10
    assert svc.stats.rows_duplicate == 30
    with engine.connect() as c:
        row = c.execute(sa.text("SELECT r.kwh, r.tenant_id = d.tenant_id AS same, d.last_seen IS NOT NULL AS seen "
                                "FROM readings r JOIN devices d ON d.id = r.device_id "
                                "WHERE d.device_key = :k AND r.ts = :ts"),
                        {"k": device, "ts": dt.datetime.fromisoformat(single["ts"])}).one()  # type: ignore[arg-type]
    assert row.kwh == 1.25 and row.same and row.seen


def test_tenant_sees_its_readings_through_its_own_role(engine: Engine, tenant_a: TenantFixture,
                                                       tenant_b: TenantFixture, device: str,
                                                       publisher: Publisher,
                                                       start_ingest: Callable[..., IngestService]) -> None:
    start_ingest()
    publisher.publish(readings_topic(tenant_a.slug, device), {"ts": ts(1), "kwh": 3.0})
    wait_until(lambda: count_readings(engine, device) == 1)
    import psycopg
    sql = "SELECT count(*) FROM readings r JOIN devices d ON d.id = r.device_id WHERE d.device_key = %s"
    with psycopg.connect(tenant_a.database_url) as a, psycopg.connect(tenant_b.database_url) as b:
        assert a.execute(sql, (device,)).fetchone() == (1,)
        assert b.execute(sql, (device,)).fetchone() == (0,)


INVALID = [
    (b"{not json", "not JSON"),
    (b"\xc3\x28\xa0\xa1", "not UTF-8"),
    (json.dumps({"kwh": 1.0}).encode(), "missing field 'ts'"),
    (json.dumps({"ts": "2026-01-01T00:00:00Z"}).encode(), "missing field 'kwh'"),
    (b'{"ts": "%s", "kwh": -2}', "must not be negative"),
    (b'{"ts": "%s", "kwh": NaN}', "NaN is not allowed"),
    (b'{"ts": "%s", "kwh": Infinity}', "Infinity is not allowed"),
    (b'{"ts": "%s", "kwh": 1e400}', "must be finite"),
    (b'{"ts": "2999-01-01T00:00:00Z", "kwh": 1}', "in the future"),
    (b'{"readings": [{"ts": "%s", "kwh": 1}, {"ts": "%s", "kwh": "x"}]}', "readings[1]: 'kwh' must be a number"),
    (b"[" * 50_000 + b"]" * 50_000, "nested too deeply"),
    (b" " * 1_100_000, "exceeds the 1048576-byte limit"),
]


def test_every_kind_of_invalid_message_lands_in_rejects(engine: Engine, tenant_a: TenantFixture, device: str,
                                                         publisher: Publisher,
                                                         start_ingest: Callable[..., IngestService]) -> None:
    svc = start_ingest()
    topic = readings_topic(tenant_a.slug, device)
    sent = []
    for payload, _ in INVALID:
        body = payload.replace(b"%s", ts(5).encode()) if b"%s" in payload else payload
        sent.append(body)
        publisher.publish(topic, body)
    publisher.publish(topic, {"ts": ts(2), "kwh": 0.5})  # a valid one after them all
    wait_until(lambda: len(rejects_for(engine, topic)) == len(INVALID) and count_readings(engine, device) == 1)
    stored = rejects_for(engine, topic)
    for (payload, reason), (raw, expected) in zip(stored, zip(sent, [r for _, r in INVALID], strict=True),
                                                  strict=True):
        assert payload == raw
        assert expected in reason, (expected, reason)
    assert svc.stats.rejects.total() == len(INVALID)
    with engine.connect() as c:
        tids = c.scalars(sa.text("SELECT DISTINCT tenant_id FROM rejects WHERE topic = :t"), {"t": topic}).all()
        assert tids == [c.scalar(sa.text("SELECT id FROM tenants WHERE slug = 'alpha'"))]


def test_unknown_and_foreign_devices_are_rejected(engine: Engine, tenant_a: TenantFixture,
                                                   tenant_b: TenantFixture, publisher: Publisher,
                                                   start_ingest: Callable[..., IngestService]) -> None:
    start_ingest()
    b_device = tenant_b.add_device(region="GB", prefix="b").device
    cases = {
        readings_topic(tenant_a.slug, "ghost"): "unknown device 'ghost'",
        readings_topic(tenant_a.slug, b_device): "belongs to another tenant",
        readings_topic("no-such-tenant", "m1"): "unknown tenant",
    }
    for topic in cases:
        publisher.publish(topic, {"ts": ts(1), "kwh": 1.0})
    for topic, reason in cases.items():
        wait_until(lambda t=topic: len(rejects_for(engine, t)) == 1)  # type: ignore[misc]
        assert reason in rejects_for(engine, topic)[0][1]
    assert count_readings(engine, b_device) == 0


def test_messages_sent_while_ingest_is_down_arrive_after_restart(engine: Engine, tenant_a: TenantFixture,
                                                                 device: str, publisher: Publisher,
                                                                 start_ingest: Callable[..., IngestService]) -> None:
    client_id = f"ingest-{secrets.token_hex(4)}"
    svc = start_ingest(client_id)
    svc.stop()  # the persistent session stays at the broker
    topic = readings_topic(tenant_a.slug, device)
    for m in range(20):
        publisher.publish(topic, {"ts": ts(m), "kwh": 1.0})
    start_ingest(client_id)
    wait_until(lambda: count_readings(engine, device) == 20)


def test_many_messages_in_batches(engine: Engine, tenant_a: TenantFixture, device: str, broker: MqttParams,
                                  start_ingest: Callable[..., IngestService]) -> None:
    svc = start_ingest(batch_size=300)
    pub = Publisher(broker)
    topic = readings_topic(tenant_a.slug, device)
    base = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(days=3)
    infos = [pub.client.publish(topic, json.dumps({"ts": (base + dt.timedelta(seconds=s)).isoformat(), "kwh": 0.1}),
                                qos=1) for s in range(3000)]
    for info in infos:
        info.wait_for_publish(30)
    pub.close()
    wait_until(lambda: count_readings(engine, device) == 3000, timeout=60)
    assert svc.stats.batches >= 10  # batched, not one commit per message


def test_ingest_command_stops_cleanly_on_sigterm(database_url: str, data_dir: Path, tenant_a: TenantFixture,
                                                 engine: Engine, device: str, broker: MqttParams,
                                                 publisher: Publisher) -> None:
    env = scope3_env(database_url, data_dir, SCOPE3_MQTT_URL=broker.url(),
                     SCOPE3_INGEST_CLIENT_ID=f"cli-{secrets.token_hex(3)}")
    proc = subprocess.Popen([*SCOPE3, "ingest"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        topic = readings_topic(tenant_a.slug, device)
        deadline = time.monotonic() + 30
        reading = {"ts": ts(1), "kwh": 2.0}
        publisher.publish(topic, reading)
        while count_readings(engine, device) == 0:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "ingest did not store the reading"
            time.sleep(0.2)
            publisher.publish(topic, reading)  # again until it has subscribed; replays are harmless
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert b"Traceback" not in err
    assert count_readings(engine, device) == 1


def test_metrics_and_health_endpoint(engine: Engine, tenant_a: TenantFixture, device: str, publisher: Publisher,
                                     start_ingest: Callable[..., IngestService]) -> None:
    import urllib.request

    svc = start_ingest(metrics_addr="127.0.0.1:0")
    topic = readings_topic(tenant_a.slug, device)
    publisher.publish(topic, {"ts": ts(1), "kwh": 1.0})
    publisher.publish(topic, b"{oops")
    wait_until(lambda: svc.stats.messages_committed >= 2)
    base = f"http://127.0.0.1:{svc.metrics_port}"
    with urllib.request.urlopen(base + "/metrics", timeout=5) as r:
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = r.read().decode()
    samples = dict(line.rsplit(" ", 1) for line in text.splitlines() if line and not line.startswith("#"))
    assert float(samples["scope3_ingest_messages_received_total"]) == 2
    assert float(samples["scope3_ingest_rows_written_total"]) == 1
    assert float(samples['scope3_ingest_rejects_total{reason="bad_json"}']) == 1
    assert float(samples["scope3_ingest_batch_seconds_count"]) >= 1
    assert float(samples["scope3_ingest_lag_seconds_count"]) == 1  # the valid message; lag from its ts
    assert float(samples['scope3_ingest_lag_seconds_bucket{le="+Inf"}']) == 1
    assert samples["scope3_ingest_queue_messages"] == "0" and samples["scope3_ingest_mqtt_connected"] == "1"
    with urllib.request.urlopen(base + "/healthz", timeout=5) as r:
        assert r.status == 200 and r.read() == b"mqtt=up database=up\n"


def test_stock_paho_path_and_messages_with_properties(engine: Engine, tenant_a: TenantFixture, device: str,
                                                      broker: MqttParams,
                                                      start_ingest: Callable[..., IngestService]) -> None:
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    tuned = start_ingest()
    untuned = start_ingest(tuned_receive=False, shared_group=None)
    topic = readings_topic(tenant_a.slug, device)
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"p5-{secrets.token_hex(3)}", protocol=mqtt.MQTTv5)
    pub.connect(broker.host, broker.port)
    pub.loop_start()
    props = Properties(PacketTypes.PUBLISH)
    props.MessageExpiryInterval = 3600  # a PUBLISH with properties takes paho's full decoder
    pub.publish(topic, json.dumps({"ts": ts(3), "kwh": 2.0}), qos=1, properties=props).wait_for_publish(10)
    pub.publish(topic, json.dumps({"ts": ts(4), "kwh": 2.0}), qos=1).wait_for_publish(10)
    pub.disconnect()
    pub.loop_stop()
    wait_until(lambda: count_readings(engine, device) == 2)
    wait_until(lambda: tuned.stats.messages_committed == 2 and untuned.stats.messages_committed == 2)
    assert tuned.stats.rows_duplicate + untuned.stats.rows_duplicate == 2  # both got both; stored once


def test_back_pressure_bounds_unacknowledged_and_nothing_is_lost(engine: Engine, tenant_a: TenantFixture,
                                                                 device: str, broker: MqttParams,
                                                                 ingest_url: str) -> None:
    client_id = f"bp-{secrets.token_hex(3)}"
    # The database is unreachable: nothing can be committed, so nothing is acknowledged.
    down = start_ingest_service("postgresql://nobody:x@127.0.0.1:1/none", broker, client_id=client_id, batch_size=50,
                                batch_ms=20, queue_messages=300)
    pub = Publisher(broker)
    topic = readings_topic(tenant_a.slug, device)
    base = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(days=2)
    for s in range(2000):
        pub.client.publish(topic, json.dumps({"ts": (base + dt.timedelta(seconds=s)).isoformat(), "kwh": 0.2}), qos=1)
    time.sleep(2)
    assert 0 < down.stats.messages_received <= 300  # the broker holds the rest
    assert down._unacked <= 300
    assert down.health()[0] is False
    down.stop(timeout=1)
    up = IngestService(ingest_url, broker, client_id=client_id, batch_ms=20)
    up.start()
    try:
        wait_until(lambda: count_readings(engine, device) == 2000, timeout=60)
    finally:
        up.stop()
        pub.close()


def test_standalone_ingest_logs_json_and_flushes_on_sigterm(engine: Engine, tenant_a: TenantFixture, device: str,
                                                            broker: MqttParams, ingest_url: str,
                                                            publisher: Publisher, tmp_path: Path) -> None:
    env = scope3_env(None, tmp_path, SCOPE3_MQTT_URL=broker.url(), SCOPE3_INGEST_DATABASE_URL=ingest_url,
                     SCOPE3_LOG_FORMAT="json", SCOPE3_INGEST_CLIENT_ID=f"js-{secrets.token_hex(3)}",
                     SCOPE3_INGEST_BATCH_MS="3000")
    proc = subprocess.Popen(INGEST, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        topic = readings_topic(tenant_a.slug, device)
        deadline = time.monotonic() + 20
        while not _connected(proc):
            assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.5)  # the SUBACK follows the log line
        publisher.publish(topic, {"ts": ts(2), "kwh": 4.0})
        time.sleep(0.5)  # received, waiting in a 3 s batch
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0
    lines = [json.loads(line) for line in err.decode().splitlines() if line.strip()]
    assert all({"ts", "level", "logger", "message"} <= set(doc) for doc in lines)
    assert any("1 messages committed" in doc["message"] for doc in lines)
    assert count_readings(engine, device) == 1  # flushed before exit, not left to a redelivery


def _connected(proc: subprocess.Popen[bytes]) -> bool:
    assert proc.stderr is not None
    line = proc.stderr.readline().decode()
    return "subscribed to" in line
