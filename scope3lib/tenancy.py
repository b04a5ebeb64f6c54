"""Tenants, their PostgreSQL roles, users and memberships, and plan limits.

Provisioning runs with the platform's admin connection. Each tenant gets two login roles, read-write
and read-only, members of the groups that migration 0001 grants privileges to; row-level security
maps ``current_user`` to the tenant. Their passwords are generated here and kept in the tenant's
secrets file (``DATA_DIR/tenants/<slug>/secrets.json``, mode 0600), which the tenant's hub reads.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.engine import Connection, Engine

from . import schema
from .db import with_credentials
from .errors import DuplicateTenant, DuplicateUser, InvalidArgument, PlanLimitExceeded, Scope3Error, UnknownTenant
from .models import Membership, Plan, Role, Tenant, User

SLUG_RE = re.compile(r"^[a-z][a-z0-9-]{1,30}[a-z0-9]$")
USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class PlanLimits:
    users: int | None
    devices: int | None
    suppliers: int | None


# None means unlimited. Enforced by provisioning (users, devices) and by imports (suppliers).
PLAN_LIMITS: dict[Plan, PlanLimits] = {
    Plan.FREE: PlanLimits(users=3, devices=5, suppliers=50),
    Plan.STARTER: PlanLimits(users=10, devices=50, suppliers=500),
    Plan.PROFESSIONAL: PlanLimits(users=50, devices=1_000, suppliers=5_000),
    Plan.ENTERPRISE: PlanLimits(users=None, devices=None, suppliers=None),
}

# argon2id at OWASP's recommended minimum (19 MiB, 2 passes, 1 lane; OWASP Password Storage Cheat Sheet, "Argon2id").
# The library's default, RFC 9106's low-memory profile (64 MiB, 3 passes, 4 lanes), took 140-200 ms a sign-in on
# 2 cores, most of what an executive waits for before the dashboard; this takes about 30 ms. Hashes made with
# other parameters still verify, and are rehashed with these at the user's next sign-in (authenticate).
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


@dataclass(frozen=True)
class TenantCredentials:
    slug: str
    name: str
    plan: str
    database_url: str
    database_url_readonly: str
    role: str
    role_readonly: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def validate_slug(slug: str) -> str:
    if not SLUG_RE.match(slug):
        raise InvalidArgument(
            f"invalid tenant slug {slug!r}: use 3-32 lower-case letters, digits and '-', "
            "starting with a letter and not ending with '-'"
        )
    return slug


def parse_plan(plan: str) -> Plan:
    try:
        return Plan(plan)
    except ValueError:
        raise InvalidArgument(f"unknown plan {plan!r}: choose one of {', '.join(p.value for p in Plan)}") from None


def tenant_dir(data_dir: Path, slug: str) -> Path:
    return data_dir / "tenants" / slug


def _write_secret(path: Path, content: Mapping[str, object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(content, f, indent=2)
    os.replace(tmp, path)


def _role_password(conn: Connection, role: str) -> str:
    password = secrets.token_urlsafe(24)  # URL-safe alphabet: no quoting needed in SQL or URLs
    conn.execute(sa.text(f"ALTER ROLE \"{role}\" PASSWORD '{password}'"))
    return password


def tenant_id(conn: Connection, slug: str) -> int:
    tid = conn.scalar(sa.select(Tenant.id).where(Tenant.slug == slug))
    if tid is None:
        raise UnknownTenant(slug)
    return int(tid)


def connected_tenant(engine: Engine | Connection) -> str | None:
    """The slug of the tenant whose role ``engine`` logs in as (None for a role that is no tenant's)."""
    query = sa.text("SELECT slug FROM tenants WHERE id = tenant_of(current_user)")
    if isinstance(engine, Connection):
        slug = engine.scalar(query)
    else:
        with engine.connect() as conn:
            slug = conn.scalar(query)
    return None if slug is None else str(slug)


def get_tenant(conn: Connection, slug: str) -> Tenant:
    row = conn.execute(sa.select(Tenant).where(Tenant.slug == slug)).first()
    if row is None:
        raise UnknownTenant(slug)
    return Tenant(id=row.id, slug=row.slug, name=row.name, plan=row.plan, created_at=row.created_at)


def create_tenant(
    engine: Engine, data_dir: Path, slug: str, name: str, plan: str = Plan.FREE.value
) -> TenantCredentials:
    """Create a tenant, its two login roles, and its secrets file."""
    validate_slug(slug)
    plan_ = parse_plan(plan)
    if not name.strip():
        raise InvalidArgument("tenant name must not be empty")
    with engine.begin() as conn:
        if conn.scalar(sa.select(Tenant.id).where(Tenant.slug == slug)) is not None:
            raise DuplicateTenant(slug)
        prefix = schema.role_prefix(conn)
        tid = conn.scalar(
            sa.insert(Tenant).values(slug=slug, name=name.strip(), plan=plan_.value).returning(Tenant.id)
        )
        urls: dict[str, str] = {}
        roles: dict[str, str] = {}
        for access in ("rw", "ro"):
            role = schema.tenant_role(prefix, slug, access)
            group = schema.group_role(prefix, access)
            exists = conn.scalar(sa.text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role})
            if exists:  # left over from a tenant deleted outside the platform: take it over
                conn.execute(sa.text(f'ALTER ROLE "{role}" LOGIN INHERIT'))
            else:
                conn.execute(
                    sa.text(
                        f'CREATE ROLE "{role}" LOGIN INHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE '
                        f'NOBYPASSRLS IN ROLE "{group}"'
                    )
                )
            conn.execute(sa.text(f'GRANT "{group}" TO "{role}"'))
            password = _role_password(conn, role)
            conn.execute(
                sa.text("INSERT INTO tenant_roles (role_name, tenant_id, access) VALUES (:r, :t, :a)"),
                {"r": role, "t": tid, "a": access},
            )
            urls[access] = with_credentials(engine.url, role, password)
            roles[access] = role
        creds = TenantCredentials(
            slug=slug,
            name=name.strip(),
            plan=plan_.value,
            database_url=urls["rw"],
            database_url_readonly=urls["ro"],
            role=roles["rw"],
            role_readonly=roles["ro"],
        )
        _write_secret(tenant_dir(data_dir, slug) / "secrets.json", creds.to_dict())
    return creds


def tenant_credentials(data_dir: Path, slug: str) -> TenantCredentials:
    """The tenant's database URLs, from its secrets file."""
    validate_slug(slug)
    if not tenant_dir(data_dir, slug).is_dir():
        raise UnknownTenant(slug, f"in the data directory {data_dir} (SCOPE3_DATA_DIR); if it was created in another, "
                                  "set SCOPE3_DATA_DIR to that one")
    path = tenant_dir(data_dir, slug) / "secrets.json"
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise Scope3Error(
            f"no credentials for tenant {slug!r} in {path}: run `scope3 tenant rotate {slug}` "
            "with the admin database URL to issue new ones"
        ) from None
    return TenantCredentials(**data)


def rotate_credentials(engine: Engine, data_dir: Path, slug: str) -> TenantCredentials:
    """Give the tenant's roles new passwords and rewrite its secrets file."""
    with engine.begin() as conn:
        tenant = get_tenant(conn, slug)
        prefix = schema.role_prefix(conn)
        urls = {}
        for access in ("rw", "ro"):
            role = schema.tenant_role(prefix, slug, access)
            urls[access] = with_credentials(engine.url, role, _role_password(conn, role))
        creds = TenantCredentials(
            slug=slug,
            name=tenant.name,
            plan=tenant.plan,
            database_url=urls["rw"],
            database_url_readonly=urls["ro"],
            role=schema.tenant_role(prefix, slug, "rw"),
            role_readonly=schema.tenant_role(prefix, slug, "ro"),
        )
        _write_secret(tenant_dir(data_dir, slug) / "secrets.json", creds.to_dict())
    return creds


def list_tenants(engine: Engine) -> list[dict[str, object]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                """SELECT t.slug, t.name, t.plan,
                          (SELECT count(*) FROM memberships m WHERE m.tenant_id = t.id) AS users,
                          (SELECT count(*) FROM devices d WHERE d.tenant_id = t.id) AS devices,
                          (SELECT count(*) FROM suppliers s WHERE s.tenant_id = t.id) AS suppliers
                   FROM tenants t ORDER BY t.slug"""
            )
        ).mappings()
        return [dict(r) for r in rows]


def set_plan(engine: Engine, slug: str, plan: str) -> None:
    plan_ = parse_plan(plan)
    with engine.begin() as conn:
        tid = tenant_id(conn, slug)
        conn.execute(sa.update(Tenant).where(Tenant.id == tid).values(plan=plan_.value))


def check_limit(conn: Connection, slug: str, what: str, count_sql: str, extra: int = 1) -> None:
    """Refuse when adding ``extra`` more ``what`` would exceed the tenant's plan."""
    tenant = get_tenant(conn, slug)
    plan = Plan(tenant.plan)
    limit = getattr(PLAN_LIMITS[plan], what)
    if limit is None:
        return
    current = conn.scalar(sa.text(count_sql), {"t": tenant.id}) or 0
    if current + extra > limit:
        raise PlanLimitExceeded(slug, plan.value, what, limit)


def add_user(engine: Engine, slug: str, username: str, role: str, password: str) -> None:
    """Create ``username`` (or reuse an existing user) and make them ``role`` in tenant ``slug``."""
    try:
        role_ = Role(role)
    except ValueError:
        raise InvalidArgument(f"unknown role {role!r}: choose one of {', '.join(r.value for r in Role)}") from None
    if not USERNAME_RE.match(username):
        raise InvalidArgument(
            f"invalid username {username!r}: use up to 64 lower-case letters, digits, '.', '_' and '-'"
        )
    if len(password) < 8:
        raise InvalidArgument("password too short: use at least 8 characters")
    with engine.begin() as conn:
        tid = tenant_id(conn, slug)
        user_id = conn.scalar(sa.select(User.id).where(User.username == username))
        if user_id is None:
            user_id = conn.scalar(
                sa.insert(User).values(username=username, password_hash=hash_password(password)).returning(User.id)
            )
        else:
            stored = conn.scalar(sa.select(User.password_hash).where(User.id == user_id))
            if not verify_password(str(stored), password):
                raise DuplicateUser(
                    f"user {username!r} already exists with another password; "
                    "give their current password to add them to another tenant"
                )
        member = conn.scalar(
            sa.select(Membership.role).where(Membership.user_id == user_id, Membership.tenant_id == tid)
        )
        if member is not None:
            raise DuplicateUser(f"user {username!r} is already {member} of tenant {slug!r}")
        check_limit(conn, slug, "users", "SELECT count(*) FROM memberships WHERE tenant_id = :t")
        conn.execute(sa.insert(Membership).values(user_id=user_id, tenant_id=tid, role=role_.value))


def authenticate(engine: Engine, slug: str, username: str, password: str) -> Role | None:
    """The user's role in tenant ``slug`` if the password is right and they are a member, else None."""
    with engine.connect() as conn:
        row = conn.execute(
            sa.text(
                """SELECT u.password_hash, m.role FROM users u
                   JOIN memberships m ON m.user_id = u.id
                   JOIN tenants t ON t.id = m.tenant_id
                   WHERE u.username = :u AND t.slug = :s"""
            ),
            {"u": username, "s": slug},
        ).first()
    if row is None or not verify_password(row.password_hash, password):
        return None
    if _hasher.check_needs_rehash(row.password_hash):
        with engine.begin() as conn:  # the stored hash, if nobody changed it meanwhile
            conn.execute(sa.update(User).where(User.username == username, User.password_hash == row.password_hash)
                         .values(password_hash=hash_password(password)))
    return Role(row.role)


def ingest_database_url(engine: Engine, data_dir: Path) -> str:
    """URL for the ingest service's role, issuing it a password on first use."""
    path = data_dir / "ingest.json"
    with engine.begin() as conn:
        role = schema.ingest_role(schema.role_prefix(conn))
        if path.exists():
            stored = json.loads(path.read_text())
            if stored.get("role") == role and stored.get("server") == _server_key(engine):
                return str(stored["database_url"])
        url = with_credentials(engine.url, role, _role_password(conn, role))
    _write_secret(path, {"role": role, "server": _server_key(engine), "database_url": url})
    return url


def _server_key(engine: Engine) -> str:
    u = engine.url
    return f"{u.host}:{u.port}/{u.database}?{sorted(u.query.items())}"
