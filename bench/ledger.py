"""Ledger benchmark: append rate through the trigger, verification time and proofs against log size.

    .venv/bin/python bench/ledger.py [--max-size 1000000] [--database-url URL]

Runs in a scratch database created (and dropped, with its roles) on the server of ``--database-url``,
else ``SCOPE3_TEST_DATABASE_URL`` or ``SCOPE3_DATABASE_URL`` (an admin URL that may CREATE DATABASE),
else an embedded PostgreSQL in a temporary directory. Prints the figures and the ratios, all
measured in this one run; nothing is asserted (targets: verifying a 1,000,000-leaf log in under 3 s,
verifying a proof in under 1 ms).
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import psycopg
import sqlalchemy as sa
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scope3lib import db, ledger, schema, tenancy
from scope3lib.ledger import log as ledger_log

SIZES = (1_000, 10_000, 100_000, 1_000_000)
BATCH = 100_000  # entries per INSERT statement while growing the log

_BULK = sa.text(
    "INSERT INTO emission_entries (tenant_id, category, period_start, period_end, method, description, "
    "activity_quantity, activity_unit, spend, spend_currency, spend_year, factor_source, factor_version, factor_key, "
    "factor_value, factor_unit, kg_co2e, data_source, data_quality) "
    "SELECT :t, 1 + g % 15, DATE '2025-01-01' + (g % 12) * 31, DATE '2025-01-28' + (g % 12) * 31, 'spend_based', "
    "'purchase order ' || g, NULL, NULL, round((random() * 10000)::numeric, 2), 'USD', 2022, 'epa-useeio', 'v1.3', "
    "'327310', random(), 'kg CO2e/USD', random() * 1000, 'import', 4 FROM generate_series(1, :n) AS g"
)
_ONE = ("INSERT INTO emission_entries (tenant_id, category, period_start, period_end, method, description, spend, "
        "spend_currency, kg_co2e, data_source, data_quality) VALUES ((SELECT tenant_of(current_user)), 1, "
        "'2025-01-01', '2025-01-31', 'spend_based', %s, 1234.5, 'USD', 42.5, 'manual', 4)")


def server_url(arg: str | None) -> tuple[str, object | None]:
    url = arg or os.environ.get("SCOPE3_TEST_DATABASE_URL") or os.environ.get("SCOPE3_DATABASE_URL")
    if url:
        return db.libpq_url(url), None
    where = Path(tempfile.mkdtemp(prefix="scope3-bench-pg-"))
    return db.embedded_postgres(where), where


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def per_call(fn: Callable[[], object], runs: int) -> float:
    """Median seconds per call over ``runs`` calls."""
    samples = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return statistics.median(samples)


def append_rates(engine: sa.Engine, creds: tenancy.TenantCredentials, plain: tenancy.TenantCredentials,
                 tid: int, plain_tid: int) -> dict[str, float]:
    """Entries per second inserted through the trigger, and (for another tenant) with it disabled."""
    rates: dict[str, float] = {}
    n_single, n_bulk = 2000, 50_000
    for label, ledger_on in (("with ledger", True), ("without ledger", False)):
        if not ledger_on:
            with engine.begin() as c:
                c.execute(sa.text("ALTER TABLE emission_entries DISABLE TRIGGER ledger_append_insert"))
        try:
            role = creds if ledger_on else plain
            with psycopg.connect(role.database_url, autocommit=True) as pc:  # the analyst's role, a commit per row
                t0 = time.perf_counter()
                for i in range(n_single):
                    pc.execute(_ONE, (f"single {i}",))
                rates[f"single-row INSERT + commit, {label}"] = n_single / (time.perf_counter() - t0)
            with engine.begin() as c:
                t0 = time.perf_counter()
                c.execute(_BULK, {"t": tid if ledger_on else plain_tid, "n": n_bulk})
                rates[f"one INSERT ... SELECT of {n_bulk:,} rows, {label}"] = n_bulk / (time.perf_counter() - t0)
        finally:
            if not ledger_on:
                with engine.begin() as c:
                    c.execute(sa.text("ALTER TABLE emission_entries ENABLE TRIGGER ledger_append_insert"))
    return rates


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--database-url", help="admin URL of a PostgreSQL server (a scratch database is created there)")
    ap.add_argument("--max-size", type=int, default=SIZES[-1], help="largest log measured [1000000]")
    args = ap.parse_args()
    sizes = [s for s in SIZES if s <= args.max_size] or [args.max_size]

    server, _ = server_url(args.database_url)
    name = f"s3b_{secrets.token_hex(4)}"
    with db.create_engine(server, isolation_level="AUTOCOMMIT").connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = db.libpq_url(make_url(db.sqlalchemy_url(server)).set(database=name))
    engine = db.create_engine(url)
    data_dir = Path(tempfile.mkdtemp(prefix="scope3-bench-data-"))
    try:
        schema.upgrade(engine)
        creds = tenancy.create_tenant(engine, data_dir, "append", "Append rate", "enterprise")
        plain = tenancy.create_tenant(engine, data_dir, "plain", "Without ledger", "enterprise")
        tenancy.create_tenant(engine, data_dir, "bench", "Log sizes", "enterprise")
        with engine.connect() as c:
            ids: dict[str, int] = {str(r.slug): int(r.id) for r in c.execute(sa.text("SELECT slug, id FROM tenants"))}
        tid, plain_tid = int(ids["bench"]), int(ids["plain"])
        print(f"PostgreSQL {engine.dialect.server_version_info}, {os.cpu_count()} CPUs, scratch database {name}, "
              f"load average {os.getloadavg()[0]:.1f} at the start (other processes share the CPUs)\n")

        print("Append rate (entries/s)")
        rates = append_rates(engine, creds, plain, int(ids["append"]), plain_tid)
        for label, rate in rates.items():
            print(f"  {label:<58} {rate:>10,.0f}")
        keys = list(rates)
        print(f"  ledger cost: single rows x{rates[keys[2]] / rates[keys[0]]:.2f} time, "
              f"bulk x{rates[keys[3]] / rates[keys[1]]:.2f} time\n")

        have = 0
        rows: list[dict[str, float]] = []
        previous: int | None = None
        for size in sizes:
            t0 = time.perf_counter()
            while have < size:
                n = min(BATCH, size - have)
                with engine.begin() as c:
                    c.execute(_BULK, {"t": tid, "n": n})
                have += n
            grow_secs = time.perf_counter() - t0
            with engine.begin() as c:
                c.execute(sa.text("ANALYZE ledger_leaves; ANALYZE emission_entries"))
            t0 = time.perf_counter()
            signed = ledger_log.checkpoint(engine, data_dir, "bench")
            cp_secs = time.perf_counter() - t0
            log_secs = min(timed(partial(ledger_log.verify, engine, "bench", entries=False))[0] for _ in range(2))
            t0 = time.perf_counter()
            report = ledger_log.verify(engine, "bench")
            full_secs = time.perf_counter() - t0
            assert report.ok, report.summary()
            with engine.connect() as c:
                entry_id = int(c.scalar(sa.text("SELECT entry_id FROM ledger_leaves WHERE tenant_id = :t "
                                                "AND leaf_index = :i"), {"t": tid, "i": size // 3}))
            t0 = time.perf_counter()
            bundle = ledger_log.prove(engine, "bench", entry_id)
            prove_secs = time.perf_counter() - t0
            key = ledger_log.public_key(engine, data_dir, "bench")
            p = bundle.proof
            incl = per_call(partial(ledger.verify_inclusion, p.leaf_hash, p.leaf_index, p.tree_size, p.audit_path,
                                    signed.checkpoint.root_hash), 2000)
            audit = per_call(partial(ledger.audit_entry, bundle.checkpoint, bundle.proof, bundle.entry, key), 300)
            cons_hashes, cons_secs = 0, float("nan")
            if previous is not None:
                cb = ledger_log.prove_consistency(engine, "bench", previous)
                old_cp = ledger.Checkpoint.parse_body(cb.old_checkpoint[:cb.old_checkpoint.rfind("\n\n") + 1])
                new_cp = ledger.Checkpoint.parse_body(cb.new_checkpoint[:cb.new_checkpoint.rfind("\n\n") + 1])
                cons_hashes = len(cb.proof.consistency)
                cons_secs = per_call(partial(ledger.verify_consistency, old_cp.tree_size, new_cp.tree_size,
                                             old_cp.root_hash, new_cp.root_hash, cb.proof.consistency), 2000)
            rows.append({"size": size, "grow": grow_secs, "checkpoint": cp_secs, "log": log_secs, "full": full_secs,
                         "prove": prove_secs, "hashes": len(p.audit_path), "proof_bytes": len(p.to_json()),
                         "incl_us": incl * 1e6, "audit_us": audit * 1e6, "cons_hashes": cons_hashes,
                         "cons_us": cons_secs * 1e6})
            previous = size

        print("Verification and proofs against log size")
        print(f"  {'leaves':>9} {'checkpoint s':>12} {'verify log s':>12} {'verify all s':>12} {'prove s':>8} "
              f"{'proof hashes':>12} {'proof.json B':>12} {'verify incl. µs':>15} {'audit µs':>9} "
              f"{'consist. hashes':>15} {'verify cons. µs':>15}")
        for r in rows:
            print(f"  {r['size']:>9,} {r['checkpoint']:>12.2f} {r['log']:>12.2f} {r['full']:>12.2f} {r['prove']:>8.2f} "
                  f"{r['hashes']:>12} {r['proof_bytes']:>12} {r['incl_us']:>15.1f} {r['audit_us']:>9.0f} "
                  f"{r['cons_hashes'] or '-':>15} {r['cons_us']:>15.1f}")
        last, first = rows[-1], rows[0]
        print()
        print(f"  verify log (recompute every leaf hash from its columns, tree, all checkpoints): "
              f"{last['log']:.2f} s for {last['size']:,} leaves = {last['log'] / last['size'] * 1e6:.2f} µs/leaf "
              f"(target < 3 s at 1,000,000)")
        print(f"  verify all (also every entry's canonical form against its last leaf): {last['full']:.2f} s, "
              f"x{last['full'] / last['log']:.1f} the log alone")
        if len(rows) > 1:
            print(f"  {last['size'] // first['size']:,}x the leaves: verify log x{last['log'] / first['log']:.0f}, "
                  f"proof verification x{last['incl_us'] / first['incl_us']:.2f} "
                  f"({first['hashes']} -> {last['hashes']} hashes)")
        print(f"  proof verification {last['incl_us']:.1f} µs = {1000 / last['incl_us']:.0f}x under the 1 ms target; "
              f"offline audit of one entry (signature, canonical form, inclusion) {last['audit_us']:.0f} µs")
        tree_secs, _ = timed(partial(ledger.MerkleTree, os.urandom(32 * int(last["size"]))))
        print(f"  of which the Python tree alone over {last['size']:,} leaf hashes: {tree_secs:.2f} s; "
              f"load average {os.getloadavg()[0]:.1f} at the end")
    finally:
        engine.dispose()
        shutil.rmtree(data_dir, ignore_errors=True)
        with db.create_engine(server, isolation_level="AUTOCOMMIT").connect() as c:
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            prefix = schema.prefix_for_database(name)
            for role in c.scalars(sa.text("SELECT rolname FROM pg_roles WHERE starts_with(rolname, :p)"),
                                  {"p": prefix + "_"}).all():
                c.execute(sa.text(f'DROP ROLE IF EXISTS "{role}"'))


if __name__ == "__main__":
    main()
