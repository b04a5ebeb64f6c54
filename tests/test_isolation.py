"""Tenant isolation is enforced by PostgreSQL: whatever SQL tenant A's role sends, B's rows stay out of reach."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from scope3lib import schema
from tests.helpers import TenantFixture, inventory_data, write_readings

pytestmark = pytest.mark.db

TENANT_TABLES = ["suppliers", "emission_entries", "devices", "readings", "rejects", "memberships"]


@pytest.fixture(scope="module")
def seeded(engine: Engine, tenant_a: TenantFixture, tenant_b: TenantFixture) -> dict[str, dict[str, int]]:
    """One row of every kind for each tenant, written by the admin; returns their ids."""
    ids: dict[str, dict[str, int]] = {}
    for tenant in (tenant_a, tenant_b):
        slug = tenant.slug
        supplier, meter = f"{slug} Cement", f"{slug}-meter"
        tenant.add_user(f"{slug}-user", "member")
        tenant.load(inventory_data(
            [{"name": supplier, "naics_code": "327310", "country": "US", "annual_spend": 1000,
              "spend_currency": "USD"}],
            [{"supplier": supplier, "category": 1, "period_start": dt.date(2025, 1, 1),
              "period_end": dt.date(2025, 1, 31), "method": "spend_based", "spend": 1000, "spend_currency": "USD",
              "spend_year": 2022, "kg_co2e": 3924, "data_source": "import", "data_quality": 4}],
            [{"device_key": meter, "supplier": None, "grid_region": "CAMX", "category": 1}]))
        write_readings(engine, slug, meter, [(dt.datetime(2026, 1, 1, tzinfo=dt.UTC), 1.5)])
        with engine.begin() as conn:  # a message the ingest refused, as it records one
            conn.execute(sa.text("INSERT INTO rejects (topic, tenant_id, payload, reason) VALUES "
                                 "('scope3/x/y/readings', :t, 'x', 'test')"), {"t": tenant.tenant_id})
        ids[slug] = {"tenant": tenant.tenant_id, "supplier": tenant.supplier_ids[supplier],
                     "entry": tenant.entry_ids[-1], "device": tenant.device_ids[meter]}
    return ids


@pytest.fixture
def conn_a(tenant_a: TenantFixture, seeded: object) -> Iterator[psycopg.Connection]:
    with psycopg.connect(tenant_a.database_url, autocommit=True) as c:
        yield c


def _denied(conn: psycopg.Connection, sql: str, params: tuple[object, ...] = ()) -> str:
    with pytest.raises(psycopg.Error) as err:
        conn.execute(sql, params)
    return str(err.value)


@pytest.mark.parametrize("table", TENANT_TABLES)
def test_select_sees_only_own_rows(conn_a: psycopg.Connection, seeded: dict[str, dict[str, int]],
                                   table: str) -> None:
    tenants = {r[0] for r in conn_a.execute(f"SELECT tenant_id FROM {table}").fetchall()}
    assert tenants == {seeded["alpha"]["tenant"]}


def test_other_tables_show_only_own_tenant_and_users(conn_a: psycopg.Connection) -> None:
    assert [r[0] for r in conn_a.execute("SELECT slug FROM tenants").fetchall()] == ["alpha"]
    assert [r[0] for r in conn_a.execute("SELECT username FROM users").fetchall()] == ["alpha-user"]


def test_cannot_insert_rows_for_another_tenant(conn_a: psycopg.Connection, seeded: dict[str, dict[str, int]]) -> None:
    b = seeded["beta"]["tenant"]
    msg = _denied(conn_a, "INSERT INTO suppliers (tenant_id, name) VALUES (%s, 'planted')", (b,))
    assert "row-level security" in msg
    msg = _denied(conn_a, "INSERT INTO emission_entries (tenant_id, category, period_start, period_end, method, "
                          "kg_co2e, data_source, data_quality) VALUES (%s, 1, '2025-01-01', '2025-01-31', "
                          "'spend_based', 1, 'manual', 4)", (b,))
    assert "row-level security" in msg


def test_cannot_reference_another_tenants_supplier(conn_a: psycopg.Connection,
                                                   seeded: dict[str, dict[str, int]]) -> None:
    # Foreign keys are checked without RLS; the composite key still refuses a cross-tenant link.
    msg = _denied(conn_a, "INSERT INTO emission_entries (tenant_id, category, period_start, period_end, method, "
                          "supplier_id, kg_co2e, data_source, data_quality) VALUES (%s, 1, '2025-01-01', "
                          "'2025-01-31', 'spend_based', %s, 1, 'manual', 4)",
                  (seeded["alpha"]["tenant"], seeded["beta"]["supplier"]))
    assert "foreign key" in msg


def test_update_and_delete_do_not_reach_other_tenant(conn_a: psycopg.Connection, engine: Engine,
                                                     seeded: dict[str, dict[str, int]]) -> None:
    b = seeded["beta"]
    assert conn_a.execute("UPDATE suppliers SET name = 'hijacked' WHERE id = %s", (b["supplier"],)).rowcount == 0
    assert conn_a.execute("UPDATE emission_entries SET kg_co2e = 0 WHERE tenant_id = %s", (b["tenant"],)).rowcount == 0
    assert conn_a.execute("DELETE FROM emission_entries WHERE id = %s", (b["entry"],)).rowcount == 0
    assert conn_a.execute("DELETE FROM suppliers WHERE tenant_id <> %s", (seeded["alpha"]["tenant"],)).rowcount == 0
    with engine.connect() as admin:
        assert admin.scalar(sa.text("SELECT name FROM suppliers WHERE id = :i"), {"i": b["supplier"]}) == "beta Cement"
        assert admin.scalar(sa.text("SELECT kg_co2e FROM emission_entries WHERE id = :i"), {"i": b["entry"]}) == 3924


def test_cannot_move_own_row_to_another_tenant(conn_a: psycopg.Connection, seeded: dict[str, dict[str, int]]) -> None:
    msg = _denied(conn_a, "UPDATE suppliers SET tenant_id = %s WHERE id = %s",
                  (seeded["beta"]["tenant"], seeded["alpha"]["supplier"]))
    assert "row-level security" in msg or "foreign key" in msg


def test_copy_to_applies_row_security(conn_a: psycopg.Connection) -> None:
    with conn_a.cursor().copy("COPY suppliers (name) TO STDOUT") as copy:
        names = b"".join(bytes(block) for block in copy).decode().split()
    assert "beta" not in names and "alpha" in names


def test_role_switching_is_refused_or_sees_nothing(conn_a: psycopg.Connection, tenant_b: TenantFixture,
                                                   engine: Engine) -> None:
    assert "permission denied" in _denied(conn_a, f'SET ROLE "{tenant_b.role}"')
    assert "permission denied" in _denied(conn_a, "SET ROLE postgres")
    assert "permission denied" in _denied(conn_a, f'SET SESSION AUTHORIZATION "{tenant_b.role}"')
    # Switching to the privilege group is possible but maps to no tenant: it fails closed.
    with engine.connect() as admin:
        group = schema.group_role(schema.role_prefix(admin), "rw")
    conn_a.execute(f'SET ROLE "{group}"')
    assert conn_a.execute("SELECT count(*) FROM suppliers").fetchone() == (0,)
    conn_a.execute("RESET ROLE")
    assert conn_a.execute("SELECT count(*) FROM suppliers").fetchone() == (1,)


def test_settings_and_set_config_change_nothing(conn_a: psycopg.Connection,
                                                seeded: dict[str, dict[str, int]]) -> None:
    b = str(seeded["beta"]["tenant"])
    conn_a.execute("SELECT set_config('app.tenant_id', %s, false)", (b,))
    conn_a.execute("SET row_security = off")  # for a non-owner this makes queries fail, never bypass
    assert "row-level security" in _denied(conn_a, "SELECT * FROM suppliers")
    conn_a.execute("RESET row_security")
    assert conn_a.execute("SELECT count(*) FROM suppliers").fetchone() == (1,)


def test_mapping_and_secrets_are_not_readable(conn_a: psycopg.Connection) -> None:
    assert "permission denied" in _denied(conn_a, "SELECT * FROM tenant_roles")
    assert "permission denied" in _denied(conn_a, "SELECT password_hash FROM users")
    assert "permission denied" in _denied(conn_a, "SELECT credential_hash FROM devices")
    assert "permission denied" in _denied(conn_a, "INSERT INTO tenant_roles VALUES ('x', 1, 'rw')")


def test_cannot_change_schema_or_policies(conn_a: psycopg.Connection) -> None:
    assert "must be owner" in _denied(conn_a, "ALTER TABLE suppliers DISABLE ROW LEVEL SECURITY")
    assert "must be owner" in _denied(conn_a, "DROP POLICY tenant_isolation ON suppliers")
    assert "permission denied" in _denied(conn_a, "CREATE TABLE public.planted (x int)")
    assert "permission denied" in _denied(
        conn_a, "CREATE FUNCTION public.f() RETURNS int LANGUAGE sql AS 'SELECT 1'")


def test_user_function_sees_only_rows_past_the_policy(conn_a: psycopg.Connection) -> None:
    """A function in the WHERE clause that leaks its argument sees only the tenant's own rows."""
    conn_a.execute("CREATE FUNCTION pg_temp.leak(t text) RETURNS boolean LANGUAGE plpgsql COST 0.0000001 "
                   "AS $$ BEGIN RAISE NOTICE 'saw %', t; RETURN true; END $$")
    notices: list[str] = []
    conn_a.add_notice_handler(lambda d: notices.append(d.message_primary or ""))
    conn_a.execute("SELECT * FROM suppliers WHERE pg_temp.leak(name)").fetchall()
    assert notices and all("alpha" in n for n in notices), notices


def test_statistics_do_not_leak_other_tenants(conn_a: psycopg.Connection, engine: Engine) -> None:
    with engine.connect() as admin:
        admin.execute(sa.text("ANALYZE suppliers"))
    vals = conn_a.execute("SELECT most_common_vals::text FROM pg_stats WHERE tablename = 'suppliers'").fetchall()
    assert all("beta" not in str(v) for v in vals)


def test_read_only_role_cannot_write(tenant_a: TenantFixture, seeded: dict[str, dict[str, int]]) -> None:
    with psycopg.connect(tenant_a.database_url_readonly, autocommit=True) as ro:
        assert ro.execute("SELECT count(*) FROM suppliers").fetchone() == (1,)
        for sql in ("INSERT INTO suppliers (tenant_id, name) VALUES (%s, 'x')",
                    "UPDATE suppliers SET name = 'x' WHERE tenant_id = %s",
                    "DELETE FROM emission_entries WHERE tenant_id = %s"):
            assert "permission denied" in _denied(ro, sql, (seeded["alpha"]["tenant"],))


def test_ingest_role_has_only_what_it_needs(ingest_url: str, seeded: dict[str, dict[str, int]]) -> None:
    with psycopg.connect(ingest_url, autocommit=True) as ing:
        for sql in ("SELECT * FROM suppliers", "SELECT * FROM emission_entries", "SELECT * FROM readings",
                    "SELECT credential_hash FROM devices", "DELETE FROM readings", "SELECT * FROM users"):
            assert "permission denied" in _denied(ing, sql)
        assert ing.execute("SELECT count(*) FROM devices").fetchone()[0] >= 2  # type: ignore[index]
