"""Ingest: subscribe to meter readings, write them to PostgreSQL in batches, acknowledge after commit.

Flow (DESIGN.md decision 5)::

    paho network thread: on_message -> parse once -> queue
    writer thread:       queue -> batch -> COPY into a temp stage -> INSERT ... ON CONFLICT DO NOTHING
                         + rejects + devices.last_seen -> COMMIT -> PUBACK every message of the batch

A message is acknowledged only after its rows (or its reject) are committed, so a crash at any point
makes the broker redeliver it; the primary key (device, ts) and ``ON CONFLICT DO NOTHING`` make the
redelivery harmless. Invalid messages are stored in ``rejects`` with the raw payload and the reason.
"""

from __future__ import annotations

import datetime as dt
import logging
import queue
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from scope3lib.broker import MqttParams
from scope3lib.db import libpq_url
from scope3lib.errors import InvalidReading
from scope3lib.readings import parse_payload, parse_topic

log = logging.getLogger("scope3.ingest")

SUBSCRIPTION = "scope3/+/+/readings"
# How long an unknown (tenant, device) pair is remembered before the database is asked again.
_NEGATIVE_CACHE_S = 5.0


@dataclass
class _Message:
    mid: int
    qos: int
    generation: int  # connection the message arrived on; acks never cross a reconnect
    topic: str
    payload: bytes
    received: float
    readings: list[tuple[dt.datetime, float]] | None = None
    tenant: str | None = None
    device: str | None = None
    reason: str | None = None


@dataclass
class IngestStats:
    """Counters for the metrics endpoint and the tests. Updated by the writer thread only."""

    messages_received: int = 0
    messages_committed: int = 0
    rows_written: int = 0
    rows_duplicate: int = 0
    rejects: Counter[str] = field(default_factory=Counter)
    batches: int = 0
    last_batch_seconds: float = 0.0
    db_errors: int = 0


class IngestService:
    """One ingest worker. ``run()`` blocks until ``stop()``; ``start()`` runs it in a thread."""

    def __init__(
        self,
        database_url: str,
        mqtt_params: MqttParams,
        *,
        client_id: str = "scope3-ingest",
        shared_group: str | None = None,
        batch_size: int = 2000,
        batch_ms: int = 200,
        max_payload_bytes: int = 1_048_576,
    ) -> None:
        self.database_url = libpq_url(database_url)
        self.mqtt_params = mqtt_params
        self.client_id = client_id
        self.subscription = f"$share/{shared_group}/{SUBSCRIPTION}" if shared_group else SUBSCRIPTION
        self.batch_size = batch_size
        self.batch_s = batch_ms / 1000
        self.max_payload_bytes = max_payload_bytes
        self.stats = IngestStats()
        self._queue: queue.Queue[_Message | None] = queue.Queue()
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._generation = 0
        self._devices: dict[tuple[str, str], tuple[int, int]] = {}
        self._unknown: dict[tuple[str, str], tuple[float, str, int | None]] = {}
        self._threads: list[threading.Thread] = []
        self._client = self._make_client()

    # --- MQTT side -------------------------------------------------------------------------------

    def _make_client(self) -> mqtt.Client:
        p = self.mqtt_params
        protocol = mqtt.MQTTv5 if p.protocol == 5 else mqtt.MQTTv311
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=protocol,
            clean_session=None if protocol == mqtt.MQTTv5 else False,
            manual_ack=True,
        )
        if p.username:
            client.username_pw_set(p.username, p.password)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        return client

    def _on_connect(self, client: mqtt.Client, userdata: object, flags: object, reason: object,
                    properties: object) -> None:
        if getattr(reason, "is_failure", False):
            log.error("broker refused connection: %s", reason)
            return
        self._generation += 1
        client.subscribe(self.subscription, qos=1)
        self._connected.set()
        log.info("connected to %s:%s, subscribed to %s", self.mqtt_params.host, self.mqtt_params.port,
                 self.subscription)

    def _on_disconnect(self, client: mqtt.Client, userdata: object, flags: object, reason: object,
                       properties: object) -> None:
        self._connected.clear()
        if not self._stop.is_set():
            log.warning("disconnected from broker (%s); reconnecting", reason)

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        m = _Message(mid=msg.mid, qos=msg.qos, generation=self._generation, topic=msg.topic,
                     payload=bytes(msg.payload), received=time.monotonic())
        try:
            t = parse_topic(msg.topic)
            m.tenant, m.device = t.tenant, t.device
            m.readings = parse_payload(m.payload, t.device, max_bytes=self.max_payload_bytes)
        except InvalidReading as exc:
            m.reason = exc.reason
        self._queue.put(m)

    def _connect_properties(self) -> Properties | None:
        if self.mqtt_params.protocol != 5:
            return None
        props = Properties(PacketTypes.CONNECT)
        # Keep the session (and every unacknowledged message) for a week across restarts.
        props.SessionExpiryInterval = 7 * 24 * 3600
        # Let the broker send a whole batch, and the next one, before we acknowledge.
        props.ReceiveMaximum = min(65535, 2 * self.batch_size + 100)
        return props

    # --- database side ---------------------------------------------------------------------------

    def _connect_db(self) -> psycopg.Connection:
        conn = psycopg.connect(self.database_url, autocommit=False)
        conn.execute(
            "CREATE TEMP TABLE IF NOT EXISTS readings_stage "
            "(device_id bigint, ts timestamptz, tenant_id bigint, kwh float8) ON COMMIT DELETE ROWS"
        )
        conn.commit()
        return conn

    def _resolve(self, conn: psycopg.Connection, tenant: str, device: str) -> tuple[int, int] | str:
        """(device id, tenant id) of a topic's device, or the reason it cannot be accepted."""
        key = (tenant, device)
        hit = self._devices.get(key)
        if hit is not None:
            return hit
        miss = self._unknown.get(key)
        if miss is not None and time.monotonic() - miss[0] < _NEGATIVE_CACHE_S:
            return miss[1]
        row = conn.execute(
            "SELECT d.id, d.tenant_id FROM devices d JOIN tenants t ON t.id = d.tenant_id "
            "WHERE t.slug = %s AND d.device_key = %s",
            (tenant, device),
        ).fetchone()
        if row is not None:
            self._devices[key] = (int(row[0]), int(row[1]))
            self._unknown.pop(key, None)
            return self._devices[key]
        tenant_row = conn.execute("SELECT id FROM tenants WHERE slug = %s", (tenant,)).fetchone()
        if tenant_row is None:
            reason = f"unknown tenant {tenant!r}"
        else:
            elsewhere = conn.execute(
                "SELECT 1 FROM devices d JOIN tenants t ON t.id = d.tenant_id "
                "WHERE d.device_key = %s AND t.slug <> %s LIMIT 1",
                (device, tenant),
            ).fetchone()
            reason = (
                f"device {device!r} belongs to another tenant, not {tenant!r}"
                if elsewhere
                else f"unknown device {device!r} for tenant {tenant!r}"
            )
        self._unknown[key] = (time.monotonic(), reason, None if tenant_row is None else int(tenant_row[0]))
        return reason

    def _tenant_id_of(self, conn: psycopg.Connection, tenant: str | None) -> int | None:
        if tenant is None:
            return None
        for (t, _), (_, tid) in self._devices.items():
            if t == tenant:
                return tid
        row = conn.execute("SELECT id FROM tenants WHERE slug = %s", (tenant,)).fetchone()
        return None if row is None else int(row[0])

    def _write(self, conn: psycopg.Connection, batch: list[_Message]) -> None:
        rows: list[tuple[int, dt.datetime, int, float]] = []
        seen: set[int] = set()
        rejects: list[tuple[str, int | None, bytes, str]] = []
        for m in batch:
            if m.reason is None and m.readings is not None and m.tenant and m.device:
                resolved = self._resolve(conn, m.tenant, m.device)
                if isinstance(resolved, str):
                    m.reason = resolved
                else:
                    device_id, tenant_id = resolved
                    seen.add(device_id)
                    rows.extend((device_id, ts, tenant_id, kwh) for ts, kwh in m.readings)
                    continue
            assert m.reason is not None
            rejects.append((m.topic, self._tenant_id_of(conn, m.tenant), m.payload, m.reason))
        inserted = 0
        with conn.cursor() as cur:
            if rows:
                with cur.copy("COPY readings_stage (device_id, ts, tenant_id, kwh) FROM STDIN (FORMAT BINARY)") as cp:
                    cp.set_types(["int8", "timestamptz", "int8", "float8"])
                    for r in rows:
                        cp.write_row(r)
                cur.execute(
                    "INSERT INTO readings (device_id, ts, tenant_id, kwh) "
                    "SELECT device_id, ts, tenant_id, kwh FROM readings_stage ON CONFLICT DO NOTHING"
                )
                inserted = cur.rowcount
                cur.execute("UPDATE devices SET last_seen = now() WHERE id = ANY(%s)", (sorted(seen),))
            if rejects:
                cur.executemany(
                    "INSERT INTO rejects (topic, tenant_id, payload, reason) VALUES (%s, %s, %s, %s)", rejects
                )
        conn.commit()
        self.stats.rows_written += inserted
        self.stats.rows_duplicate += len(rows) - inserted
        for _, _, _, reason in rejects:
            self.stats.rejects[_reason_kind(reason)] += 1

    def _ack(self, batch: list[_Message]) -> None:
        for m in batch:
            # A message that arrived before a reconnect is redelivered on the new connection and
            # acknowledged there; acking its old id could acknowledge a different message.
            if m.qos > 0 and m.generation == self._generation:
                self._client.ack(m.mid, m.qos)

    def _writer(self) -> None:
        conn: psycopg.Connection | None = None
        pending: list[_Message] = []
        backoff = 0.5
        draining = False
        while True:
            # Gather a batch: up to batch_size readings, or whatever arrived within batch_s.
            if not pending:
                deadline = time.monotonic() + self.batch_s
                n = 0
                while n < self.batch_size:
                    timeout = deadline - time.monotonic()
                    try:
                        item = self._queue.get(timeout=max(timeout, 0)) if timeout > 0 else self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if item is None:
                        draining = True
                        break
                    pending.append(item)
                    n += len(item.readings) if item.readings else 1
            if pending:
                try:
                    if conn is None or conn.closed:
                        conn = self._connect_db()
                    started = time.monotonic()
                    self._write(conn, pending)
                    self.stats.batches += 1
                    self.stats.last_batch_seconds = time.monotonic() - started
                    self.stats.messages_received += len(pending)
                    self.stats.messages_committed += len(pending)
                    self._ack(pending)
                    pending = []
                    backoff = 0.5
                except psycopg.OperationalError as exc:
                    # The database went away: keep the batch (nothing was acknowledged) and retry.
                    self.stats.db_errors += 1
                    log.warning("database unavailable (%s); retrying in %.1fs", exc, backoff)
                    if conn is not None:
                        conn.close()
                    conn = None
                    if self._stop.wait(backoff) and draining:
                        break
                    backoff = min(backoff * 2, 10)
                    continue
            if draining and self._queue.empty() and not pending:
                break
        if conn is not None:
            conn.close()

    # --- lifecycle -------------------------------------------------------------------------------

    def start(self) -> IngestService:
        """Connect and run in background threads; returns at once."""
        writer = threading.Thread(target=self._writer, name="ingest-writer", daemon=True)
        writer.start()
        self._threads.append(writer)
        p = self.mqtt_params
        self._client.connect_async(p.host, p.port, keepalive=30,
                                   clean_start=False if p.protocol == 5 else mqtt.MQTT_CLEAN_START_FIRST_ONLY,
                                   properties=self._connect_properties())
        self._client.loop_start()
        return self

    def wait_connected(self, timeout: float = 10) -> bool:
        return self._connected.wait(timeout)

    def stop(self) -> None:
        """Flush and acknowledge what is buffered, then disconnect."""
        self._stop.set()
        self._queue.put(None)
        for t in self._threads:
            t.join(timeout=60)
        self._client.disconnect()
        self._client.loop_stop()

    def run(self) -> None:
        self.start()
        try:
            while not self._stop.wait(1):
                pass
        finally:
            self.stop()


def _reason_kind(reason: str) -> str:
    """A short, bounded label for metrics (the full reason is in the rejects table)."""
    for needle, kind in (
        ("not JSON", "bad_json"), ("not UTF-8", "bad_utf8"), ("missing field", "missing_field"),
        ("must not be negative", "negative_kwh"), ("must be finite", "non_finite"),
        ("unknown device", "unknown_device"), ("another tenant", "wrong_tenant"),
        ("unknown tenant", "unknown_tenant"), ("exceeds", "too_large"), ("future", "future_ts"),
        ("older than", "old_ts"), ("topic", "bad_topic"),
    ):
        if needle in reason:
            return kind
    return "invalid"
