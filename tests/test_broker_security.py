"""Broker security through a real Mosquitto configured by `scope3 broker config`.

Accounts and ACL come from the database; anonymous access is off; a device may publish only under its
own topic; revoking or re-keying a device takes effect at once.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
import sqlalchemy as sa
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy.engine import Engine

from scope3lib.meters import devices
from scope3lib.meters.broker import MosquittoFiles, free_port, port_open
from scope3lib.meters.contract import readings_topic
from tests.helpers import (
    SecureMosquitto,
    TenantFixture,
    mosquitto_bin,
    rfc3339,
    run_cli,
    start_ingest_service,
    wait_until,
)

pytestmark = [pytest.mark.db, pytest.mark.broker]

NOT_AUTHORIZED = 135


class Client:
    """A paho MQTT 5 client that records what the broker answered."""

    def __init__(self, port: int, username: str | None, password: str | None) -> None:
        self.connack = threading.Event()
        self.connect_reason: int | None = None
        self.disconnected = threading.Event()
        self.puback: dict[int, int] = {}
        self.messages: list[tuple[str, bytes]] = []
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"t-{secrets.token_hex(4)}",
                             protocol=mqtt.MQTTv5)
        if username:
            self.c.username_pw_set(username, password)
        self.c.on_connect = self._on_connect
        self.c.on_disconnect = lambda *a: self.disconnected.set()
        self.c.on_publish = lambda c, u, mid, reason, props: self.puback.__setitem__(mid, reason.value)
        self.c.on_message = lambda c, u, m: self.messages.append((m.topic, bytes(m.payload)))
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()
        assert self.connack.wait(10), "no CONNACK"

    def _on_connect(self, c: mqtt.Client, u: object, flags: object, reason: mqtt.ReasonCode, props: object) -> None:
        self.connect_reason = reason.value
        self.connack.set()

    @property
    def accepted(self) -> bool:
        return self.connect_reason == 0

    def publish(self, topic: str, payload: bytes | str) -> int:
        """PUBACK reason code: 0 accepted, 135 not authorised."""
        info = self.c.publish(topic, payload, qos=1)
        info.wait_for_publish(10)
        deadline = time.monotonic() + 5
        while info.mid not in self.puback:
            assert time.monotonic() < deadline, "no PUBACK"
            time.sleep(0.01)
        return self.puback[info.mid]

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


@pytest.fixture
def clients() -> Iterator[Callable[..., Client]]:
    made: list[Client] = []

    def make(port: int, username: str | None = None, password: str | None = None) -> Client:
        c = Client(port, username, password)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


def connect_when_reloaded(make: Callable[..., Client], port: int, user: str, password: str,
                          expect_accepted: bool) -> Client:
    """Mosquitto applies a reload in its next loop iteration: retry for a moment."""
    deadline = time.monotonic() + 5
    while True:
        c = make(port, user, password)
        if c.accepted == expect_accepted or time.monotonic() > deadline:
            return c
        time.sleep(0.1)


def key() -> str:
    return f"s-{secrets.token_hex(3)}"


def test_anonymous_and_wrong_passwords_are_refused(secure_broker: SecureMosquitto, engine: Engine,
                                                    tenant_a: TenantFixture,
                                                    clients: Callable[..., Client]) -> None:
    creds = tenant_a.add_device(prefix="s", broker=secure_broker.files)
    assert clients(secure_broker.port).connect_reason == NOT_AUTHORIZED
    assert clients(secure_broker.port, creds.mqtt_username, "wrong").connect_reason != 0
    assert connect_when_reloaded(clients, secure_broker.port, creds.mqtt_username, creds.mqtt_password,
                                 True).accepted


def test_device_publishes_only_under_its_own_topic(secure_broker: SecureMosquitto, engine: Engine,
                                                   tenant_a: TenantFixture, tenant_b: TenantFixture,
                                                   ingest_url: str, clients: Callable[..., Client]) -> None:
    creds = tenant_a.add_device(prefix="s", broker=secure_broker.files)
    mine = creds.device
    neighbour = tenant_a.add_device(prefix="s", broker=secure_broker.files).device
    foreign = tenant_b.add_device(region="GB", prefix="s", broker=secure_broker.files).device
    svc = start_ingest_service(ingest_url, secure_broker.params, prefix="ing", batch_ms=50)
    try:
        reading = json.dumps({"ts": _ts(), "kwh": 1.5})
        # A fresh connection for each: Mosquitto 2.0.11 answers a refused QoS 1 publish with PUBACK 135
        # (not authorised) and then closes the connection.
        for topic, expected in ((readings_topic(tenant_a.slug, mine), 0),
                                (readings_topic(tenant_a.slug, neighbour), NOT_AUTHORIZED),
                                (readings_topic(tenant_b.slug, foreign), NOT_AUTHORIZED),
                                (f"scope3/{tenant_a.slug}/{mine}-x/readings", NOT_AUTHORIZED)):
            dev = connect_when_reloaded(clients, secure_broker.port, creds.mqtt_username, creds.mqtt_password,
                                        True)
            assert dev.publish(topic, reading) == expected, topic
        # Its own reading arrives; the refused ones never reach the ingest, not even as rejects.
        wait_until(lambda: svc.stats.messages_committed >= 1)
        time.sleep(0.5)
        assert svc.stats.messages_committed == 1
    finally:
        svc.stop()
    with engine.connect() as c:
        counts = dict(c.execute(sa.text(
            "SELECT d.device_key, count(r.ts) FROM devices d LEFT JOIN readings r ON r.device_id = d.id "
            "WHERE d.device_key IN (:a, :b, :c) GROUP BY d.device_key"), {"a": mine, "b": neighbour, "c": foreign}
        ).all())
        rejected = c.scalar(sa.text("SELECT count(*) FROM rejects WHERE topic LIKE :p"), {"p": f"%{neighbour}%"})
    assert counts == {mine: 1, neighbour: 0, foreign: 0}
    assert rejected == 0


def test_devices_cannot_read_and_the_ingest_cannot_publish(secure_broker: SecureMosquitto, engine: Engine,
                                                            tenant_a: TenantFixture,
                                                            clients: Callable[..., Client]) -> None:
    ca = tenant_a.add_device(prefix="s", broker=secure_broker.files)
    cb = tenant_a.add_device(prefix="s", broker=secure_broker.files)
    b = cb.device
    spy = connect_when_reloaded(clients, secure_broker.port, ca.mqtt_username, ca.mqtt_password, True)
    spy.c.subscribe("scope3/#", qos=1)
    time.sleep(0.3)
    pub = connect_when_reloaded(clients, secure_broker.port, cb.mqtt_username, cb.mqtt_password, True)
    assert pub.publish(readings_topic(tenant_a.slug, b), json.dumps({"ts": _ts(), "kwh": 1})) == 0
    ingest = clients(secure_broker.port, secure_broker.params.username, secure_broker.params.password)
    assert ingest.accepted
    assert ingest.publish(readings_topic(tenant_a.slug, b), json.dumps({"ts": _ts(), "kwh": 9})) \
        == NOT_AUTHORIZED
    time.sleep(0.5)
    assert spy.messages == []


def test_removed_device_is_disconnected_and_cannot_reconnect(secure_broker: SecureMosquitto, engine: Engine,
                                                             database_url: str, data_dir: Path,
                                                             tenant_a: TenantFixture,
                                                             clients: Callable[..., Client]) -> None:
    creds = tenant_a.add_device(prefix="s", broker=secure_broker.files)
    k = creds.device
    dev = connect_when_reloaded(clients, secure_broker.port, creds.mqtt_username, creds.mqtt_password, True)
    dev.c.reconnect_delay_set(60, 60)  # no automatic reconnect muddling the check
    out = run_cli(database_url, data_dir, "device", "remove", tenant_a.slug, k,
                  env={"SCOPE3_MOSQUITTO_CONF": str(secure_broker.conf)})
    assert out.returncode == 0, out.stderr
    assert dev.disconnected.wait(5), "the broker kept the removed device connected"
    again = clients(secure_broker.port, creds.mqtt_username, creds.mqtt_password)
    assert again.connect_reason == NOT_AUTHORIZED
    assert creds.mqtt_username not in secure_broker.files.password_file.read_text()
    assert creds.mqtt_username not in secure_broker.files.acl_file.read_text()


def test_rotated_credentials_replace_the_old_ones_at_once(secure_broker: SecureMosquitto, engine: Engine,
                                                          database_url: str, data_dir: Path,
                                                          tenant_a: TenantFixture,
                                                          clients: Callable[..., Client]) -> None:
    old = tenant_a.add_device(prefix="s", broker=secure_broker.files)
    k = old.device
    connect_when_reloaded(clients, secure_broker.port, old.mqtt_username, old.mqtt_password, True)
    out = run_cli(database_url, data_dir, "device", "rotate", tenant_a.slug, k, "--json",
                  env={"SCOPE3_MOSQUITTO_CONF": str(secure_broker.conf)})
    assert out.returncode == 0, out.stderr
    new = json.loads(out.stdout)
    assert connect_when_reloaded(clients, secure_broker.port, old.mqtt_username, old.mqtt_password,
                                 False).connect_reason == NOT_AUTHORIZED
    assert clients(secure_broker.port, new["mqtt_username"], new["mqtt_password"]).accepted


def test_device_with_emission_entries_is_kept_revoked(secure_broker: SecureMosquitto, engine: Engine,
                                                      tenant_a: TenantFixture,
                                                      clients: Callable[..., Client]) -> None:
    creds = tenant_a.add_device(prefix="s", broker=secure_broker.files)
    k = creds.device
    with engine.begin() as c:
        dev_id, tid = c.execute(sa.text("SELECT id, tenant_id FROM devices WHERE device_key = :k"), {"k": k}).one()
        c.execute(sa.text(
            "INSERT INTO emission_entries (tenant_id, category, period_start, period_end, method, device_id, "
            "kg_co2e, data_source, data_quality) VALUES (:t, 1, '2026-01-01', '2026-01-01', 'average_data', :d, "
            "1.0, 'iot', 2)"), {"t": tid, "d": dev_id})
    assert devices.remove_device(engine, tenant_a.slug, k, broker=secure_broker.files) is False
    with engine.connect() as c:
        assert c.scalar(sa.text("SELECT revoked_at IS NOT NULL FROM devices WHERE id = :d"), {"d": dev_id})
    assert connect_when_reloaded(clients, secure_broker.port, creds.mqtt_username, creds.mqtt_password,
                                 False).connect_reason == NOT_AUTHORIZED


@pytest.mark.slow
def test_broker_config_command_writes_a_working_production_config(database_url: str, data_dir: Path,
                                                                  engine: Engine, tmp_path: Path,
                                                                  tenant_a: TenantFixture,
                                                                  clients: Callable[..., Client]) -> None:
    port = free_port()
    out_dir = tmp_path / "mosq"
    res = run_cli(database_url, data_dir, "broker", "config", "--out", str(out_dir), "--port", str(port),
                  "--tls-port", "8883")
    assert res.returncode == 0, res.stderr
    conf = (out_dir / "mosquitto.conf").read_text()
    settings = {line.split()[0]: line.split(None, 1)[1] for line in conf.splitlines()
                if line.strip() and not line.startswith("#") and len(line.split()) > 1}
    assert settings["allow_anonymous"] == "false"
    assert settings["max_queued_messages"] == "0"
    assert int(settings["max_queued_bytes"]) >= 1 << 20
    assert int(settings["max_inflight_messages"]) > 2000  # the default ingest batch
    assert settings["persistence"] == "true"
    assert Path(settings["password_file"]).exists() and Path(settings["acl_file"]).exists()
    assert "certfile" in conf and "tls_version" in conf
    assert "scope3-ingest:$7$" in Path(settings["password_file"]).read_text()
    # Mosquitto itself accepts the file (without the TLS listener, which needs certificates), and a
    # device added through the CLI can connect at once: provisioning reloaded the running broker.
    plain = out_dir / "plain.conf"
    plain.write_text("\n".join(line for line in conf.splitlines()
                               if not line.startswith(("listener 8883", "tls_version"))) + "\nuser root\n")
    proc = subprocess.Popen([mosquitto_bin(), "-c", str(plain)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while not port_open("127.0.0.1", port):
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert clients(port).connect_reason == NOT_AUTHORIZED
        add = run_cli(database_url, data_dir, "device", "add", tenant_a.slug, key(), "--region", "GB", "--json",
                      env={"SCOPE3_MOSQUITTO_CONF": str(out_dir / "mosquitto.conf")})
        assert add.returncode == 0, add.stderr
        creds = json.loads(add.stdout)
        assert connect_when_reloaded(clients, port, creds["mqtt_username"], creds["mqtt_password"], True).accepted
        assert MosquittoFiles.from_conf(out_dir / "mosquitto.conf").reload() is True
    finally:
        proc.terminate()
        proc.wait(10)


def _ts() -> str:
    return rfc3339(dt.datetime.now(dt.UTC), timespec="milliseconds")
