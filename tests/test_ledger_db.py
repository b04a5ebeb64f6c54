"""The ledger in PostgreSQL: every change is logged by the database, the log is append-only for every role,
tampering by a superuser is detected and named, proofs are audited offline, tenants stay isolated."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import random
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from psycopg.rows import dict_row
from sqlalchemy.engine import Engine

from scope3lib import db, ledger
from scope3lib.errors import LedgerError, LedgerInconsistent, UnknownTenant
from scope3lib.ledger import log as ledger_log
from scope3lib.ledger.log import Kind
from tests.helpers import TenantFactory, TenantFixture, invoke_cli, run_cli, scope3_env

pytestmark = pytest.mark.db

LOG_TABLES = ("ledger_leaves", "ledger_checkpoints", "ledger_keys", "ledger_heads")

_INSERT = ("INSERT INTO emission_entries (tenant_id, category, period_start, period_end, method, description, "
           "activity_quantity, activity_unit, spend, spend_currency, kg_co2e, data_source, data_quality) "
           "VALUES ((SELECT tenant_of(current_user)), %(category)s, %(start)s, %(end)s, 'spend_based', "
           "%(description)s, %(quantity)s, 'kWh', %(spend)s, 'USD', %(kg)s, 'manual', 4) RETURNING id")


def entry_values(i: int) -> dict[str, Any]:
    return {"category": 1 + i % 15, "start": dt.date(2025, 1 + i % 12, 1), "end": dt.date(2025, 1 + i % 12, 28),
            "description": f"purchase {i}", "quantity": 10.0 + i / 7, "spend": f"{1000 + i}.50", "kg": 3.5 * i + 0.1}


def add_entries(creds: TenantFixture, n: int, start: int = 0) -> list[int]:
    """Insert entries through the tenant's own role, as an analyst would."""
    with psycopg.connect(creds.database_url) as c:
        return [c.execute(_INSERT, entry_values(start + i)).fetchone()[0] for i in range(n)]  # type: ignore[index]


@pytest.fixture
def tenant(make_tenant: TenantFactory) -> TenantFixture:
    """An empty tenant of the test's own: entries are added through its role, as an analyst would."""
    return make_tenant()


@pytest.fixture
def superuser(engine: Engine) -> Iterator[psycopg.Connection[Any]]:
    """The admin, bypassing the ledger's triggers as an attacker with superuser rights would."""
    with psycopg.connect(db.libpq_url(engine.url)) as c:
        if not c.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()[0]:  # type: ignore[index]
            pytest.fail("these tests tamper as a superuser: SCOPE3_TEST_DATABASE_URL must name a superuser")
        c.execute("SET session_replication_role = replica")
        yield c
        c.commit()


def leaves(engine: Engine, slug: str) -> list[dict[str, Any]]:
    with engine.connect() as c:
        return [dict(r) for r in c.execute(sa.text(
            "SELECT l.*, ledger_leaf_data(l.tenant_id, l.leaf_index, l.entry_id, l.event, l.actor, l.reason, "
            "l.recorded_at, l.entry) AS data FROM ledger_leaves l JOIN tenants t ON t.id = l.tenant_id "
            "WHERE t.slug = :s ORDER BY leaf_index"), {"s": slug}).mappings()]


# --- appending -----------------------------------------------------------------------------------


def test_every_change_appends_a_leaf_written_by_the_database(engine: Engine, tenant: TenantFixture) -> None:
    ids = add_entries(tenant, 3)
    with psycopg.connect(tenant.database_url) as c:
        c.execute("UPDATE emission_entries SET kg_co2e = 99.5 WHERE id = %s", (ids[0],))
    with psycopg.connect(tenant.database_url) as c:
        c.execute("SELECT set_config('scope3.ledger_event', 'recalculate', true), "
                  "set_config('scope3.ledger_reason', 'DESNZ 2025 factors', true)")
        c.execute("UPDATE emission_entries SET kg_co2e = kg_co2e * 2 WHERE id = ANY(%s)", (ids[:2],))
    with psycopg.connect(tenant.database_url) as c:
        c.execute("DELETE FROM emission_entries WHERE id = %s", (ids[2],))
    log = leaves(engine, tenant.slug)
    assert [(r["leaf_index"], r["entry_id"], r["event"], r["reason"]) for r in log] == [
        (0, ids[0], "create", None), (1, ids[1], "create", None), (2, ids[2], "create", None),
        (3, ids[0], "correct", None), (4, ids[0], "recalculate", "DESNZ 2025 factors"),
        (5, ids[1], "recalculate", "DESNZ 2025 factors"), (6, ids[2], "delete", None)]
    assert {r["actor"] for r in log} == {tenant.role}
    assert json.loads(log[3]["entry"])["kg_co2e"] == 99.5 and json.loads(log[4]["entry"])["kg_co2e"] == 199
    assert [r["recorded_at"] for r in log] == sorted(r["recorded_at"] for r in log)
    for r in log:  # the bytes PostgreSQL hashes are the ones Python's leaf_data builds, and RFC 6962 hashing
        data = bytes(r["data"])
        assert r["leaf_hash"] == hashlib.sha256(b"\x00" + data).digest() == ledger.leaf_hash(data)
        assert data == ledger.leaf_data(tenant_id=r["tenant_id"], leaf_index=r["leaf_index"], entry_id=r["entry_id"],
                                        event=r["event"], actor=r["actor"], reason=r["reason"],
                                        recorded_at=r["recorded_at"], entry=ledger.parse_canonical(r["entry"].encode()))
    with engine.connect() as c:
        assert c.scalar(sa.text("SELECT size FROM ledger_heads h JOIN tenants t ON t.id = h.tenant_id "
                                "WHERE t.slug = :s"), {"s": tenant.slug}) == 7
    assert ledger_log.verify(engine, tenant.slug).discrepancies == ()


def test_unknown_update_event_is_refused(tenant: TenantFixture) -> None:
    ids = add_entries(tenant, 1)
    with psycopg.connect(tenant.database_url) as c:
        c.execute("SELECT set_config('scope3.ledger_event', 'backdate', true)")
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="unknown ledger event backdate"):
            c.execute("UPDATE emission_entries SET kg_co2e = 1 WHERE id = %s", (ids[0],))


def test_annotate_labels_a_transactions_updates_and_history_lists_them(tenant: TenantFixture) -> None:
    ids = add_entries(tenant, 1)
    analyst = tenant.engine
    with analyst.begin() as conn:
        ledger_log.annotate(conn, "recalculate", "EPA USEEIO v1.3 -> v1.4")
        conn.execute(sa.text("UPDATE emission_entries SET kg_co2e = 8 WHERE id = :i"), {"i": ids[0]})
    with analyst.begin() as conn:  # transaction-local: the next transaction is a plain correction
        conn.execute(sa.text("UPDATE emission_entries SET kg_co2e = 9 WHERE id = :i"), {"i": ids[0]})
    changes = ledger_log.history(analyst, ids)
    assert [(c["event"], c["reason"], c["entry"]["kg_co2e"]) for c in changes] == [
        ("create", None, Decimal("0.1")), ("recalculate", "EPA USEEIO v1.3 -> v1.4", 8), ("correct", None, 9)]
    with analyst.begin() as conn, pytest.raises(LedgerError, match="unknown ledger event"):
        ledger_log.annotate(conn, "backdate")


def _random_doubles(n: int) -> list[float]:
    rng = random.Random(6962)
    out = [0.1, 1 / 3, -0.0, 5e-324, 1.7976931348623157e308, 1e21, 1e-7, 123456789.12345679, 2.5e-5, 1e15, 1e16,
           9007199254740993.0, 0.30000000000000004]
    while len(out) < n:
        x = struct.unpack("<d", struct.pack("<Q", rng.getrandbits(64)))[0]
        if x == x and abs(x) != float("inf"):
            out.append(x)
    return out


def test_numbers_render_the_same_in_postgresql_and_python(engine: Engine) -> None:
    doubles = _random_doubles(20000)
    decimals = ["1234.50", "0.000", "-0.10", "12345678901234567890.123456789", "1E+5", "-7"]
    with psycopg.connect(db.libpq_url(engine.url)) as c:
        c.execute("SET extra_float_digits = 1")
        got = [r[0] for r in c.execute("SELECT ledger_number(x) FROM unnest(%s::float8[]) WITH ORDINALITY AS u(x, i) "
                                       "ORDER BY i", (doubles,))]
        assert got == [ledger.format_number(x) for x in doubles]
        got = [r[0] for r in c.execute("SELECT ledger_number(x) FROM unnest(%s::numeric[]) WITH ORDINALITY AS u(x, i) "
                                       "ORDER BY i", (decimals,))]
        assert got == [ledger.format_number(Decimal(d)) for d in decimals]


def test_canonical_entries_agree_with_python_whatever_the_session(engine: Engine, tenant: TenantFixture) -> None:
    tricky = ["quote\" back\\ tab\t nl\n ctl\x01 é 😀 \u2028", "", "plain"]
    with psycopg.connect(tenant.database_url) as c:
        # Session settings that change how PostgreSQL prints timestamps and floats: the trigger pins its own.
        c.execute("SET TimeZone = 'America/St_Johns'; SET extra_float_digits = 0; SET DateStyle = 'SQL, DMY'")
        for i, text in enumerate(tricky):
            c.execute(_INSERT, {**entry_values(i), "description": text, "kg": _random_doubles(40)[13 + i],
                                "spend": ["0.10", "12.00", "99999999999.99"][i]})
    with psycopg.connect(db.libpq_url(engine.url), row_factory=dict_row) as c:
        rows = c.execute("SELECT e.*, l.entry FROM emission_entries e JOIN ledger_leaves l ON l.entry_id = e.id "
                         "JOIN tenants t ON t.id = e.tenant_id WHERE t.slug = %s ORDER BY e.id",
                         (tenant.slug,)).fetchall()
    assert len(rows) == 3
    for row in rows:
        logged = row.pop("entry")
        assert ledger.canonical_json(row).decode() == logged
        assert json.loads(logged)["description"] == row["description"]


def test_a_column_added_later_is_covered(engine: Engine, tenant: TenantFixture) -> None:
    """A migration adding a column: the trigger notices its compiled rendering is stale and uses the
    generated one (which verification uses too) until ``ledger_refresh()`` recompiles it."""
    with psycopg.connect(db.libpq_url(engine.url)) as c:  # one transaction, rolled back
        c.execute("ALTER TABLE emission_entries ADD COLUMN ledger_test_note text")
        tid = c.execute("SELECT id FROM tenants WHERE slug = %s", (tenant.slug,)).fetchone()[0]  # type: ignore[index]
        insert = _INSERT.replace("(SELECT tenant_of(current_user))", str(tid)).replace(
            "activity_unit,", "activity_unit, ledger_test_note,").replace("'kWh',", "'kWh', 'stale?',")
        stale = c.execute("SELECT ledger_columns_signature() <> ledger_entry_json_signature()").fetchone()
        first = c.execute(insert, entry_values(1)).fetchone()[0]  # type: ignore[index]
        c.execute("SELECT ledger_refresh()")
        second = c.execute(insert, entry_values(2)).fetchone()[0]  # type: ignore[index]
        expr = c.execute("SELECT ledger_entry_json_sql('e')").fetchone()[0]  # type: ignore[index]
        for eid in (first, second):
            logged, now = c.execute(f"SELECT l.entry, {expr} FROM ledger_leaves l JOIN emission_entries e "
                                    "ON e.id = l.entry_id WHERE l.entry_id = %s", (eid,)).fetchone()  # type: ignore[misc]
            assert json.loads(logged)["ledger_test_note"] == "stale?" and logged == now
        c.rollback()
    assert stale == (True,)
    with engine.connect() as c:  # and the rollback restored the compiled rendering
        assert c.scalar(sa.text("SELECT ledger_columns_signature() = ledger_entry_json_signature()"))


def test_pinned_settings_match_the_trigger_function(engine: Engine) -> None:
    with engine.connect() as c:
        config = c.scalar(sa.text("SELECT proconfig FROM pg_proc WHERE proname = 'ledger_append'"))
    pinned = dict(item.split("=", 1) for item in config if not item.startswith("search_path"))
    assert {k.lower(): v for k, v in pinned.items()} == {k.lower(): v for k, v in ledger_log.SESSION_SETTINGS}


def test_concurrent_writers_get_gap_free_ordered_indices(engine: Engine, tenant: TenantFixture) -> None:
    errors: list[BaseException] = []

    def writer(k: int) -> None:
        try:
            with psycopg.connect(tenant.database_url) as c:
                for i in range(25):
                    with c.transaction():
                        c.execute(_INSERT, entry_values(100 * k + i))
                    if i % 5 == 0:  # a rolled-back change leaves no leaf and no gap
                        with pytest.raises(psycopg.errors.DivisionByZero), c.transaction():
                            c.execute(_INSERT, entry_values(i))
                            c.execute("SELECT 1 / 0")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    log = leaves(engine, tenant.slug)
    assert [r["leaf_index"] for r in log] == list(range(100))
    assert [r["recorded_at"] for r in log] == sorted(r["recorded_at"] for r in log)
    assert ledger_log.verify(engine, tenant.slug).discrepancies == ()


# --- append-only, for every role -----------------------------------------------------------------


def test_tenant_roles_cannot_write_the_log(engine: Engine, tenant: TenantFixture) -> None:
    add_entries(tenant, 1)
    for url in (tenant.database_url, tenant.database_url_readonly):
        with psycopg.connect(url, autocommit=True) as c:
            for table in LOG_TABLES:
                for sql in (f"UPDATE {table} SET tenant_id = tenant_id", f"DELETE FROM {table}", f"TRUNCATE {table}",
                            f"INSERT INTO {table} SELECT * FROM {table}"):
                    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"):
                        c.execute(sql)
    assert len(leaves(engine, tenant.slug)) == 1


def test_the_admin_cannot_update_or_delete_the_log_either(engine: Engine, tenant: TenantFixture) -> None:
    add_entries(tenant, 1)
    with psycopg.connect(db.libpq_url(engine.url), autocommit=True) as c:
        for table in ("ledger_leaves", "ledger_checkpoints", "ledger_keys"):
            for op, sql in (("UPDATE", f"UPDATE {table} SET tenant_id = tenant_id"),
                            ("DELETE", f"DELETE FROM {table}")):
                with pytest.raises(psycopg.errors.InsufficientPrivilege, match=f"{table} is append-only: {op} refused"):
                    c.execute(sql)
            # CASCADE, or the foreign key from checkpoints to keys refuses before the trigger does.
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="is append-only: TRUNCATE refused"):
                c.execute(f"TRUNCATE {table} CASCADE")
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="ledger_heads only grows"):
            c.execute("UPDATE ledger_heads SET size = 0")
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only: DELETE"):
            c.execute("DELETE FROM ledger_heads")
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="TRUNCATE of emission_entries refused"):
            c.execute("TRUNCATE emission_entries")
        with pytest.raises(psycopg.errors.CheckViolation, match="keeps its id and tenant"):
            c.execute("UPDATE emission_entries SET id = id + 1000000 WHERE tenant_id = "
                      "(SELECT id FROM tenants WHERE slug = %s)", (tenant.slug,))
    assert len(leaves(engine, tenant.slug)) == 1


def test_tenants_see_only_their_own_log(engine: Engine, data_dir: Path, tenant: TenantFixture,
                                        make_tenant: TenantFactory) -> None:
    tenant_b = make_tenant(tenant.slug + "b", name="Other")
    add_entries(tenant, 2)
    add_entries(tenant_b, 3)
    ledger_log.checkpoint(engine, data_dir, tenant.slug)
    ledger_log.checkpoint(engine, data_dir, tenant_b.slug)
    for url in (tenant.database_url, tenant.database_url_readonly):
        with psycopg.connect(url) as c:
            mine = c.execute("SELECT tenant_of(current_user)").fetchone()[0]  # type: ignore[index]
            for table in LOG_TABLES:
                owners = {r[0] for r in c.execute(f"SELECT tenant_id FROM {table}")}
                assert owners == {mine}, table
            assert c.execute("SELECT count(*) FROM ledger_leaves").fetchone() == (2,)
    report = ledger_log.verify(tenant.readonly)
    assert (report.tenant, report.log_size, report.entries) == (tenant.slug, 2, 2)
    with pytest.raises(UnknownTenant):  # another tenant's slug is unknown to this role
        ledger_log.verify(tenant.readonly, tenant_b.slug)


# --- checkpoints, proofs, the offline audit --------------------------------------------------------


NOWHERE = "postgresql://nobody:nothing@127.0.0.1:1/nowhere"


def test_checkpoint_prove_and_audit_offline(engine: Engine, database_url: str, data_dir: Path, tmp_path: Path,
                                            tenant: TenantFixture) -> None:
    ids = add_entries(tenant, 11)
    r = invoke_cli(database_url, data_dir, "ledger", "checkpoint", tenant.slug)
    assert r.exit_code == 0, r.output
    assert r.stdout.split("\n")[1] == "11" and "\n\n\u2014 scope3-ledger/" in r.stdout
    key_file = data_dir / "tenants" / tenant.slug / "ledger_ed25519.pem"
    assert key_file.stat().st_mode & 0o077 == 0
    (tmp_path / "key.pem").write_text(invoke_cli(database_url, data_dir, "ledger", "public-key", tenant.slug).stdout)
    vkey = invoke_cli(database_url, data_dir, "ledger", "public-key", tenant.slug, "--format", "note").stdout.strip()
    assert vkey.startswith("scope3-ledger/") and vkey.count("+") >= 2

    out = tmp_path / "proof"
    r = invoke_cli(database_url, data_dir, "ledger", "prove", tenant.slug, str(ids[4]), "--out", str(out))
    assert r.exit_code == 0, r.output
    files = [out / "checkpoint.txt", out / "proof.json", out / "entry.json"]
    assert r.stdout.split() == [str(f) for f in files]
    assert json.loads((out / "entry.json").read_bytes())["entry"]["id"] == ids[4]

    # No database at all: the URL points nowhere, and the audit neither connects nor imports the DB half.
    proc = run_cli(NOWHERE, tmp_path / "no-data", "ledger", "audit", *map(str, files),
               "--public-key", str(tmp_path / "key.pem"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"OK: entry {ids[4]} (create") and "at tree size 11" in proc.stdout
    probe = ("import sys; from scope3lib.cli import main\ncode = None\n"
             "try:\n    main(sys.argv[1:])\nexcept SystemExit as e:\n    code = e.code\n"
             "print('MODULES', 'psycopg' in sys.modules, 'scope3lib.ledger.log' in sys.modules, code)")
    proc = subprocess.run([sys.executable, "-c", probe, "ledger", "audit", *map(str, files), "--public-key", vkey],
                          capture_output=True, text=True, timeout=60, env=scope3_env(NOWHERE, tmp_path))
    assert proc.stdout.startswith("OK: entry"), proc.stdout + proc.stderr
    assert proc.stdout.strip().endswith("MODULES False False 0"), proc.stdout

    # Altered files are refused with one line and exit 1.
    (tmp_path / "entry.json").write_bytes((out / "entry.json").read_bytes().replace(b'"category":', b'"category":1'))
    forged = (out / "checkpoint.txt").read_text().replace("\n11\n", "\n12\n")
    (tmp_path / "forged.txt").write_text(forged)
    for args, words in (((files[0], files[1], tmp_path / "entry.json"), "does not hash"),
                        ((tmp_path / "forged.txt", files[1], files[2]), "does not verify")):
        proc = run_cli(NOWHERE, tmp_path, "ledger", "audit", *map(str, args), "--public-key", vkey)
        assert proc.returncode == 1 and "Traceback" not in proc.stderr and words in proc.stderr, proc
        assert len(proc.stderr.strip().splitlines()) == 1
    other = ledger.verifier_key(vkey.split("+")[0], Ed25519PrivateKey.generate().public_key())
    r = invoke_cli(NOWHERE, tmp_path, "ledger", "audit", *map(str, files), "--public-key", other)
    assert r.exit_code == 1 and "not signed by" in r.stderr

    # Growth, then a consistency proof between the two checkpoints, also checked offline.
    add_entries(tenant, 5, start=50)
    ledger_log.checkpoint(engine, data_dir, tenant.slug)
    cons = tmp_path / "cons"
    r = invoke_cli(database_url, data_dir, "ledger", "prove-consistency", tenant.slug, "11", "--out", str(cons))
    assert r.exit_code == 0, r.output
    proc = run_cli(NOWHERE, tmp_path, "ledger", "audit-consistency", str(cons / "old-checkpoint.txt"),
               str(cons / "checkpoint.txt"), str(cons / "consistency.json"), "--public-key", vkey)
    assert proc.returncode == 0 and "at 16 leaves extends its checkpoint of 11 leaves" in proc.stdout, proc


def test_proofs_need_a_covering_checkpoint(engine: Engine, data_dir: Path, tenant: TenantFixture) -> None:
    ids = add_entries(tenant, 3)
    with pytest.raises(LedgerError, match="no checkpoint yet"):
        ledger_log.prove(engine, tenant.slug, ids[0])
    ledger_log.checkpoint(engine, data_dir, tenant.slug)
    with psycopg.connect(tenant.database_url) as c:
        c.execute("UPDATE emission_entries SET kg_co2e = 1 WHERE id = %s", (ids[0],))
    with pytest.raises(LedgerError, match="newer than the latest checkpoint"):
        ledger_log.prove(engine, tenant.slug, ids[0])
    old = ledger_log.prove(engine, tenant.slug, ids[0], leaf_index=0)  # the first version is still provable
    assert json.loads(old.entry)["event"] == "create"
    ledger_log.checkpoint(engine, data_dir, tenant.slug)
    bundle = ledger_log.prove(engine, tenant.slug, ids[0])
    key = ledger_log.public_key(engine, data_dir, tenant.slug)
    result = ledger.audit_entry(bundle.checkpoint, bundle.proof, bundle.entry, key)
    assert (result.leaf["event"], result.leaf["entry"]["kg_co2e"], result.checkpoint.tree_size) == ("correct", 1, 4)
    with pytest.raises(LedgerError, match="no record of entry 999999999"):
        ledger_log.prove(engine, tenant.slug, 999999999)


def test_dashboard_status_with_the_read_only_role(engine: Engine, data_dir: Path, tenant: TenantFixture) -> None:
    viewer = tenant.readonly
    add_entries(tenant, 4)
    report = ledger_log.verify(viewer)
    assert (report.entries, report.verified, report.last_checkpoint, report.ok) == (4, 0, None, True)
    ledger_log.checkpoint(engine, data_dir, tenant.slug)
    add_entries(tenant, 1, start=9)
    report = ledger_log.verify(viewer)
    assert (report.entries, report.verified, report.verified_share) == (5, 4, 0.8)
    assert report.last_checkpoint is not None and report.last_checkpoint.valid and report.last_checkpoint.tree_size == 4
    assert list(report.discrepancies_frame().columns) == ["kind", "entry_id", "leaf_index", "message"]
    assert "4 verified (80.0%)" in report.summary()


def test_a_missing_signing_key_is_reported_not_replaced(engine: Engine, data_dir: Path,
                                                       tenant: TenantFixture) -> None:
    add_entries(tenant, 1)
    ledger_log.checkpoint(engine, data_dir, tenant.slug)
    key_file = ledger_log.key_path(data_dir, tenant.slug)
    saved = key_file.read_bytes()
    key_file.unlink()
    try:
        with pytest.raises(LedgerError, match=r"signing key .* is missing; restore it from backup"):
            ledger_log.checkpoint(engine, data_dir, tenant.slug)
    finally:
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(saved)
    assert ledger_log.checkpoint(engine, data_dir, tenant.slug).checkpoint.tree_size == 1


# --- tampering as a superuser ----------------------------------------------------------------------


@pytest.fixture
def signed_log(engine: Engine, data_dir: Path, tenant: TenantFixture) -> tuple[TenantFixture, list[int]]:
    """Twelve entries, one corrected, all covered by a signed checkpoint: a clean log to tamper with."""
    ids = add_entries(tenant, 12)
    with psycopg.connect(tenant.database_url) as c:
        c.execute("UPDATE emission_entries SET kg_co2e = 7 WHERE id = %s", (ids[5],))
    ledger_log.checkpoint(engine, data_dir, tenant.slug)
    report = ledger_log.verify(engine, tenant.slug)
    assert report.ok and report.verified == report.entries == 12
    return tenant, ids


def kinds(report: ledger_log.LedgerReport) -> list[tuple[Kind, int | None, int | None]]:
    found = [(d.kind, d.entry_id, d.leaf_index) for d in report.discrepancies]
    return sorted(found, key=lambda k: (k[0].value, -1 if k[1] is None else k[1], -1 if k[2] is None else k[2]))


def tampered(engine: Engine, data_dir: Path, slug: str) -> ledger_log.LedgerReport:
    """Verify after tampering: discrepancies found, no checkpoint signed over them, CLI exits 1 naming them."""
    report = ledger_log.verify(engine, slug)
    assert not report.ok
    # The log itself damaged: nothing is signed over it. Only entries changed behind its back: the log
    # is intact and may be checkpointed (the entries stay reported until corrected through the ledger).
    log_damaged = any(d.kind in (Kind.LEAF_ALTERED, Kind.LEAF_MISSING, Kind.CHECKPOINT) for d in report.discrepancies)
    with pytest.raises(LedgerInconsistent) if log_damaged else contextlib.nullcontext():
        ledger_log.checkpoint(engine, data_dir, slug)
    r = invoke_cli(db.libpq_url(engine.url), data_dir, "ledger", "verify", slug)
    assert r.exit_code == 1
    for d in report.discrepancies:
        assert f"{d.kind.value}: {d.message}" in r.stdout
    return report


def test_tampered_value_is_named(engine: Engine, data_dir: Path, signed_log: Any,
                                 superuser: psycopg.Connection[Any]) -> None:
    tenant, ids = signed_log
    superuser.execute("UPDATE emission_entries SET kg_co2e = 0.5 WHERE id = %s", (ids[3],))
    superuser.commit()
    report = tampered(engine, data_dir, tenant.slug)
    assert kinds(report) == [(Kind.CHANGED, ids[3], 3)]
    assert "kg_co2e is 0.5 but the log records 10.6" in report.discrepancies[0].message
    assert (report.entries, report.verified) == (12, 11)


def test_tampered_date_is_named(engine: Engine, data_dir: Path, signed_log: Any,
                                superuser: psycopg.Connection[Any]) -> None:
    tenant, ids = signed_log
    superuser.execute("UPDATE emission_entries SET period_start = '2024-12-01' WHERE id = %s", (ids[5],))
    superuser.commit()
    report = tampered(engine, data_dir, tenant.slug)
    assert kinds(report) == [(Kind.CHANGED, ids[5], 12)]  # compared with its last record, the correction
    assert "period_start is '2024-12-01' but the log records '2025-06-01'" in report.discrepancies[0].message


def test_deleted_entry_is_named(engine: Engine, data_dir: Path, signed_log: Any,
                                superuser: psycopg.Connection[Any]) -> None:
    tenant, ids = signed_log
    superuser.execute("DELETE FROM emission_entries WHERE id = %s", (ids[7],))
    superuser.commit()
    report = tampered(engine, data_dir, tenant.slug)
    assert kinds(report) == [(Kind.MISSING, ids[7], 7)]
    assert "a leaf without its entry" in report.discrepancies[0].message


def test_inserted_entry_is_named(engine: Engine, data_dir: Path, signed_log: Any,
                                 superuser: psycopg.Connection[Any]) -> None:
    tenant, _ = signed_log
    new_id = superuser.execute(_INSERT.replace("(SELECT tenant_of(current_user))", "(SELECT id FROM tenants WHERE "
                                                                                    "slug = %(slug)s)"),
                               {**entry_values(77), "slug": tenant.slug}).fetchone()[0]  # type: ignore[index]
    superuser.commit()
    report = tampered(engine, data_dir, tenant.slug)
    assert kinds(report) == [(Kind.UNLOGGED, new_id, None)]
    assert "missing from the log" in report.discrepancies[0].message


def test_reordered_leaves_are_named(engine: Engine, data_dir: Path, signed_log: Any,
                                    superuser: psycopg.Connection[Any]) -> None:
    tenant, ids = signed_log
    for a, b in ((3, 1_000_000), (4, 3), (1_000_000, 4)):
        superuser.execute("UPDATE ledger_leaves SET leaf_index = %s WHERE leaf_index = %s AND tenant_id = "
                          "(SELECT id FROM tenants WHERE slug = %s)", (b, a, tenant.slug))
    superuser.commit()
    report = tampered(engine, data_dir, tenant.slug)
    assert (Kind.LEAF_ALTERED, ids[4], 3) in kinds(report) and (Kind.LEAF_ALTERED, ids[3], 4) in kinds(report)
    moved = {d.leaf_index: d.message for d in report.discrepancies if d.kind == Kind.LEAF_ALTERED}
    assert "was moved: it was appended at position 4" in moved[3]
    assert "was moved: it was appended at position 3" in moved[4]
    assert [d.kind for d in report.discrepancies].count(Kind.CHECKPOINT) == 1
    assert report.verified == 0 and report.last_checkpoint is not None and not report.last_checkpoint.valid
    with pytest.raises(LedgerInconsistent, match="no longer hashes to the hash recorded"):
        ledger_log.prove(engine, tenant.slug, ids[3])  # no proof is handed out for a moved leaf


def test_rewritten_leaf_with_a_matching_hash_breaks_the_signed_root(engine: Engine, data_dir: Path, signed_log: Any,
                                                                  superuser: psycopg.Connection[Any]) -> None:
    tenant, ids = signed_log
    # The careful attacker: changes an entry and its log record, and recomputes the leaf hash, so the
    # row is self-consistent. Only the signed checkpoint can tell.
    superuser.execute("UPDATE emission_entries SET kg_co2e = 1 WHERE id = %s", (ids[5],))
    superuser.execute("UPDATE ledger_leaves SET entry = replace(entry, '\"kg_co2e\":7,', '\"kg_co2e\":1,') "
                      "WHERE entry_id = %s AND event = 'correct'", (ids[5],))
    superuser.execute("UPDATE ledger_leaves SET leaf_hash = sha256('\\x00'::bytea || ledger_leaf_data(tenant_id, "
                      "leaf_index, entry_id, event, actor, reason, recorded_at, entry)) WHERE entry_id = %s", (ids[5],))
    superuser.commit()
    report = tampered(engine, data_dir, tenant.slug)
    assert [d.kind for d in report.discrepancies] == [Kind.CHECKPOINT]
    assert "no longer hash to the root it signed" in report.discrepancies[0].message
    with pytest.raises(LedgerInconsistent, match="no longer matches checkpoint"):
        ledger_log.prove(engine, tenant.slug, ids[0])


def test_deleted_leaf_is_named(engine: Engine, data_dir: Path, signed_log: Any,
                               superuser: psycopg.Connection[Any]) -> None:
    tenant, ids = signed_log
    superuser.execute("DELETE FROM ledger_leaves WHERE leaf_index = 2 AND tenant_id = "
                      "(SELECT id FROM tenants WHERE slug = %s)", (tenant.slug,))
    superuser.commit()
    report = tampered(engine, data_dir, tenant.slug)
    found = kinds(report)
    assert (Kind.LEAF_MISSING, None, 2) in found and (Kind.UNLOGGED, ids[2], None) in found
    assert any(d.kind == Kind.LEAF_MISSING and "head counted 13" in d.message for d in report.discrepancies)
    assert any(d.kind == Kind.CHECKPOINT for d in report.discrepancies)


def test_forged_leaf_is_named(engine: Engine, data_dir: Path, signed_log: Any,
                              superuser: psycopg.Connection[Any]) -> None:
    tenant, _ = signed_log
    # A well-formed leaf for an entry that never existed, appended behind the triggers' back.
    superuser.execute(
        "INSERT INTO ledger_leaves (tenant_id, leaf_index, entry_id, event, actor, reason, recorded_at, entry, "
        "leaf_hash) SELECT t.id, 13, 424242, 'create', 'postgres', NULL, now(), '{\"id\":424242}', "
        "sha256('\\x00'::bytea || ledger_leaf_data(t.id, 13, 424242, 'create', 'postgres', NULL, now(), "
        "'{\"id\":424242}')) FROM tenants t WHERE t.slug = %s", (tenant.slug,))
    superuser.commit()
    report = tampered(engine, data_dir, tenant.slug)
    assert (Kind.MISSING, 424242, 13) in kinds(report)
    assert any("head counted 13 leaves appended but the log holds 14" in d.message for d in report.discrepancies)
