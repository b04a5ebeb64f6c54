"""Careless and hostile input at the platform's edges: refused in one line that says what, where and what to
do, with nothing half-written and no second platform started by mistake (issue: hardening)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import sqlalchemy as sa

from scope3lib import db, schema
from scope3lib.errors import FileFormatError
from scope3lib.sheets import read_sheet
from tests.helpers import SCOPE3, TenantFactory, TenantFixture, activity_frame, activity_row, run_cli, scope3_env

pytestmark = pytest.mark.db

HEADER = ("category,method,quantity,unit,factor_source,factor_key,spend,currency,spend_year,supplier,"
          "period_start,period_end\n")


def _entries(tenant: TenantFixture) -> int:
    with tenant.engine.connect() as c:
        return int(c.scalar(sa.text("SELECT count(*) FROM emission_entries")))


def _one_line_error(r: subprocess.CompletedProcess[str], code: int, *needles: str) -> None:
    assert r.returncode == code, r.stderr
    assert "Traceback" not in r.stderr and r.stderr.startswith("error: "), r.stderr
    for needle in needles:
        assert needle in r.stderr, (needle, r.stderr)


def test_negative_spend_and_quantities_are_refused_with_their_line(
        make_tenant: TenantFactory, database_url: str, data_dir: Path, tmp_path: Path) -> None:
    tenant = make_tenant()
    f = tmp_path / "activity.csv"
    f.write_text(HEADER
                 + "1,spend_based,,,epa-useeio,327310,1200,USD,2024,,2025-01-01,2025-01-31\n"
                 + "1,spend_based,,,epa-useeio,327310,-1200,USD,2024,,2025-01-01,2025-01-31\n"
                 + "4,average_data,-5,kWh,egrid,CAMX,,,,,2025-01-01,2025-01-31\n")
    r = run_cli(database_url, data_dir, "import", "activity", tenant.slug, str(f))
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "line 3: spend must not be negative (got -1,200.00)" in r.stderr
    assert "line 4: quantity must not be negative (got -5)" in r.stderr and "line 2" not in r.stderr
    assert "nothing was imported" in r.stderr and _entries(tenant) == 0


def test_the_calculation_refuses_negative_supplier_emissions() -> None:
    from scope3lib.accounting.calculation import calculate
    from scope3lib.factors.lookup import factor_table

    rows = activity_frame([activity_row(category=1, method="supplier_specific", spend=100, currency="USD",
                                        spend_year=2024, supplier="S", supplier_kg_co2e=-3,
                                        supplier_revenue=1000, period_start="2025-01-01", period_end="2025-01-31")])
    out = calculate(rows, factor_table(None))
    assert out["error"].iloc[0].startswith("supplier_kg_co2e must not be negative")


@pytest.mark.parametrize(("content", "where"), [
    (HEADER + '1,spend_based,,,epa-useeio,"327310,1200,USD,2024,,2025-01-01,2025-01-31\n',
     'line 2: a quote (") opens a value that is never closed'),
    (HEADER + "1,spend_based,,,epa-useeio,327310,1200,USD,2024,,2025-01-01,2025-01-31,extra\n",
     "line 2: 13 values where the header has 12"),
    (b"%PDF-1.7\n\xe2\x28\xa1 not text", "is not UTF-8 text"),
    (b"PK\x03\x04 a zip that is not a workbook", "not an Excel workbook"),
    ("", "is empty"),
])
def test_a_file_that_cannot_be_read_is_refused_in_words(
        make_tenant: TenantFactory, database_url: str, data_dir: Path, tmp_path: Path,
        content: str | bytes, where: str) -> None:
    tenant = make_tenant()
    f = tmp_path / "activity.csv"
    f.write_bytes(content if isinstance(content, bytes) else content.encode())
    r = run_cli(database_url, data_dir, "import", "activity", tenant.slug, str(f))
    _one_line_error(r, 2, str(f), where)
    assert "ParserError" not in r.stderr and "UnicodeDecodeError" not in r.stderr and _entries(tenant) == 0
    with pytest.raises(FileFormatError, match=where.replace("(", r"\(").replace(")", r"\)")):
        read_sheet(f)


def test_a_meter_in_an_unknown_region_is_refused_when_added(
        make_tenant: TenantFactory, database_url: str, data_dir: Path) -> None:
    tenant = make_tenant()
    r = run_cli(database_url, data_dir, "device", "add", tenant.slug, "m-1", "--region", "NARNIA")
    _one_line_error(r, 2, "unknown grid region 'NARNIA'", "CAMX", "GB", "FR")
    assert run_cli(database_url, data_dir, "device", "list", tenant.slug).stdout.count("m-1") == 0
    ok = run_cli(database_url, data_dir, "device", "add", tenant.slug, "m-1", "--region", "camx")
    assert ok.returncode == 0, ok.stderr


def test_an_unknown_tenant_is_named_as_such(database_url: str, data_dir: Path) -> None:
    for args in (["report", "run", "monthly", "--tenant", "no-such"], ["ml", "hotspots", "no-such"],
                 ["report", "history", "no-such"]):
        r = run_cli(database_url, data_dir, *args)
        _one_line_error(r, 1, "unknown tenant 'no-such'", str(data_dir), "SCOPE3_DATA_DIR")
        assert "rotate" not in r.stderr


def test_without_the_data_directory_a_command_says_so_and_starts_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "not-the-platform"
    env = scope3_env(None, missing)
    r = subprocess.run([*SCOPE3, "tenant", "list"], capture_output=True, text=True, timeout=120, env=env)
    _one_line_error(r, 1, f"no platform database in {missing}", "SCOPE3_DATA_DIR", "scope3 db upgrade")
    assert len(r.stderr.strip().splitlines()) == 1 and not missing.exists()


def test_an_unmigrated_database_says_run_db_upgrade(server_admin_url: str, tmp_path: Path) -> None:
    from tests.conftest import _create_database, _drop_database

    name, url = _create_database(server_admin_url)
    try:
        r = subprocess.run([*SCOPE3, "tenant", "list"], capture_output=True, text=True, timeout=120,
                           env=scope3_env(url, tmp_path))
        _one_line_error(r, 1, "has no platform schema yet: run `scope3 db upgrade`")
        assert len(r.stderr.strip().splitlines()) == 1
        engine = db.create_engine(url)
        schema.upgrade(engine, "0005")
        r = subprocess.run([*SCOPE3, "tenant", "list"], capture_output=True, text=True, timeout=120,
                           env=scope3_env(url, tmp_path))
        _one_line_error(r, 1, f"is at schema 0005, this version needs {schema.head_revision()}")
        engine.dispose()
    finally:
        _drop_database(server_admin_url, name)


def test_calc_without_a_platform_database_uses_the_builtin_factors(tmp_path: Path) -> None:
    f, out = tmp_path / "a.csv", tmp_path / "out.csv"
    f.write_text(HEADER + "1,spend_based,,,epa-useeio,327310,1000,USD,2022,,2025-01-01,2025-01-31\n")
    r = subprocess.run([*SCOPE3, "calc", str(f), "--out", str(out)], capture_output=True, text=True, timeout=120,
                       env=scope3_env(None, tmp_path / "none"))
    assert r.returncode == 0, r.stderr
    assert "built-in factor set" in r.stderr and "1 row calculated, 0 refused, 3,924.0 kg CO2e" in r.stdout
    assert not (tmp_path / "none").exists()


def test_a_password_hashed_with_other_parameters_still_signs_in_and_is_rehashed(
        make_tenant: TenantFactory, engine: sa.Engine) -> None:
    """Passwords are argon2id at OWASP's minimum (19 MiB, 2 passes, 1 lane); a hash made with the parameters used
    before (RFC 9106's low-memory profile) still verifies, and the sign-in replaces it; a wrong password changes
    nothing."""
    from argon2 import PasswordHasher

    from scope3lib import tenancy
    from scope3lib.models import Role

    tenant = make_tenant()
    tenant.add_user("old-hash", "viewer")
    old = PasswordHasher(time_cost=3, memory_cost=64 * 1024, parallelism=4).hash("s3cret-pass")
    with engine.begin() as c:
        c.execute(sa.text("UPDATE users SET password_hash = :h WHERE username = 'old-hash'"), {"h": old})

    def stored() -> str:
        with engine.connect() as c:
            return str(c.scalar(sa.text("SELECT password_hash FROM users WHERE username = 'old-hash'")))

    assert tenancy.authenticate(engine, tenant.slug, "old-hash", "wrong") is None
    assert stored() == old
    assert tenancy.authenticate(engine, tenant.slug, "old-hash", "s3cret-pass") is Role.VIEWER
    assert stored() != old and stored().startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert tenancy.authenticate(engine, tenant.slug, "old-hash", "s3cret-pass") is Role.VIEWER
