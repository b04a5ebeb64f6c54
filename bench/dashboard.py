"""Executive dashboard render times on the demo data: first render and warm renders, through the real hub.

    .venv/bin/python bench/dashboard.py [--renders 5] [--pool 1] [--gap 8]

Needs SCOPE3_DATABASE_URL (an admin URL; a scratch database `scope3_bench_dashboard` is created and
dropped on it) or runs on an embedded PostgreSQL. It provisions the demo tenant `acme`, starts its hub
(Voila as the `dashboard` service, kernel pool `--pool`), logs in as the executive and times whole page
renders (login redirect to the complete HTML). Also times building the dashboard in-process, cold
and warm, to separate kernel start and imports from the dashboard's own work.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
import sqlalchemy as sa
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scope3lib import db, demo, schema, tenancy
from scope3lib.hub import settings as hub_settings
from scope3lib.meters.broker import free_port

PASSWORD = "bench-password-1"


def render(base: str) -> float:
    s = requests.Session()
    s.get(base + "/hub/login")
    t = time.perf_counter()
    r = s.post(base + "/hub/login?next=", data={"username": "acme-exec", "password": PASSWORD,
                                                "_xsrf": s.cookies.get("_xsrf", path="/hub/")}, timeout=300)
    elapsed = time.perf_counter() - t
    if r.status_code != 200 or "kernelId" not in r.text:
        raise RuntimeError(f"render failed: {r.status_code} {r.url}")
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--renders", type=int, default=5)
    ap.add_argument("--pool", type=int, default=1, help="preheated Voila kernels (dashboard_pool_size)")
    ap.add_argument("--gap", type=float, default=8.0,
                    help="seconds between page views (a pool kernel is refilled in about 5 s)")
    args = ap.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="scope3-bench-dash-"))
    server = os.environ.get("SCOPE3_DATABASE_URL") or db.embedded_postgres(data_dir)
    name = "scope3_bench_dashboard"
    admin = db.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = db.libpq_url(sa.engine.make_url(db.sqlalchemy_url(server)).set(database=name))
    engine = db.create_engine(url)
    schema.upgrade(engine)
    profile = demo.DEMO_TENANTS[0]
    creds = tenancy.create_tenant(engine, data_dir, profile.slug, profile.name, profile.plan)
    demo.load(engine, profile.slug, demo.generate(profile))
    hub_settings.ensure(engine, data_dir, profile.slug)
    tenancy.add_user(engine, profile.slug, "acme-exec", "viewer", PASSWORD)
    hub_file = hub_settings.tenant_dir(data_dir, "acme") / hub_settings.HUB_FILE
    raw = yaml.safe_load(hub_file.read_text())
    raw.update(port=free_port(), hub_port=free_port(), proxy_api_port=free_port(), dashboard_port=free_port(),
               dashboard_pool_size=args.pool, scheduler=False)
    hub_file.write_text(yaml.safe_dump(raw))

    # In-process: the dashboard's own work, cold (imports, first queries) and warm.
    os.environ["SCOPE3_TENANT_DATABASE_URL"] = creds.database_url_readonly
    t = time.perf_counter()
    from scope3lib.reporting.executive import ExecutiveDashboard

    d = ExecutiveDashboard(db.connect())
    d.panels(d.select())
    d.tenant_panels()
    cold = time.perf_counter() - t
    t = time.perf_counter()
    d = ExecutiveDashboard(db.connect())
    d.panels(d.select())
    d.tenant_panels()
    warm = time.perf_counter() - t

    env = {k: v for k, v in os.environ.items() if not k.startswith("SCOPE3_")}
    env.update(SCOPE3_DATABASE_URL=url, SCOPE3_DATA_DIR=str(data_dir))
    log = (data_dir / "hub.log").open("wb")
    hub = subprocess.Popen([sys.executable, "-m", "scope3lib", "hub", "start", "acme"], env=env, stdout=log,
                           stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{raw['port']}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if requests.get(base + "/services/dashboard/", timeout=5, allow_redirects=False).status_code == 302:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline or hub.poll() is not None:
                raise RuntimeError(f"hub did not start; see {data_dir / 'hub.log'}")
            time.sleep(0.5)
        if args.pool:
            time.sleep(20)  # let the pool start its kernels and import
        first = render(base)
        warm_renders = []
        for _ in range(args.renders):
            time.sleep(args.gap)
            warm_renders.append(render(base))
    finally:
        hub.send_signal(signal.SIGTERM)
        hub.wait(60)
        engine.dispose()
        with admin.connect() as c:
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            for role in c.scalars(sa.text("SELECT rolname FROM pg_roles WHERE starts_with(rolname, :p)"),
                                  {"p": schema.prefix_for_database(name) + "_"}).all():
                c.execute(sa.text(f'DROP ROLE "{role}"'))
        shutil.rmtree(data_dir, ignore_errors=True)
    print(f"executive dashboard on the demo tenant ({profile.suppliers} suppliers, 2,640 entries), "
          f"Voila kernel pool {args.pool}, {args.gap:.0f} s between views, load average {os.getloadavg()[0]:.1f}")
    print(f"  in-process build (queries, figures, tenant panels): cold {cold:.2f} s, warm {warm:.2f} s")
    print(f"  page render through the hub: first {first:.2f} s, warm median {statistics.median(warm_renders):.2f} s "
          f"(min {min(warm_renders):.2f}, max {max(warm_renders):.2f}, n={len(warm_renders)})")
    print(f"  ratio first/warm-median {first / statistics.median(warm_renders):.2f}, "
          f"page/in-process-warm {statistics.median(warm_renders) / warm:.1f}")


if __name__ == "__main__":
    main()
