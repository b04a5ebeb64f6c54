"""Benchmark: the integration API, every figure measured in one run.

    .venv/bin/python bench/api.py [--quick] [--requests 4000] [--readings 200000] [--devices 1000]

1. List: ``GET /emission-entries?limit=100`` at pages chosen at random, by 32 concurrent clients (closed loop,
   keep-alive connections, one API key each, as 32 integrations would) against ``scope3 api serve`` on a demo
   tenant (acme's profile: 800 suppliers, a year of monthly entries); latency p50 and p99 and requests/s.
2. Ingest, the same readings both ways: the MQTT path (Mosquitto -> ``scope3 ingest``, QoS 1, messages of
   100 readings: bench/ingest.py's scenario C with larger batches) and the HTTP path (``POST /iot/ingest/``
   with each device's key, 100 readings per request, 32 concurrent clients). Rates are readings stored over
   the time from the first send to the last commit; loss and duplicates are checked in PostgreSQL.

The API, the ingest, Mosquitto, PostgreSQL (a private embedded server unless SCOPE3_BENCH_DATABASE_URL is set)
and the load generators share this machine's cores.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import sqlalchemy as sa

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from scope3lib import demo, tenancy  # noqa: E402
from scope3lib.api import keys  # noqa: E402
from scope3lib.meters.broker import free_port  # noqa: E402

_spec = importlib.util.spec_from_file_location("bench_ingest", REPO / "bench" / "ingest.py")
assert _spec and _spec.loader
bench_ingest = importlib.util.module_from_spec(_spec)
sys.modules["bench_ingest"] = bench_ingest
_spec.loader.exec_module(bench_ingest)

CLIENTS = 32
BATCH = 100


def serve(workdir: Path, slug: str) -> tuple[subprocess.Popen[bytes], str]:
    """``scope3 api serve SLUG`` in its own process, with the tenant's secrets file only (no admin URL)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCOPE3_")}
    env["SCOPE3_DATA_DIR"] = str(workdir)
    log = open(workdir / f"api-{slug}.log", "wb")  # noqa: SIM115 - kept open for the process
    proc = subprocess.Popen([sys.executable, "-m", "scope3lib", "api", "serve", slug, f"--port={port}"], env=env,
                            stdout=subprocess.DEVNULL, stderr=log)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 180  # imports alone take seconds on a busy machine
    while True:
        try:
            if httpx.get(f"{url}/openapi.json", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        if time.time() > deadline or proc.poll() is not None:
            log_text = (workdir / f"api-{slug}.log").read_text()
            raise RuntimeError(f"the API (exit {proc.poll()}) did not answer: {log_text}")
        time.sleep(0.2)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    proc.wait(30)


async def _get(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> tuple[int, bytes]:
    """One HTTP/1.1 keep-alive request on an open connection: (status, body). A raw client, so that the load
    generator costs little of the cores it shares with the API and PostgreSQL."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    return status, await reader.readexactly(length)


async def _list_load(url: str, api_keys: list[str], cursors: list[str | None], total: int) -> tuple[list[float], float]:
    host, port = url.split("//")[1].split(":")
    latencies: list[float] = []
    errors = 0

    def request(key: str, cursor: str | None) -> bytes:
        query = "limit=100" + (f"&cursor={cursor}" if cursor else "")
        return (f"GET /emission-entries?{query} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                f"Authorization: Bearer {key}\r\n\r\n").encode()

    async def client(key: str, n: int) -> None:
        nonlocal errors
        requests = [request(key, c) for c in cursors]
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            for _ in range(n):
                t = time.perf_counter()
                status, body = await _get(reader, writer, random.choice(requests))
                latencies.append(time.perf_counter() - t)
                if status != 200 or not body.startswith(b'{"items":[{'):
                    errors += 1
        finally:
            writer.close()

    # Warm-up, not measured: every client's connection, and the server's pool of database connections (each
    # a SCRAM login) opened.
    await asyncio.gather(*(client(k, 3) for k in api_keys))
    latencies.clear()
    t0 = time.perf_counter()
    await asyncio.gather(*(client(k, total // len(api_keys)) for k in api_keys))
    if errors:
        raise RuntimeError(f"{errors} list requests failed")
    return latencies, time.perf_counter() - t0


def list_bench(workdir: Path, engine: sa.Engine, requests: int) -> dict[str, float]:
    profile = demo.DEMO_TENANTS[0]
    tenancy.create_tenant(engine, workdir, profile.slug, profile.name, profile.plan)
    demo.load(engine, profile.slug, demo.generate(profile))
    with engine.begin() as c:
        c.execute(sa.text("ANALYZE"))  # as autovacuum does within a minute of a load this size
    with engine.connect() as c:
        entries = int(c.scalar(sa.text("SELECT count(*) FROM emission_entries e JOIN tenants t ON t.id = e.tenant_id "
                                       "WHERE t.slug = :s"), {"s": profile.slug}) or 0)
    api_keys = [keys.create_key(engine, profile.slug, f"bench-{i}", "read").key for i in range(CLIENTS)]
    proc, url = serve(workdir, profile.slug)
    try:
        cursors: list[str | None] = [None]
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {api_keys[0]}"}) as c:
            while True:  # every page once: the cursors to draw from, and a warm server
                page = c.get("/emission-entries", params={"limit": 100, **({"cursor": cursors[-1]} if cursors[-1]
                                                                            else {})}).json()
                if not page["next_cursor"]:
                    break
                cursors.append(page["next_cursor"])
        server_cpu, client_cpu = bench_ingest.cpu_seconds([proc.pid]), time.process_time()
        latencies, seconds = asyncio.run(_list_load(url, api_keys, cursors, requests))
        server_cpu = bench_ingest.cpu_seconds([proc.pid]) - server_cpu
        client_cpu = time.process_time() - client_cpu
    finally:
        stop(proc)
    q = statistics.quantiles(latencies, n=100)
    return {"entries": entries, "pages": len(cursors), "requests": len(latencies), "rps": len(latencies) / seconds,
            "p50": q[49], "p99": q[98], "max": max(latencies), "server_ms": server_cpu / len(latencies) * 1000,
            "client_ms": client_cpu / len(latencies) * 1000}


async def _ingest_load(url: str, work: list[tuple[str, bytes]]) -> tuple[float, int]:
    """POST every (key, body) of ``work`` to ``/iot/ingest/`` from 32 keep-alive connections, each request sent
    again (on a new connection) until it is answered 200, at most 5 times: at least once, as a gateway does.
    A raw HTTP/1.1 client, like the list's, so that the load generator takes little of the shared cores."""
    host, port = url.split("//")[1].split(":")
    queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
    for item in work:
        queue.put_nowait(item)
    failed = 0

    def request(key: str, body: bytes) -> bytes:
        return (f"POST /iot/ingest/ HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {key}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body

    async def client() -> None:
        nonlocal failed
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            while not queue.empty():
                message = request(*queue.get_nowait())
                for _ in range(5):
                    try:
                        status, _ = await _get(reader, writer, message)
                    except (OSError, asyncio.IncompleteReadError):
                        writer.close()
                        reader, writer = await asyncio.open_connection(host, int(port))
                        continue
                    if status == 200:
                        break
                else:
                    failed += 1
        finally:
            writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(CLIENTS)))
    return time.perf_counter() - t0, failed


def http_ingest(bench: object, readings: int, devices: int, batch: int) -> object:
    b = bench
    b.truncate()  # type: ignore[attr-defined]
    engine = b.engine  # type: ignore[attr-defined]
    with engine.begin() as c:  # device keys for every bench device (scope3 apikey create ... --scope ingest)
        c.execute(sa.text("DELETE FROM api_keys"))
    device_keys = {d: keys.create_key(engine, bench_ingest.TENANT, f"gw-{d}", "ingest", device=f"d{d:04d}").key
                   for d in range(devices)}
    per_device = readings // devices
    base = time.time() - 3 * 86400
    work = [(device_keys[d], body) for d, body in bench_ingest.payloads(range(devices), per_device, batch, base)]
    proc, url = serve(b.workdir, bench_ingest.TENANT)  # type: ignore[attr-defined]
    try:
        seconds, failed = asyncio.run(_ingest_load(url, work))
    finally:
        stop(proc)
    n, distinct, _ = b.stored()  # type: ignore[attr-defined]
    note = f"{failed} requests never answered 200" if failed else ""
    return bench_ingest.Result(f"HTTP {batch}/request", per_device * devices, distinct, n - distinct, seconds,
                               note=note)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=4000, help="list requests in all")
    ap.add_argument("--readings", type=int, default=200_000)
    ap.add_argument("--devices", type=int, default=1_000)
    ap.add_argument("--quick", action="store_true", help="1,000 requests and 20,000 readings: a smoke run")
    args = ap.parse_args()
    requests, readings = (1000, 20_000) if args.quick else (args.requests, args.readings)
    devices = 20 if args.quick else args.devices  # at least one whole batch of readings per device
    workdir = Path(tempfile.mkdtemp(prefix="scope3-bench-api-"))
    print(f"on {os.cpu_count()} cores (work files in {workdir}); load average before: {os.getloadavg()[0]:.1f}",
          flush=True)
    bench = bench_ingest.Bench(readings, devices, workdir)
    try:
        lst = list_bench(workdir, bench.engine, requests)
        print(f"list 100 entries, {CLIENTS} clients, demo tenant ({lst['entries']:,} entries, {lst['pages']} pages): "
              f"p50 {lst['p50'] * 1000:.1f} ms, p99 {lst['p99'] * 1000:.1f} ms, max {lst['max'] * 1000:.0f} ms, "
              f"{lst['rps']:,.0f} requests/s ({lst['requests']:,} requests; target p99 < 100 ms); CPU per request: "
              f"API {lst['server_ms']:.2f} ms, load generator {lst['client_ms']:.2f} ms", flush=True)
        mqtt = bench.run_ingest(f"MQTT {BATCH}/message", BATCH)
        http = http_ingest(bench, readings, devices, BATCH)
        big = http_ingest(bench, readings, devices, 10 * BATCH) if readings // devices >= 10 * BATCH else None
    finally:
        bench.close()
    for r in (mqtt, http, *([big] if big else [])):
        print(f"  {r.name:<20} {r.rate:>9,.0f} readings/s  loss {r.loss}  duplicates {r.duplicates}  "  # type: ignore[attr-defined]
              f"({r.stored:,} in {r.seconds:.2f} s){'  ' + r.note if r.note else ''}", flush=True)  # type: ignore[attr-defined]
    print(f"ratio HTTP/MQTT, {BATCH} readings each: {http.rate / mqtt.rate:.2f} (target >= 0.5)")  # type: ignore[attr-defined]
    if big:
        print(f"ratio HTTP {10 * BATCH}/request to MQTT {BATCH}/message: {big.rate / mqtt.rate:.2f}")  # type: ignore[attr-defined]
    bad = [r.name for r in (mqtt, http, *([big] if big else [])) if r.loss or r.duplicates]  # type: ignore[attr-defined]
    print("loss/duplicates: " + ("none" if not bad else f"IN {', '.join(bad)}"))
    print(f"load average after: {os.getloadavg()[0]:.1f} (other work on the machine lowers every figure)")
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
