"""The provisioning CLI contracts that hubs, tests and operators rely on, and its refusals."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import psycopg
import pytest

from tests.helpers import run_cli

pytestmark = pytest.mark.db


def refused(result: subprocess.CompletedProcess[str], code: int, *words: str) -> None:
    """One line on stderr naming the problem, the given exit code, no traceback."""
    assert result.returncode == code, result
    assert "Traceback" not in result.stderr
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, result.stderr
    for w in words:
        assert w in lines[0], lines[0]


def test_tenant_create_prints_working_credentials(database_url: str, data_dir: Path, new_slug: str) -> None:
    r = run_cli(database_url, data_dir, "tenant", "create", new_slug, "--name", "Test Co", "--plan", "starter",
                "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["slug"] == new_slug and out["plan"] == "starter"
    with psycopg.connect(out["database_url"]) as c:
        assert c.execute("SELECT current_user").fetchone() == (out["role"],)
        assert c.execute("SELECT slug FROM tenants").fetchall() == [(new_slug,)]
    with psycopg.connect(out["database_url_readonly"]) as c:
        assert c.execute("SELECT current_user").fetchone() == (out["role_readonly"],)
    secrets_file = data_dir / "tenants" / new_slug / "secrets.json"
    assert json.loads(secrets_file.read_text())["database_url"] == out["database_url"]
    assert secrets_file.stat().st_mode & 0o077 == 0


def test_tenant_create_refusals(database_url: str, data_dir: Path, new_slug: str) -> None:
    assert run_cli(database_url, data_dir, "tenant", "create", new_slug, "--name", "X").returncode == 0
    refused(run_cli(database_url, data_dir, "tenant", "create", new_slug, "--name", "X"), 1, "already exists")
    refused(run_cli(database_url, data_dir, "tenant", "create", "Bad_Slug", "--name", "X"), 2, "invalid tenant slug")
    refused(run_cli(database_url, data_dir, "tenant", "create", "okslug", "--name", "X", "--plan", "gold"), 2,
            "unknown plan")
    r = run_cli(database_url, data_dir, "tenant", "create", "okslug2")
    assert r.returncode == 2 and "--name" in r.stderr and "Traceback" not in r.stderr


def test_user_add_and_refusals(database_url: str, data_dir: Path, new_slug: str) -> None:
    assert run_cli(database_url, data_dir, "tenant", "create", new_slug, "--name", "X", "--plan",
                   "free").returncode == 0
    ok = run_cli(database_url, data_dir, "user", "add", new_slug, f"{new_slug}-ann", "--role", "member",
             "--password-stdin", input="correct horse\n")
    assert ok.returncode == 0, ok.stderr
    refused(run_cli(database_url, data_dir, "user", "add", new_slug, f"{new_slug}-bob", "--role", "boss",
                "--password-stdin", input="correct horse\n"), 2, "unknown role", "owner")
    refused(run_cli(database_url, data_dir, "user", "add", "no-such-tenant", "carl", "--role", "member",
                "--password-stdin", input="correct horse\n"), 1, "unknown tenant")
    refused(run_cli(database_url, data_dir, "user", "add", new_slug, f"{new_slug}-ann", "--role", "viewer",
                "--password-stdin", input="correct horse\n"), 1, "already member")
    refused(run_cli(database_url, data_dir, "user", "add", new_slug, f"{new_slug}-dee", "--role", "viewer",
                "--password-stdin", input="short\n"), 2, "password too short")
    # Free plan: 3 users.
    for name in ("eve", "fay"):
        assert run_cli(database_url, data_dir, "user", "add", new_slug, f"{new_slug}-{name}", "--role", "viewer",
                   "--password-stdin", input="correct horse\n").returncode == 0
    refused(run_cli(database_url, data_dir, "user", "add", new_slug, f"{new_slug}-gus", "--role", "viewer",
                "--password-stdin", input="correct horse\n"), 1, "free plan", "3 users")


def test_device_add_contract_and_plan_limit(database_url: str, data_dir: Path, new_slug: str) -> None:
    assert run_cli(database_url, data_dir, "tenant", "create", new_slug, "--name", "X", "--plan",
                   "free").returncode == 0
    r = run_cli(database_url, data_dir, "device", "add", new_slug, "meter-1", "--region", "CAMX", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["topic"] == f"scope3/{new_slug}/meter-1/readings"
    assert out["mqtt_username"] == f"{new_slug}.meter-1" and len(out["mqtt_password"]) >= 20
    refused(run_cli(database_url, data_dir, "device", "add", new_slug, "meter-1", "--region", "CAMX"), 1,
            "already exists")
    refused(run_cli(database_url, data_dir, "device", "add", new_slug, "bad/topic", "--region", "CAMX"), 2,
            "invalid device id")
    refused(run_cli(database_url, data_dir, "device", "add", new_slug, "m9", "--region", "CAMX", "--supplier", "Nope"),
            1, "no supplier named")
    refused(run_cli(database_url, data_dir, "device", "add", "no-such-tenant", "m9", "--region", "CAMX"), 1,
            "unknown tenant")
    for i in range(2, 6):  # free plan: 5 devices
        assert run_cli(database_url, data_dir, "device", "add", new_slug, f"meter-{i}", "--region",
                       "GB").returncode == 0
    refused(run_cli(database_url, data_dir, "device", "add", new_slug, "meter-6", "--region", "GB"), 1,
            "free plan", "5 devices", "set-plan")
    assert run_cli(database_url, data_dir, "tenant", "set-plan", new_slug, "starter").returncode == 0
    assert run_cli(database_url, data_dir, "device", "add", new_slug, "meter-6", "--region", "GB").returncode == 0


def test_unreachable_database_is_one_line(data_dir: Path) -> None:
    refused(run_cli("postgresql://nobody@127.0.0.1:1/none", data_dir, "tenant", "list"), 1, "cannot connect")


def test_db_upgrade_is_idempotent(database_url: str, data_dir: Path) -> None:
    r = run_cli(database_url, data_dir, "db", "upgrade")
    from alembic.script import ScriptDirectory

    from scope3lib.schema import alembic_config

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert r.returncode == 0 and f"database at revision {head}" in r.stdout
