"""Ingest: subscribe to meter readings, write them to PostgreSQL in batches, acknowledge after commit.

Flow (docs/design.md, decision 5)::

    MQTT thread:   PUBLISH -> parse once (topic, JSON, timestamps) -> bounded buffer
    writer thread: buffer -> batch -> COPY (binary) into a temp stage -> INSERT ... ON CONFLICT DO NOTHING
                   + rejects + devices.last_seen -> COMMIT -> PUBACK every message of the batch (one write)

A message is acknowledged only after its rows (or its reject) are committed, so a crash at any point
makes the broker redeliver it (persistent session); the primary key (device, ts) and ``ON CONFLICT DO
NOTHING`` make the redelivery harmless. Invalid messages are stored in ``rejects`` with the raw payload
and the reason; nothing is dropped silently.

Memory is bounded twice: the broker sends at most ``ReceiveMaximum`` unacknowledged messages (MQTT 5,
two batches and a margin, far below paho's 65535 message ids), and the buffer holds at most
``queue_messages``; when it is full the MQTT thread stops reading, so the rest waits at the broker.
While PostgreSQL is unreachable the writer keeps its batch unacknowledged and retries with back-off;
paho reconnects to the broker with back-off (1 s doubling to 30 s), and messages that arrived on a
previous connection are never acknowledged on the new one (the broker redelivers them there).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from scope3lib.db import libpq_url
from scope3lib.errors import InvalidReading
from scope3lib.meters.broker import MqttParams
from scope3lib.meters.contract import READINGS_FILTER, parse_payload, parse_topic
from scope3lib.meters.ingest import STAGE_DDL, LastSeen, write_messages

from .metrics import Histogram, MetricsServer, counter, gauge, labelled_counter
from .mqtt_client import ReceiveClient

log = logging.getLogger("scope3.ingest")

SUBSCRIPTION = READINGS_FILTER
# How long a (tenant, device) lookup is trusted before the database is asked again: a removed or
# revoked device is refused within this time (the broker has already disconnected it).
_KNOWN_CACHE_S = 30.0
_UNKNOWN_CACHE_S = 5.0
_BACKOFF_MAX_S = 10.0


class _Message:
    """One received message, parsed once on the MQTT thread."""

    __slots__ = ("count", "device", "generation", "mid", "newest", "payload", "qos", "readings", "reason",
                 "received", "tenant", "topic")

    def __init__(self, mid: int, qos: int, generation: int, topic: str, payload: bytes, received: float) -> None:
        self.mid, self.qos, self.generation, self.topic = mid, qos, generation, topic
        self.payload: bytes | None = payload  # kept only for a reject
        self.received = received
        self.readings: list[tuple[dt.datetime, float]] | None = None
        self.tenant: str | None = None
        self.device: str | None = None
        self.reason: str | None = None
        self.count = 1
        self.newest: dt.datetime | None = None


@dataclass(frozen=True)
class _Written:
    """What one committed batch wrote."""

    started: float  # time.monotonic() when its successful write began
    inserted: int  # rows inserted
    offered: int  # rows offered (the rest were already stored)
    reasons: list[str]  # of its rejects


@dataclass
class IngestStats:
    """Counters for the metrics endpoint and the tests."""

    messages_received: int = 0  # by the MQTT thread
    messages_committed: int = 0  # the rest by the writer thread
    rows_written: int = 0
    rows_duplicate: int = 0
    rejects: Counter[str] = field(default_factory=Counter)
    batches: int = 0
    last_batch_seconds: float = 0.0
    db_errors: int = 0
    mqtt_connects: int = 0
    batch_seconds: Histogram = field(default_factory=Histogram)
    lag_seconds: Histogram = field(default_factory=Histogram)


class IngestService:
    """One ingest worker. ``run()`` blocks until ``stop()``; ``start()`` runs it in background threads."""

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
        queue_messages: int = 20_000,
        metrics_addr: str | None = None,
        tuned_receive: bool = True,
        writers: int = 2,
    ) -> None:
        self.database_url = libpq_url(database_url)
        self.mqtt_params = mqtt_params
        self.client_id = client_id
        self.subscription = f"$share/{shared_group}/{SUBSCRIPTION}" if shared_group else SUBSCRIPTION
        self.batch_size = batch_size
        self.batch_s = batch_ms / 1000
        self.max_payload_bytes = max_payload_bytes
        self.queue_messages = queue_messages
        self.writers = max(1, writers)
        self.stats = IngestStats()
        self._buf: deque[_Message] = deque()
        # Writers take batches in arrival order, numbered; acknowledgements leave in that order too
        # (MQTT: PUBACKs in the order the PUBLISHes arrived), whichever writer commits first.
        self._take_lock = threading.Lock()
        self._next_seq = 0
        self._ack_lock = threading.Lock()
        self._ack_next = 0
        self._ack_ready: dict[int, list[_Message]] = {}
        self._stats_lock = threading.Lock()
        self._wake = threading.Event()
        self._writer_idle = False
        self._stopping = threading.Event()  # stop taking messages, flush, acknowledge
        self._abandon = threading.Event()  # stop even with an unwritten batch (it stays unacknowledged)
        self._connected = threading.Event()
        self._db_ok = True  # until a write fails
        self._generation = 0
        self._unacked = 0
        self._devices: dict[tuple[str, str], tuple[float, int, int, int | None]] = {}
        self._unknown: dict[tuple[str, str], tuple[float, str, int | None]] = {}
        self._last_seen = LastSeen()
        self._topics: dict[str, tuple[str, str]] = {}
        self._threads: list[threading.Thread] = []
        self._client = self._make_client(tuned_receive)
        self._metrics: MetricsServer | None = None
        if metrics_addr:
            self._metrics = MetricsServer(metrics_addr, self.render_metrics, self.health)

    # --- MQTT side -------------------------------------------------------------------------------

    def _make_client(self, tuned: bool) -> ReceiveClient:
        p = self.mqtt_params
        protocol = mqtt.MQTTv5 if p.protocol == 5 else mqtt.MQTTv311
        client = ReceiveClient(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=protocol,
            clean_session=None if protocol == mqtt.MQTTv5 else False,
            manual_ack=True,
            tuned=tuned,
        )
        if p.username:
            client.username_pw_set(p.username, p.password)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_publish_raw = self._on_publish_raw
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        return client

    @property
    def metrics_port(self) -> int | None:
        return self._metrics.port if self._metrics else None

    def _on_connect(self, client: mqtt.Client, userdata: object, flags: object, reason: object,
                    properties: object) -> None:
        if getattr(reason, "is_failure", False):
            log.error("broker %s:%s refused the connection: %s (check the ingest's MQTT account)",
                      self.mqtt_params.host, self.mqtt_params.port, reason)
            return
        self._generation += 1
        self._unacked = 0
        self.stats.mqtt_connects += 1
        client.subscribe(self.subscription, qos=1)
        self._connected.set()
        log.info("connected to %s:%s, subscribed to %s", self.mqtt_params.host, self.mqtt_params.port,
                 self.subscription)

    def _on_disconnect(self, client: mqtt.Client, userdata: object, flags: object, reason: object,
                       properties: object) -> None:
        self._connected.clear()
        if not self._stopping.is_set():
            log.warning("disconnected from broker (%s); reconnecting with back-off", reason)

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        # paho's full path: messages with MQTT 5 properties, or the untuned client.
        topic = getattr(msg, "_topic", b"")  # bytes as received; msg.topic raises on bad UTF-8
        self._on_publish_raw(bytes(topic), msg.mid, msg.qos, bytes(msg.payload))

    def _on_publish_raw(self, topic_b: bytes, mid: int, qos: int, payload: bytes) -> None:
        if self._stopping.is_set():
            return  # not acknowledged: the broker redelivers it to the next session
        try:
            topic = topic_b.decode("utf-8")
        except UnicodeDecodeError:
            topic = topic_b.decode("utf-8", "replace")
        m = _Message(mid, qos, self._generation, topic, payload, time.time())
        try:
            td = self._topics.get(topic)
            if td is None:
                t = parse_topic(topic)
                td = (t.tenant, t.device)
                if len(self._topics) > 100_000:  # bounded: topics come from outside
                    self._topics.clear()
                self._topics[topic] = td
            m.tenant, m.device = td
            readings = parse_payload(payload, td[1], max_bytes=self.max_payload_bytes)
            m.readings, m.count, m.payload = readings, len(readings), None
            m.newest = readings[0][0] if len(readings) == 1 else max(r[0] for r in readings)
        except InvalidReading as exc:
            m.reason = exc.reason
        buf = self._buf
        buf.append(m)
        self.stats.messages_received += 1
        with self._stats_lock:
            self._unacked += 1
        if self._writer_idle:
            self._wake.set()
        # Back-pressure: stop reading until the writer catches up; the broker keeps the rest. Counted
        # on unacknowledged messages, not just the buffer, so paho's 65535 message ids can never run
        # out even if a broker sends more than the ReceiveMaximum asked for (Mosquitto 2.0.11 does,
        # measured here, when acknowledgements come in large batches).
        while self._unacked >= self.queue_messages and not self._abandon.is_set():
            self._wake.set()
            time.sleep(0.002)

    def _connect_properties(self) -> Properties | None:
        if self.mqtt_params.protocol != 5:
            return None
        props = Properties(PacketTypes.CONNECT)
        # Keep the session (and every unacknowledged message) for a week across restarts.
        props.SessionExpiryInterval = 7 * 24 * 3600
        # Let the broker send a whole batch, and the next one, before we acknowledge; never more than
        # the buffer holds, and always far below paho's 65535 message ids.
        props.ReceiveMaximum = min(self.queue_messages, 2 * self.batch_size + 100, 65535)
        return props

    # --- database side ---------------------------------------------------------------------------

    def _connect_db(self) -> psycopg.Connection:
        conn = psycopg.connect(self.database_url, autocommit=False, connect_timeout=5)
        conn.execute(STAGE_DDL)
        conn.commit()
        return conn

    def _resolve(self, conn: psycopg.Connection, tenant: str, device: str, now: float) -> tuple[int, int] | str:
        """(device id, tenant id) of a topic's device, or the reason it cannot be accepted."""
        key = (tenant, device)
        hit = self._devices.get(key)
        if hit is not None and now - hit[0] < _KNOWN_CACHE_S:
            return hit[1], hit[2]
        miss = self._unknown.get(key)
        if miss is not None and now - miss[0] < _UNKNOWN_CACHE_S:
            return miss[1]
        row = conn.execute(
            "SELECT d.id, d.tenant_id, d.revoked_at IS NOT NULL FROM devices d JOIN tenants t ON t.id = d.tenant_id "
            "WHERE t.slug = %s AND d.device_key = %s",
            (tenant, device),
        ).fetchone()
        if row is not None and not row[2]:
            self._devices[key] = (now, int(row[0]), int(row[1]), None)
            self._unknown.pop(key, None)
            return int(row[0]), int(row[1])
        self._devices.pop(key, None)
        tenant_row = conn.execute("SELECT id FROM tenants WHERE slug = %s", (tenant,)).fetchone()
        if row is not None:
            reason = f"device {device!r} of tenant {tenant!r} is revoked"
        elif tenant_row is None:
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
        self._unknown[key] = (now, reason, None if tenant_row is None else int(tenant_row[0]))
        return reason

    def _tenant_id_of(self, conn: psycopg.Connection, tenant: str | None) -> int | None:
        if tenant is None:
            return None
        for (t, _), (_, _, tid, _) in self._devices.items():
            if t == tenant:
                return tid
        row = conn.execute("SELECT id FROM tenants WHERE slug = %s", (tenant,)).fetchone()
        return None if row is None else int(row[0])

    def _write(self, conn: psycopg.Connection, batch: list[_Message]) -> tuple[int, int, list[str]]:
        """Write one batch in one transaction (the code path the API's HTTP ingest shares); returns (rows
        inserted, rows offered, reject reasons)."""
        now = time.monotonic()
        written = write_messages(conn, batch, lambda tenant, device: self._resolve(conn, tenant, device, now),
                                 lambda tenant: self._tenant_id_of(conn, tenant), self._last_seen.marker())
        return written.inserted, written.offered, written.reasons

    def _take_batch(self) -> tuple[int, list[_Message]]:
        """(sequence number, batch): up to batch_size readings, or whatever arrived within batch_ms of the
        first; an empty batch when stopping. One writer gathers at a time, the others write meanwhile."""
        with self._take_lock:
            batch = self._gather()
            seq = self._next_seq
            if batch:
                self._next_seq += 1
            return seq, batch

    def _gather(self) -> list[_Message]:
        buf = self._buf
        batch: list[_Message] = []
        n = 0
        deadline = 0.0
        while n < self.batch_size:
            if buf:
                m = buf.popleft()
                if not batch:
                    deadline = m.received + self.batch_s
                batch.append(m)
                n += m.count
                continue
            if self._stopping.is_set():
                break
            timeout = deadline - time.time() if batch else 0.5
            if timeout <= 0:
                break
            self._wake.clear()
            self._writer_idle = True
            if not buf:
                self._wake.wait(timeout)
            self._writer_idle = False
        return batch

    def _writer(self) -> None:
        conn: psycopg.Connection | None = None
        while True:
            seq, batch = self._take_batch()
            if not batch:
                if self._stopping.is_set():
                    break
                continue
            conn, written = self._write_until_done(conn, batch)
            if written is None:  # stopping with the batch unwritten: unacknowledged, the broker redelivers it
                return
            committed = time.time()
            self._db_ok = True
            self._count(batch, written, committed)
            self._acknowledge_in_order(seq, batch)
        if conn is not None:
            conn.close()

    def _write_until_done(self, conn: psycopg.Connection | None,
                          batch: list[_Message]) -> tuple[psycopg.Connection | None, _Written | None]:
        """Write ``batch``, retrying with back-off until it is committed (or ``stop`` gives up: None).

        Returns the connection to write the next batch with, and what was written.
        """
        backoff = 0.5
        refused = 0
        while True:
            try:
                if conn is None or conn.closed:
                    conn = self._connect_db()
                started = time.monotonic()
                inserted, offered, reasons = self._write(conn, batch)
                return conn, _Written(started, inserted, offered, reasons)
            except psycopg.errors.IntegrityError as exc:
                # A cached device was deleted meanwhile: forget the cache and resolve again. Should
                # the database still refuse, keep the batch's messages as rejects, never drop them.
                refused += 1
                first_line = str(exc).splitlines()[0]
                log.info("batch refused (%s); resolving devices again", first_line)
                conn.rollback()  # type: ignore[union-attr]
                self._resolve_again(batch, refused, first_line)
            except psycopg.OperationalError as exc:
                # The database went away: keep the batch (nothing was acknowledged) and retry.
                self.stats.db_errors += 1
                self._db_ok = False
                log.warning("database unavailable (%s); retrying in %.1fs", str(exc).strip(), backoff)
                if conn is not None:
                    conn.close()
                conn = None
                if self._abandon.wait(backoff):
                    log.warning("stopping with %d unwritten messages; the broker will redeliver them",
                                len(batch) + len(self._buf))
                    return None, None
                backoff = min(backoff * 2, _BACKOFF_MAX_S)
            except psycopg.Error as exc:
                # Anything else (privileges, a schema out of date): the writer must not die with
                # the batch, which stays unacknowledged; /healthz reports the database down.
                self.stats.db_errors += 1
                self._db_ok = False
                log.error("cannot write batch (%s: %s); retrying in %.1fs", type(exc).__name__,
                          str(exc).strip(), backoff)
                if conn is not None:
                    conn.close()
                conn = None
                if self._abandon.wait(backoff):
                    return None, None
                backoff = min(backoff * 2, _BACKOFF_MAX_S)

    def _resolve_again(self, batch: list[_Message], refused: int, first_line: str) -> None:
        """After the database refused ``batch`` (``refused`` times): forget the device caches and
        resolve its messages again; from the third refusal on, its messages become rejects."""
        self._devices.clear()
        self._last_seen.forget()
        for m in batch:
            if refused >= 3:
                m.reason = m.reason or f"database refused the batch: {first_line}"
            elif m.reason and m.readings is not None:
                m.reason = None

    def _count(self, batch: list[_Message], written: _Written, committed: float) -> None:
        with self._stats_lock:
            st = self.stats
            st.batches += 1
            st.last_batch_seconds = time.monotonic() - written.started
            st.batch_seconds.observe(st.last_batch_seconds)
            st.messages_committed += len(batch)
            st.rows_written += written.inserted
            st.rows_duplicate += written.offered - written.inserted
            for reason in written.reasons:
                st.rejects[_reason_kind(reason)] += 1
            st.lag_seconds.observe_many([committed - m.newest.timestamp() for m in batch
                                         if m.newest is not None])

    def _acknowledge_in_order(self, seq: int, batch: list[_Message]) -> None:
        with self._ack_lock:
            self._ack_ready[seq] = batch
            while self._ack_next in self._ack_ready:
                self._ack(self._ack_ready.pop(self._ack_next))
                self._ack_next += 1

    def _ack(self, batch: list[_Message]) -> None:
        gen = self._generation
        # A message that arrived before a reconnect is redelivered on the new connection and
        # acknowledged there; acking its old id could acknowledge a different message.
        mids = [m.mid for m in batch if m.qos > 0 and m.generation == gen]
        with self._stats_lock:
            self._unacked -= len(mids)
        self._client.ack_many(mids)

    # --- health and metrics ----------------------------------------------------------------------

    def health(self) -> tuple[bool, str]:
        mqtt_ok, db_ok = self._connected.is_set(), self._db_ok
        detail = f"mqtt={'up' if mqtt_ok else 'down'} database={'up' if db_ok else 'down'}"
        return mqtt_ok and db_ok, detail

    def render_metrics(self) -> str:
        st = self.stats
        p = "scope3_ingest_"
        lines = [
            *counter(p + "messages_received_total", "MQTT messages received.", st.messages_received),
            *counter(p + "messages_committed_total", "Messages whose rows or reject are committed and acknowledged.",
                     st.messages_committed),
            *counter(p + "rows_written_total", "Readings inserted into the readings table.", st.rows_written),
            *counter(p + "rows_duplicate_total", "Readings already stored (replays), skipped.", st.rows_duplicate),
            *labelled_counter(p + "rejects_total", "Messages refused and kept in rejects, by reason.", "reason",
                              dict(st.rejects)),
            *counter(p + "batches_total", "Committed batches.", st.batches),
            *st.batch_seconds.render(p + "batch_seconds", "Seconds to write and commit one batch."),
            *st.lag_seconds.render(p + "lag_seconds",
                                   "Seconds from a message's newest reading timestamp to its commit."),
            *gauge(p + "queue_messages", "Messages parsed and waiting for the writer.", len(self._buf)),
            *gauge(p + "unacknowledged_messages", "Messages received on this connection and not yet acknowledged.",
                   self._unacked),
            *counter(p + "db_errors_total", "Failed database writes (retried).", st.db_errors),
            *counter(p + "mqtt_connects_total", "Successful connections to the broker.", st.mqtt_connects),
            *gauge(p + "mqtt_connected", "1 while connected to the broker.", int(self._connected.is_set())),
        ]
        return "\n".join(lines) + "\n"

    # --- lifecycle -------------------------------------------------------------------------------

    def start(self) -> IngestService:
        """Connect and run in background threads; returns at once."""
        if self._metrics is not None:
            self._metrics.start()
        for i in range(self.writers):
            writer = threading.Thread(target=self._writer, name=f"ingest-writer-{i}", daemon=True)
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

    def stop(self, timeout: float = 60) -> None:
        """Stop taking messages, write and acknowledge what is buffered, then disconnect.

        Messages that cannot be written within ``timeout`` (database down) stay unacknowledged, so the
        broker redelivers them to the next session.
        """
        self._stopping.set()
        self._wake.set()
        for t in self._threads:
            t.join(timeout=timeout)
            if t.is_alive():
                self._abandon.set()
                t.join(timeout=15)
        self._abandon.set()
        # PUBACKs queued by the writer go out before the DISCONNECT (paho sends packets in order).
        self._client.disconnect()
        self._client.loop_stop()
        if self._metrics is not None:
            self._metrics.stop()

    def run(self) -> None:
        self.start()
        try:
            while not self._stopping.wait(1):
                pass
        finally:
            self.stop()


def _reason_kind(reason: str) -> str:
    """A short, bounded label for metrics (the full reason is in the rejects table)."""
    for needle, kind in (
        ("not JSON", "bad_json"), ("not valid JSON", "bad_json"), ("nested too deeply", "bad_json"),
        ("not UTF-8", "bad_utf8"), ("missing field", "missing_field"), ("unknown fields", "unknown_field"),
        ("must not be negative", "negative_kwh"), ("must be finite", "non_finite"), ("is not allowed", "non_finite"),
        ("must be a number", "wrong_type"), ("must be an RFC 3339 string", "wrong_type"),
        ("must be an object", "wrong_type"), ("must be a JSON object", "wrong_type"), ("must be a list", "wrong_type"),
        ("is revoked", "revoked_device"), ("unknown device", "unknown_device"), ("another tenant", "wrong_tenant"),
        ("unknown tenant", "unknown_tenant"), ("byte limit", "too_large"), ("exceeds", "out_of_range"),
        ("too large", "out_of_range"), ("in the future", "future_ts"), ("older than", "old_ts"),
        ("RFC 3339", "bad_ts"), ("valid date", "bad_ts"), ("topic", "bad_topic"), ("names device", "wrong_device"),
        ("'readings'", "bad_batch"),
    ):
        if needle in reason:
            return kind
    return "invalid"
