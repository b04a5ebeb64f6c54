"""Benchmark: meter readings through Mosquitto into PostgreSQL, every scenario measured in one run.

    .venv/bin/python bench/ingest.py [--quick] [--readings 200000] [--devices 1000]

Broker (Mosquitto with the configuration of `scope3 broker config`: accounts, ACL, persistence,
max_queued_messages 0), publishers, subscriber or ingest, and PostgreSQL share this machine. QoS 1
throughout. Scenarios, each on a fresh subscription:

  A   a stock paho-mqtt subscriber that only counts (the receive ceiling the issue names)
  A*  the ingest's tuned paho client (buffered reads, lean PUBLISH decoding) that only counts
  B   the ingest service (`scope3 ingest`), one reading per message
  C   the ingest service, messages of 10 readings
  D   a naive subscriber: stock paho, INSERT and COMMIT per message
  S1/S2  the ingest through the shared subscription $share/ingest/..., one worker vs two
  L   latency: readings stamped at publish time, paced at 80% of B's rate; publish-to-commit p99

The publishers are raw MQTT 3.1.1 clients in their own processes (pre-built PUBLISH packets, up to
20,000 unacknowledged), so publishing costs little of the two cores. Rates are readings stored (or
received, for A) divided by the time from the first publish to the last commit (or receipt).
Loss is readings published and acknowledged by the broker but not stored; duplicates are rows stored
twice (impossible by the primary key, so checked by distinct count) or, for A, messages received twice.

PostgreSQL: a private embedded server (pgserver) in a temporary directory, so other users of the
machine's shared server neither slow the run nor count in its CPU figures; SCOPE3_BENCH_DATABASE_URL
(an admin URL) runs against another server instead (a fresh database is created and dropped).
CPU seconds per component (broker, publishers, subscriber or ingest, PostgreSQL) are printed for each
scenario, read from /proc.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import getpass
import json
import multiprocessing as mp
import os
import secrets
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from scope3lib import db, schema, tenancy  # noqa: E402
from scope3lib.meters.broker import MqttParams, free_port, port_open, write_broker_config  # noqa: E402
from scope3lib.meters.credentials import mosquitto_hash  # noqa: E402

TENANT = "bench"
PUBLISHER = "bench-publisher"
WINDOW = 20_000


# --- a raw MQTT 3.1.1 publisher --------------------------------------------------------------------


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n % 128, n // 128
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _mqtt_str(s: str | bytes) -> bytes:
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("!H", len(b)) + b


def _connect_packet(client_id: str, user: str, password: str) -> bytes:
    body = _mqtt_str("MQTT") + bytes([4, 0xC2]) + struct.pack("!H", 60)
    body += _mqtt_str(client_id) + _mqtt_str(user) + _mqtt_str(password)
    return b"\x10" + _varint(len(body)) + body


def _publish_packet(topic: bytes, pid: int, payload: bytes) -> bytes:
    body = struct.pack("!H", len(topic)) + topic + struct.pack("!H", pid) + payload
    return b"\x32" + _varint(len(body)) + body


def _ts(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def reading_kwh(device: int, j: int) -> float:
    return round(0.05 + ((device * 7919 + j * 104729) % 1000) / 1000, 6)


def payloads(devices_: range, per_device: int, batch: int, base: float) -> Iterator[tuple[int, bytes]]:
    """(device, payload) for every reading of ``devices_``, ``batch`` readings per message, devices interleaved."""
    for j0 in range(0, per_device, batch):
        for d in devices_:
            items = [{"ts": _ts(base + j * 60), "kwh": reading_kwh(d, j)}
                     for j in range(j0, min(j0 + batch, per_device))]
            body = items[0] if batch == 1 else {"readings": items}
            yield d, json.dumps(body, separators=(",", ":")).encode()


def publisher_main(port: int, password: str, devices_: range, per_device: int, batch: int, base: float,
                   go: mp.synchronize.Event, rate: float, out: mp.Queue) -> None:  # type: ignore[type-arg]
    """Publish every reading of ``devices_`` (QoS 1) when ``go`` is set; ``rate`` > 0 paces messages/s and
    stamps readings with the current time (the latency run)."""
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.sendall(_connect_packet(f"pub-{os.getpid()}", PUBLISHER, password))
    connack = s.recv(4)
    if len(connack) < 4 or connack[3] != 0:
        out.put(("error", f"publisher refused: {connack!r}"))
        return
    topics = {d: f"scope3/{TENANT}/d{d:04d}/readings".encode() for d in devices_}
    acked = 0
    total = 0

    def reader() -> None:
        nonlocal acked
        pending = b""
        while True:
            data = s.recv(1 << 16)
            if not data:
                return
            pending += data
            k = len(pending) // 4
            acked += k
            pending = pending[4 * k:]

    threading.Thread(target=reader, daemon=True).start()
    if rate <= 0:
        packets = [_publish_packet(topics[d], i % 65535 + 1, p)
                   for i, (d, p) in enumerate(payloads(devices_, per_device, batch, base))]
        total = len(packets)
        out.put(("ready", total))
        go.wait()
        cpu0 = time.process_time()
        for k in range(0, total, 500):
            while k - acked > WINDOW:
                time.sleep(0.0005)
            s.sendall(b"".join(packets[k:k + 500]))
    else:
        # Paced, stamped with the time of sending. Everything but the timestamp is prepared before
        # `go`, and one timestamp serves a whole 2 ms chunk (a device appears at most once in it), so
        # the publisher costs little of the CPU the broker and the ingest need.
        devs = list(devices_)
        total = len(devs) * per_device
        heads = {d: b'{"ts":"' for d in devs}
        tails = [b'","kwh":' + repr(reading_kwh(devs[i % len(devs)], i // len(devs))).encode() + b"}"
                 for i in range(total)]
        out.put(("ready", total))
        go.wait()
        cpu0 = time.process_time()
        started = time.time()
        i = 0
        while i < total:
            due = min(int((time.time() - started) * rate) + 1, total, i + len(devs))
            if due > i:
                stamp = _ts(time.time()).encode()
                s.sendall(b"".join(_publish_packet(topics[devs[k % len(devs)]], k % 65535 + 1,
                                                   heads[devs[k % len(devs)]] + stamp + tails[k])
                                   for k in range(i, due)))
                i = due
            time.sleep(0.002)
    deadline = time.time() + 120
    while acked < total and time.time() < deadline:
        time.sleep(0.01)
    out.put(("done", (acked, time.process_time() - cpu0)))
    s.close()


# --- subscribers ---------------------------------------------------------------------------------


def _wait_for(state: Mapping[str, float], expected: int, idle_s: float = 10) -> None:
    """Until ``state["n"]`` reaches ``expected``, or has not moved for ``idle_s`` (messages lost)."""
    idle_since, last_n = time.time(), 0
    while state["n"] < expected:
        time.sleep(0.05)
        if state["n"] != last_n:
            last_n, idle_since = state["n"], time.time()
        elif time.time() - idle_since > idle_s:
            break


def counter_main(params: MqttParams, expected: int, tuned: bool, out: mp.Queue) -> None:  # type: ignore[type-arg]
    """Count messages (and distinct ones) until ``expected`` arrived or 10 s pass without one."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from ingest_service.mqtt_client import ReceiveClient

    seen: set[int] = set()
    state = {"n": 0, "last": 0.0}

    def on_message(c: object, u: object, m: mqtt.MQTTMessage) -> None:
        state["n"] += 1
        state["last"] = time.time()
        seen.add(hash((m.topic, bytes(m.payload))))

    def on_raw(topic: bytes, mid: int, qos: int, payload: bytes) -> None:
        state["n"] += 1
        state["last"] = time.time()
        seen.add(hash((topic, payload)))

    cls = ReceiveClient if tuned else mqtt.Client
    kwargs = {"tuned": True} if tuned else {}
    c = cls(CallbackAPIVersion.VERSION2, client_id=f"count-{secrets.token_hex(3)}", protocol=mqtt.MQTTv5,
            **kwargs)
    c.username_pw_set(params.username, params.password)
    c.on_message = on_message
    if tuned:
        c.on_publish_raw = on_raw  # type: ignore[attr-defined]
    c.connect(params.host, params.port)
    c.subscribe("scope3/+/+/readings", qos=1)
    c.loop_start()
    time.sleep(0.5)
    out.put(("ready", 0))
    _wait_for(state, expected)
    out.put(("done", (state["n"], len(seen), state["last"])))
    c.disconnect()
    c.loop_stop()


def naive_main(params: MqttParams, database_url: str, expected: int, out: mp.Queue) -> None:  # type: ignore[type-arg]
    """Stock paho; for each message parse, INSERT and COMMIT, then (automatically) acknowledge."""
    import paho.mqtt.client as mqtt
    import psycopg
    from paho.mqtt.enums import CallbackAPIVersion

    from scope3lib.meters.contract import parse_payload, parse_topic

    conn = psycopg.connect(database_url, autocommit=False)
    ids = {key: (i, t) for i, t, key in conn.execute("SELECT id, tenant_id, device_key FROM devices")}
    state = {"n": 0}

    def on_message(c: object, u: object, m: mqtt.MQTTMessage) -> None:
        t = parse_topic(m.topic)
        device_id, tenant_id = ids[t.device]
        for ts, kwh in parse_payload(bytes(m.payload), t.device):
            conn.execute("INSERT INTO readings (device_id, ts, tenant_id, kwh) VALUES (%s, %s, %s, %s) "
                         "ON CONFLICT DO NOTHING", (device_id, ts, tenant_id, kwh))
        conn.commit()
        state["n"] += 1

    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"naive-{secrets.token_hex(3)}", protocol=mqtt.MQTTv5)
    c.username_pw_set(params.username, params.password)
    c.on_message = on_message
    c.connect(params.host, params.port)
    c.subscribe("scope3/+/+/readings", qos=1)
    c.loop_start()
    time.sleep(0.5)
    out.put(("ready", 0))
    _wait_for(state, expected)
    out.put(("done", state["n"]))
    time.sleep(2)  # keep the database session open while the harness reads CPU times
    c.disconnect()
    c.loop_stop()


# --- the harness ---------------------------------------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds used so far by ``pids`` (Linux /proc)."""
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / _TICK
    return total


def postgres_pids(pgdata: Path | None) -> list[int]:
    """The private server's postmaster and its children, or every postgres process when it is not ours."""
    master = None
    if pgdata is not None:
        with contextlib.suppress(OSError, ValueError):
            master = int((pgdata / "postmaster.pid").read_text().split()[0])
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                if (d / "comm").read_text().strip() != "postgres":
                    continue
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
                if master is None or int(d.name) == master or ppid == master:
                    out.append(int(d.name))
    return out


class CpuWindow:
    """CPU seconds each component uses between ``start()`` and ``stop()``."""

    def __init__(self, groups: dict[str, list[int]], pgdata: Path | None) -> None:
        self.groups, self.pgdata = groups, pgdata
        self.before = {k: cpu_seconds(v) for k, v in groups.items()}
        self.pg_before = {pid: cpu_seconds([pid]) for pid in postgres_pids(pgdata)}

    def stop(self, publishers_cpu: float) -> dict[str, float]:
        used = {k: cpu_seconds(v) - self.before[k] for k, v in self.groups.items()}
        used["publishers"] = publishers_cpu  # they report their own: they have exited by now
        # Backends that exited meanwhile are not counted (their time is gone from /proc).
        used["postgres"] = sum(cpu_seconds([pid]) - self.pg_before.get(pid, 0.0) for pid in postgres_pids(self.pgdata))
        return used


@dataclass
class Result:
    name: str
    readings: int
    stored: int
    duplicates: int
    seconds: float
    note: str = ""
    cpu: dict[str, float] | None = None

    @property
    def rate(self) -> float:
        return self.stored / self.seconds if self.seconds > 0 else 0.0

    @property
    def loss(self) -> int:
        return self.readings - self.stored


class Bench:
    def __init__(self, readings: int, n_devices: int, workdir: Path) -> None:
        self.ingest_pids: list[int] = []
        self.publisher_cpu = 0.0
        self.readings, self.n_devices, self.workdir = readings, n_devices, workdir
        self.per_device = readings // n_devices
        self.ctx = mp.get_context("spawn")
        self.server_url, self.cleanup_pg = self._server()
        self.db_name = f"s3bench_{secrets.token_hex(3)}"
        with db.create_engine(self.server_url, isolation_level="AUTOCOMMIT").connect() as c:
            c.execute(sa.text(f'CREATE DATABASE "{self.db_name}"'))
        self.url = db.libpq_url(sa.engine.make_url(db.sqlalchemy_url(self.server_url)).set(database=self.db_name))
        self.engine = db.create_engine(self.url)
        schema.upgrade(self.engine)
        tenancy.create_tenant(self.engine, workdir, TENANT, "Bench", "enterprise")
        self.ingest_url = tenancy.ingest_database_url(self.engine, workdir)
        self._devices()
        self.port = free_port()
        cfg = write_broker_config(self.engine, workdir / "mosquitto", port=self.port, user=getpass.getuser(),
                                  rotate_ingest=True)
        assert cfg.ingest_url
        self.ingest_params = MqttParams("127.0.0.1", self.port, "scope3-ingest",
                                        cfg.ingest_url.split("@")[0].rsplit(":", 1)[1])
        # The load generator publishes for every bench device: one extra account, bench only.
        self.pub_password = secrets.token_urlsafe(12)
        with cfg.files.password_file.open("a") as f:
            f.write(f"{PUBLISHER}:{mosquitto_hash(self.pub_password)}\n")
        with cfg.files.acl_file.open("a") as f:
            f.write(f"\nuser {PUBLISHER}\ntopic write scope3/{TENANT}/#\n")
        self.mosquitto = subprocess.Popen([shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-c",
                                           str(cfg.files.conf)], stdout=subprocess.DEVNULL,
                                          stderr=open(workdir / "mosquitto.log", "wb"))  # noqa: SIM115
        deadline = time.time() + 10
        while not port_open("127.0.0.1", self.port):
            if time.time() > deadline or self.mosquitto.poll() is not None:
                raise RuntimeError((workdir / "mosquitto.log").read_text())
            time.sleep(0.05)

    def _server(self) -> tuple[str, bool]:
        url = os.environ.get("SCOPE3_BENCH_DATABASE_URL")
        self.pgdata: Path | None = None
        if url:
            return db.libpq_url(url), False
        where = Path(tempfile.mkdtemp(prefix="scope3-bench-pg-"))
        self.pgdata = where / "postgres"
        return db.embedded_postgres(where), True

    def _devices(self) -> None:
        with self.engine.begin() as c:
            tid = c.scalar(sa.text("SELECT id FROM tenants WHERE slug = :s"), {"s": TENANT})
            h = mosquitto_hash(secrets.token_urlsafe(8))  # devices never log in: the publisher does
            c.execute(sa.text("INSERT INTO devices (tenant_id, device_key, grid_region, category, expected_interval_s, "
                              "credential_hash) SELECT :t, 'd' || lpad(g::text, 4, '0'), 'CAMX', 1, 60, :h "
                              "FROM generate_series(0, :n - 1) g"), {"t": tid, "h": h, "n": self.n_devices})

    def close(self) -> None:
        self.mosquitto.terminate()
        self.mosquitto.wait(10)
        self.engine.dispose()
        with db.create_engine(self.server_url, isolation_level="AUTOCOMMIT").connect() as c:
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)'))
            prefix = schema.prefix_for_database(self.db_name)
            for role in c.scalars(sa.text("SELECT rolname FROM pg_roles WHERE starts_with(rolname, :p)"),
                                  {"p": prefix + "_"}).all():
                c.execute(sa.text(f'DROP ROLE IF EXISTS "{role}"'))

    # --- pieces ------------------------------------------------------------------------------------

    def truncate(self) -> None:
        with self.engine.begin() as c:
            c.execute(sa.text("TRUNCATE readings"))
            c.execute(sa.text("DELETE FROM rejects"))

    def publishers(self, batch: int, rate: float = 0.0, procs: int = 2, per_device: int | None = None,
                   base: float | None = None) -> tuple[list[mp.Process], mp.synchronize.Event, mp.Queue, int]:  # type: ignore[type-arg]
        go, out = self.ctx.Event(), self.ctx.Queue()
        base = base if base is not None else time.time() - 3 * 86400
        step = -(-self.n_devices // procs)
        ps = []
        for k in range(procs):
            devs = range(k * step, min((k + 1) * step, self.n_devices))
            p = self.ctx.Process(target=publisher_main, args=(self.port, self.pub_password, devs,
                                                             per_device or self.per_device,
                                                             batch, base, go, rate / procs, out), daemon=True)
            p.start()
            ps.append(p)
        total = 0
        for _ in ps:
            kind, n = out.get(timeout=300)
            if kind == "error":
                raise RuntimeError(n)
            total += n
        return ps, go, out, total

    def finish_publishers(self, ps: list[mp.Process], out: mp.Queue) -> int:  # type: ignore[type-arg]
        acked = 0
        self.publisher_cpu = 0.0
        for _ in ps:
            kind, n = out.get(timeout=300)
            if kind == "error":
                raise RuntimeError(n)
            acked += n[0]
            self.publisher_cpu += n[1]
        for p in ps:
            p.join(10)
        return acked

    def stored(self) -> tuple[int, int, float | None]:
        with self.engine.connect() as c:
            n, distinct, last = c.execute(sa.text(
                "SELECT count(*), count(DISTINCT (device_id, ts)), extract(epoch FROM max(received_at)) "
                "FROM readings")).one()
        return int(n), int(distinct), None if last is None else float(last)

    def wait_stored(self, expected: int, idle_s: float = 15) -> None:
        last, since = -1, time.time()
        while True:
            time.sleep(0.25)
            with self.engine.connect() as c:
                n = int(c.scalar(sa.text("SELECT count(*) FROM readings")) or 0)
            if n >= expected:
                return
            if n != last:
                last, since = n, time.time()
            elif time.time() - since > idle_s:
                return

    @contextlib.contextmanager
    def ingest(self, workers: int = 1, shared: bool = False) -> Iterator[list[int]]:
        """``workers`` `scope3 ingest` processes; yields their metrics ports (their pids in ``self.ingest_pids``)."""
        procs, ports = [], []
        group = f"ingest-{secrets.token_hex(3)}"
        for _ in range(workers):
            mport = free_port()
            env = {k: v for k, v in os.environ.items() if not k.startswith("SCOPE3_")}
            env.update(SCOPE3_DATABASE_URL=self.url, SCOPE3_DATA_DIR=str(self.workdir),
                       SCOPE3_INGEST_DATABASE_URL=self.ingest_url, SCOPE3_MQTT_URL=self.ingest_params.url(),
                       SCOPE3_INGEST_CLIENT_ID=f"ingest-{secrets.token_hex(3)}",
                       SCOPE3_INGEST_METRICS_ADDR=f"127.0.0.1:{mport}")
            if shared:
                # A group of its own: Mosquitto keeps giving a share of the messages to the offline
                # persistent sessions of an earlier scenario's workers in the same group.
                env["SCOPE3_INGEST_SHARED_GROUP"] = group
            log = open(self.workdir / f"ingest-{mport}.log", "wb")  # noqa: SIM115 - kept open for the process
            procs.append(subprocess.Popen([sys.executable, "-m", "scope3lib", "ingest"], env=env,
                                          stdout=subprocess.DEVNULL, stderr=log))
            ports.append(mport)
        self.ingest_pids = [p.pid for p in procs]
        for mport in ports:
            deadline = time.time() + 30
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{mport}/healthz", timeout=1) as r:
                        if r.status == 200:
                            break
                except OSError:
                    pass
                if time.time() > deadline:
                    text = (self.workdir / f"ingest-{mport}.log").read_text()
                    raise RuntimeError(f"ingest did not become healthy: {text}")
                time.sleep(0.1)
        time.sleep(0.5)  # SUBACK
        try:
            yield ports
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                p.wait(60)
        self.ingest_pids = []

    @staticmethod
    def metrics(port: int) -> dict[str, float]:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            text = r.read().decode()
        out: dict[str, float] = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                out[name] = float(value)
        return out

    # --- scenarios ---------------------------------------------------------------------------------

    def window(self, subscriber: list[int]) -> CpuWindow:
        return CpuWindow({"broker": [self.mosquitto.pid], "subscriber": subscriber}, self.pgdata)

    def run_counter(self, name: str, tuned: bool) -> Result:
        out = self.ctx.Queue()
        sub = self.ctx.Process(target=counter_main, args=(self.ingest_params, self.readings, tuned, out), daemon=True)
        sub.start()
        out.get(timeout=60)
        ps, go, pout, _ = self.publishers(batch=1)
        cpu = self.window([sub.pid or 0])
        t0 = time.time()
        go.set()
        acked = self.finish_publishers(ps, pout)
        _, (n, distinct, last) = out.get(timeout=600)
        used = cpu.stop(self.publisher_cpu)
        sub.join(10)
        return Result(name, acked, distinct, n - distinct, last - t0, cpu=used)

    def run_ingest(self, name: str, batch: int, workers: int = 1, shared: bool = False) -> Result:
        self.truncate()
        with self.ingest(workers, shared) as ports:
            ps, go, pout, _ = self.publishers(batch=batch)
            cpu = self.window(self.ingest_pids)
            t0 = time.time()
            go.set()
            acked_msgs = self.finish_publishers(ps, pout)
            self.wait_stored(self.readings)
            used = cpu.stop(self.publisher_cpu)
            n, distinct, last = self.stored()
            replays = sum(self.metrics(p).get("scope3_ingest_rows_duplicate_total", 0) for p in ports)
        return Result(name, acked_msgs * batch, distinct, n - distinct, (last or t0) - t0,
                      note=f"{int(replays)} redelivered readings absorbed" if replays else "", cpu=used)

    def run_naive(self, readings: int) -> Result:
        self.truncate()
        out = self.ctx.Queue()
        sub = self.ctx.Process(target=naive_main, args=(self.ingest_params, self.ingest_url, readings, out),
                               daemon=True)
        sub.start()
        out.get(timeout=60)
        ps, go, pout, _ = self.publishers(batch=1, per_device=readings // self.n_devices)
        cpu = self.window([sub.pid or 0])
        t0 = time.time()
        go.set()
        acked = self.finish_publishers(ps, pout)
        out.get(timeout=3600)
        used = cpu.stop(self.publisher_cpu)
        sub.join(10)
        n, distinct, last = self.stored()
        return Result("D naive", acked, distinct, n - distinct, (last or t0) - t0, cpu=used)

    def run_latency(self, rate: float) -> tuple[Result, dict[str, float]]:
        self.truncate()
        with self.ingest() as ports:
            ps, go, pout, total = self.publishers(batch=1, rate=rate)
            t0 = time.time()
            go.set()
            acked = self.finish_publishers(ps, pout)
            self.wait_stored(total)
            m = self.metrics(ports[0])
        with self.engine.connect() as c:
            lags = [float(v) for v in c.scalars(sa.text(
                "SELECT extract(epoch FROM received_at - ts) FROM readings ORDER BY 1")).all()]
            n, distinct, last = self.stored()
        # The service's own histogram of newest-reading-to-COMMIT lag, read as "share within 1 s".
        count = m.get("scope3_ingest_lag_seconds_count", 0.0)
        within_1s = m.get('scope3_ingest_lag_seconds_bucket{le="1.0"}', 0.0) / count if count else 0.0
        q = statistics.quantiles(lags, n=100) if len(lags) > 100 else [max(lags or [0.0])] * 99
        stats = {"rate": rate, "p50": q[49], "p99": q[98], "max": max(lags or [0.0]), "within_1s": within_1s}
        return Result("L latency", acked, distinct, n - distinct, (last or t0) - t0), stats


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--readings", type=int, default=200_000)
    ap.add_argument("--devices", type=int, default=1_000)
    ap.add_argument("--quick", action="store_true", help="20,000 readings: a smoke run")
    ap.add_argument("--naive-readings", type=int, default=20_000,
                    help="readings for D, which commits each message (at ~400/s here 200,000 take ~8 minutes)")
    ap.add_argument("--only", default="", help="comma-separated scenarios to run (A,A*,B,C,S,D,L); default all")
    args = ap.parse_args()
    readings = 20_000 if args.quick else args.readings
    workdir = Path(tempfile.mkdtemp(prefix="scope3-bench-"))
    print(f"{readings:,} readings from {args.devices:,} devices, QoS 1, on {os.cpu_count()} cores "
          f"(work files in {workdir}); load average before: {os.getloadavg()[0]:.1f}", flush=True)
    bench = Bench(readings, args.devices, workdir)
    only = {x.strip() for x in args.only.split(",") if x.strip()}
    steps = [
        ("A", lambda: bench.run_counter("A paho count", tuned=False)),
        ("A*", lambda: bench.run_counter("A* tuned count", tuned=True)),
        ("B", lambda: bench.run_ingest("B ingest 1/msg", 1)),
        ("C", lambda: bench.run_ingest("C ingest 10/msg", 10)),
        ("S", lambda: bench.run_ingest("S1 shared, 1 worker", 1, workers=1, shared=True)),
        ("S", lambda: bench.run_ingest("S2 shared, 2 workers", 1, workers=2, shared=True)),
        ("D", lambda: bench.run_naive(min(readings, args.naive_readings))),
    ]
    results: list[Result] = []
    lat: Result | None = None
    lstats: dict[str, float] = {}
    try:
        for key, step in steps:
            if only and key not in only:
                continue
            r = step()
            results.append(r)
            print(f"  {r.name:<22} {r.rate:>9,.0f} readings/s  loss {r.loss}  duplicates {r.duplicates}"
                  f"  ({r.stored:,} in {r.seconds:.2f} s){'  ' + r.note if r.note else ''}", flush=True)
            if r.cpu:
                print("  " + " " * 22 + " cpu s: " + ", ".join(f"{k} {v:.1f}" for k, v in r.cpu.items()), flush=True)
        by = {r.name.split()[0]: r for r in results}
        if "B" in by and (not only or "L" in only):
            lat, lstats = bench.run_latency(0.8 * by["B"].rate)
            print(f"  {lat.name:<22} {lat.rate:>9,.0f} readings/s  loss {lat.loss}  duplicates {lat.duplicates}"
                  f"  (paced at {lstats['rate']:,.0f}/s)", flush=True)
    finally:
        bench.close()
    print("\nratios (same run):")

    def ratio(label: str, x: str, y: str, note: str = "") -> None:
        if x in by and y in by and by[y].rate:
            print(f"  {label:<6}{by[x].rate / by[y].rate:6.2f}   {note}")

    ratio("B/A", "B", "A", "(target >= 0.9; A = stock paho counting only)")
    ratio("B/A*", "B", "A*", "(A* = the ingest's tuned paho client counting only)")
    ratio("B/D", "B", "D")
    ratio("C/B", "C", "B", f"(C = {by['C'].rate:,.0f} readings/s; target >= 60,000)" if "C" in by else "")
    ratio("S2/S1", "S2", "S1", "(two workers sharing $share/<group>/scope3/+/+/readings vs one)")
    if lat is not None:
        print(f"latency at 80% of B ({lstats['rate']:,.0f} readings/s): publish->commit p50 "
              f"{lstats['p50'] * 1000:.0f} ms, p99 {lstats['p99'] * 1000:.0f} ms, max {lstats['max'] * 1000:.0f} ms "
              f"(target p99 < 1 s; the service's own histogram: {lstats['within_1s']:.1%} committed within 1 s)")
    print(f"load average after: {os.getloadavg()[0]:.1f} (other work on the machine lowers every figure)")
    bad = [r.name for r in [*results, *([lat] if lat else [])] if r.loss or r.duplicates]
    print("loss/duplicates: " + ("none in any scenario" if not bad else f"IN {', '.join(bad)}"))
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
