"""Tenant API keys: issued once, stored as a SHA-256 with a visible prefix, refused at once when expired or revoked.

A key reads ``s3k_<8 hex>_<43 URL-safe characters>``. Its first 12 characters (``s3k_`` and the hex) are its
*prefix*, stored in clear so listings and the request log can name a key without revealing it; the whole key
is stored only as its SHA-256 (:mod:`scope3lib.tokens`, as every secret the platform issues). Nothing is
cached: a revoked or expired key is refused on its next request.

Scopes: ``read`` (GET everything), ``write`` (read, and create, change and run), ``ingest`` (a *device key*:
POST readings for its one device to ``/iot/ingest/``, nothing else).

The functions take an engine and a tenant slug: the CLI passes the admin engine (``scope3 apikey``), the API
the tenant's read-write role (row-level security confines both to the tenant's keys).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

import psycopg
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from .. import tokens
from ..errors import InvalidArgument, Scope3Error
from ..tenancy import tenant_id

KEY_RE = re.compile(r"^(s3k_[0-9a-f]{8})_[A-Za-z0-9_-]{43}$")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._ -]{0,63}$")
SCOPES = ("read", "write", "ingest")
_DURATION_RE = re.compile(r"^(\d{1,5})([hdw])$")


class UnknownKey(Scope3Error):
    """No live key of that name or prefix in the tenant."""


@dataclass(frozen=True)
class IssuedKey:
    """A new key; ``key`` is the secret, shown this once."""

    name: str
    prefix: str
    scope: str
    device: str | None
    expires_at: dt.datetime | None
    key: str

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["expires_at"] = self.expires_at.isoformat() if self.expires_at else None
        return d


@dataclass(frozen=True)
class KeyRecord:
    """What a request's key is, once verified."""

    id: int
    prefix: str
    scope: str
    device_id: int | None
    device: str | None = None  # a device key's device id (its topic level)
    device_revoked: bool = False


def parse_expiry(text: str | None) -> dt.timedelta | None:
    """``90d``, ``12h``, ``4w`` -> a duration; None or ``never`` -> no expiry."""
    if text is None or text == "never":
        return None
    m = _DURATION_RE.match(text.strip())
    if not m or int(m.group(1)) == 0:
        raise InvalidArgument(f"invalid expiry {text!r}: give a positive number of hours, days or weeks "
                              "(12h, 90d, 4w) or 'never'")
    n, unit = int(m.group(1)), m.group(2)
    return dt.timedelta(hours=n) if unit == "h" else dt.timedelta(days=n * (7 if unit == "w" else 1))


def _check(name: str, scope: str, device: str | None) -> None:
    if not NAME_RE.match(name):
        raise InvalidArgument(f"invalid key name {name!r}: 1-64 letters, digits, ' ', '.', '_' and '-'")
    if scope not in SCOPES:
        raise InvalidArgument(f"unknown scope {scope!r}: choose one of {', '.join(SCOPES)}")
    if (scope == "ingest") != (device is not None):
        raise InvalidArgument("an ingest key is a device key: give --device with --scope ingest (and only then)")


def _device_id(conn: Connection, tid: int, device: str) -> int:
    row = conn.execute(sa.text("SELECT id, revoked_at FROM devices WHERE tenant_id = :t AND device_key = :d"),
                       {"t": tid, "d": device}).first()
    if row is None or row.revoked_at is not None:
        raise InvalidArgument(f"no (unrevoked) device {device!r} in this tenant (see `scope3 device list`)")
    return int(row.id)


def _insert(conn: Connection, tid: int, name: str, scope: str, device: str | None,
            expires: dt.timedelta | None, created_by: str) -> IssuedKey:
    prefix = tokens.public_id("s3k_", 4)
    key = tokens.issue(f"{prefix}_")
    expires_at = dt.datetime.now(dt.UTC) + expires if expires else None
    if conn.scalar(sa.text("SELECT 1 FROM api_keys WHERE tenant_id = :t AND name = :n AND revoked_at IS NULL"),
                   {"t": tid, "n": name}):
        raise InvalidArgument(f"a live key named {name!r} exists: rotate it, revoke it, or choose another name")
    conn.execute(
        sa.text("INSERT INTO api_keys (tenant_id, name, prefix, secret_hash, scope, device_id, created_by, expires_at) "
                "VALUES (:t, :n, :p, :h, :s, :d, :c, :e)"),
        {"t": tid, "n": name, "p": prefix, "h": tokens.digest(key), "s": scope,
         "d": None if device is None else _device_id(conn, tid, device), "c": created_by, "e": expires_at},
    )
    return IssuedKey(name=name, prefix=prefix, scope=scope, device=device, expires_at=expires_at, key=key)


def create_key(engine: Engine, slug: str, name: str, scope: str, *, device: str | None = None,
               expires: str | dt.timedelta | None = None, created_by: str = "operator") -> IssuedKey:
    """Issue a key; the returned ``key`` is the only time the secret is seen."""
    _check(name, scope, device)
    duration = parse_expiry(expires) if isinstance(expires, str) or expires is None else expires
    with engine.begin() as conn:
        return _insert(conn, tenant_id(conn, slug), name, scope, device, duration, created_by)


def _live(conn: Connection, tid: int, name_or_prefix: str) -> Any:
    row = conn.execute(
        sa.text("SELECT k.id, k.name, k.scope, k.expires_at, k.created_at, d.device_key FROM api_keys k "
                "LEFT JOIN devices d ON d.id = k.device_id "
                "WHERE k.tenant_id = :t AND (k.name = :k OR k.prefix = :k) AND k.revoked_at IS NULL"),
        {"t": tid, "k": name_or_prefix},
    ).first()
    if row is None:
        raise UnknownKey(f"no live API key named {name_or_prefix!r} (see `scope3 apikey list`)")
    return row


def revoke_key(engine: Engine, slug: str, name_or_prefix: str) -> str:
    """Revoke a live key by name or prefix; it is refused from its next request. Returns its prefix."""
    with engine.begin() as conn:
        row = _live(conn, tenant_id(conn, slug), name_or_prefix)
        return str(conn.scalar(sa.text("UPDATE api_keys SET revoked_at = now() WHERE id = :i RETURNING prefix"),
                               {"i": row.id}))


def rotate_key(engine: Engine, slug: str, name_or_prefix: str, created_by: str = "operator") -> IssuedKey:
    """Revoke a live key and issue its successor (same name, scope, device and lifetime) in one transaction."""
    with engine.begin() as conn:
        tid = tenant_id(conn, slug)
        row = _live(conn, tid, name_or_prefix)
        conn.execute(sa.text("UPDATE api_keys SET revoked_at = now() WHERE id = :i"), {"i": row.id})
        lifetime = row.expires_at - row.created_at if row.expires_at else None
        return _insert(conn, tid, row.name, row.scope, row.device_key, lifetime, created_by)


def list_keys(engine: Engine, slug: str) -> list[dict[str, Any]]:
    """Every key of the tenant, newest first: name, prefix, scope, device, state, created, expiry, last used."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT k.name, k.prefix, k.scope, d.device_key AS device, "
                    "CASE WHEN k.revoked_at IS NOT NULL THEN 'revoked' "
                    "     WHEN k.expires_at <= now() THEN 'expired' ELSE 'active' END AS state, "
                    "k.created_by, k.created_at, k.expires_at, k.last_used_at, k.revoked_at "
                    "FROM api_keys k LEFT JOIN devices d ON d.id = k.device_id "
                    "WHERE k.tenant_id = :t ORDER BY k.created_at DESC, k.id DESC"),
            {"t": tenant_id(conn, slug)},
        ).mappings()
        return [dict(r) for r in rows]


#: A presented key's row, by prefix: its hash, scope and device, and whether it is revoked or expired now.
_LOOKUP = ("SELECT k.prefix, k.id, k.secret_hash, k.scope, k.device_id, k.revoked_at IS NOT NULL, "
           "k.expires_at <= now(), d.device_key, d.revoked_at IS NOT NULL "
           "FROM api_keys k LEFT JOIN devices d ON d.id = k.device_id WHERE k.prefix = ANY(%s)")


def _judge(row: Any, prefix: str, key: str) -> KeyRecord | str:
    if row is None or not tokens.matches(row[2], key):
        return "unknown API key"
    if row[5]:
        return f"API key {prefix} was revoked"
    if row[6]:
        return f"API key {prefix} has expired"
    return KeyRecord(id=int(row[1]), prefix=prefix, scope=str(row[3]), device_id=row[4], device=row[7],
                     device_revoked=bool(row[8]))


def verify_many(cur: psycopg.Cursor[Any], presented: Iterable[str]) -> dict[str, KeyRecord | str]:
    """Each presented key's record if it is live, else the reason it is refused (for the 401's detail): one
    query for them all (the HTTP ingest checks the keys of a whole batch of requests at once)."""
    out: dict[str, KeyRecord | str] = {}
    by_prefix: dict[str, list[str]] = {}
    for key in presented:
        m = KEY_RE.match(key)
        if m:
            by_prefix.setdefault(m.group(1), []).append(key)
        else:
            out[key] = "not an API key of this platform (s3k_...)"
    if by_prefix:
        rows = {r[0]: r for r in cur.execute(_LOOKUP, (list(by_prefix),)).fetchall()}
        for prefix, presented_keys in by_prefix.items():
            for key in presented_keys:
                out[key] = _judge(rows.get(prefix), prefix, key)
    return out


def verify(cur: psycopg.Cursor[Any], key: str) -> KeyRecord | str:
    """The key's record if it is live, else the reason it is refused."""
    return verify_many(cur, (key,))[key]
