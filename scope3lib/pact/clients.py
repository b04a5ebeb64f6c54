"""Partners' OAuth 2 client credentials for a tenant's PACT host, the access tokens they get, and the record of
every exchange.

A partner gets a ``client_id`` (``pact_<16 hex>``, stored in clear so listings and the exchange record can name
it) and a ``client_secret`` (256 random bits, shown once, stored only as its SHA-256, as API keys are). The
token endpoint swaps them for an access token (``pat_...``, stored as its SHA-256) that expires after
:data:`TOKEN_LIFETIME`; every request looks its token up with the client's state, so a revoked client's tokens
stop working at once. A client may also carry where and how this host reaches the partner's own PACT host
(its base URL and the credentials the partner issued to us), for the answers to the partner's requests.

The functions take an engine and a tenant slug (the CLI passes the admin engine, the API the tenant's
read-write role; row-level security confines both to the tenant's rows).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import asdict, dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Engine

from scope3lib import tokens
from scope3lib.errors import InvalidArgument, PactError, Scope3Error
from scope3lib.tenancy import tenant_id

TOKEN_LIFETIME = dt.timedelta(hours=1)
CLIENT_ID_RE = re.compile(r"^pact_[0-9a-f]{16}$")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._ -]{0,63}$")


class UnknownClient(Scope3Error):
    """No live PACT client of that id or name in the tenant."""


class InvalidClient(PactError):
    """Client credentials the token endpoint refuses (OAuth 2 ``invalid_client``, RFC 6749 section 5.2)."""

    http_status = 401


class InvalidToken(PactError):
    """A bearer token that is unknown, expired or of a revoked client (401; code BadRequest, which the
    conformance service prefers, or TokenExpired)."""

    http_status = 401

    def __init__(self, message: str, code: str = "BadRequest") -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class IssuedClient:
    """New client credentials; ``client_secret`` is shown this once."""

    name: str
    client_id: str
    client_secret: str
    partner_url: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Caller:
    """The client a valid token belongs to."""

    id: int
    client_id: str
    name: str


@dataclass(frozen=True)
class Partner:
    """Where and how to reach a client's own PACT host (None where the client has not said)."""

    client_id: str
    base_url: str | None
    partner_client_id: str | None
    partner_client_secret: str | None


def create_client(engine: Engine, slug: str, name: str, *, created_by: str = "operator",
                  partner_url: str | None = None, partner_client_id: str | None = None,
                  partner_client_secret: str | None = None) -> IssuedClient:
    """Issue credentials to partner NAME; the returned secret is the only time it is seen."""
    if not NAME_RE.match(name):
        raise InvalidArgument(f"invalid client name {name!r}: 1-64 letters, digits, ' ', '.', '_' and '-'")
    if partner_url is not None and not partner_url.startswith("https://"):
        raise InvalidArgument(f"partner URL {partner_url!r} is not https://...: PACT hosts are HTTPS only")
    if (partner_client_id is None) != (partner_client_secret is None):
        raise InvalidArgument("give the partner's client id and secret together (or neither)")
    client_id, secret = tokens.public_id("pact_", 8), tokens.issue()
    with engine.begin() as conn:
        tid = tenant_id(conn, slug)
        if conn.scalar(sa.text("SELECT 1 FROM pact_clients WHERE tenant_id = :t AND name = :n AND revoked_at IS NULL"),
                       {"t": tid, "n": name}):
            raise InvalidArgument(f"a live PACT client named {name!r} exists: revoke it or choose another name")
        conn.execute(sa.text(
            "INSERT INTO pact_clients (tenant_id, name, client_id, secret_hash, partner_url, partner_client_id, "
            "partner_client_secret, created_by) VALUES (:t, :n, :c, :h, :u, :pi, :ps, :by)"),
            {"t": tid, "n": name, "c": client_id, "h": tokens.digest(secret), "u": partner_url, "pi": partner_client_id,
             "ps": partner_client_secret, "by": created_by})
    return IssuedClient(name=name, client_id=client_id, client_secret=secret, partner_url=partner_url)


def list_clients(engine: Engine, slug: str) -> list[dict[str, Any]]:
    """The tenant's clients, newest first: name, client_id, state, partner URL, created, last used, revoked."""
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT name, client_id, CASE WHEN revoked_at IS NULL THEN 'active' ELSE 'revoked' END AS state, "
            "partner_url, created_by, created_at, last_used_at, revoked_at FROM pact_clients WHERE tenant_id = :t "
            "ORDER BY created_at DESC, id DESC"), {"t": tenant_id(conn, slug)}).mappings()
        return [dict(r) for r in rows]


def revoke_client(engine: Engine, slug: str, client: str) -> str:
    """Revoke a live client by client_id or name: its tokens stop working at once. Returns its client_id."""
    with engine.begin() as conn:
        tid = tenant_id(conn, slug)
        found = conn.scalar(sa.text(
            "UPDATE pact_clients SET revoked_at = now() WHERE tenant_id = :t AND (client_id = :c OR name = :c) "
            "AND revoked_at IS NULL RETURNING client_id"), {"t": tid, "c": client})
        if found is None:
            raise UnknownClient(f"no live PACT client {client!r} in tenant {slug} "
                                f"(see `scope3 pact client list {slug}`)")
        conn.execute(sa.text("DELETE FROM pact_tokens WHERE tenant_id = :t AND client = "
                             "(SELECT id FROM pact_clients WHERE client_id = :c)"), {"t": tid, "c": found})
        return str(found)


def issue_token(engine: Engine, slug: str, client_id: str, client_secret: str) -> tuple[str, int]:
    """``(access token, seconds it lasts)`` for valid credentials; :class:`InvalidClient` otherwise."""
    with engine.begin() as conn:
        tid = tenant_id(conn, slug)
        row = conn.execute(sa.text("SELECT id, secret_hash, revoked_at FROM pact_clients "
                                   "WHERE tenant_id = :t AND client_id = :c"), {"t": tid, "c": client_id}).first()
        if row is None or not tokens.matches(row.secret_hash, client_secret):
            raise InvalidClient("unknown client or wrong secret")
        if row.revoked_at is not None:
            raise InvalidClient(f"client {client_id} was revoked")
        token = tokens.issue("pat_")
        conn.execute(sa.text("DELETE FROM pact_tokens WHERE tenant_id = :t AND expires_at < now() - interval '1 day'"),
                     {"t": tid})
        conn.execute(sa.text("INSERT INTO pact_tokens (tenant_id, client, token_hash, expires_at) "
                             "VALUES (:t, :c, :h, now() + :life)"),
                     {"t": tid, "c": row.id, "h": tokens.digest(token), "life": TOKEN_LIFETIME})
        conn.execute(sa.text("UPDATE pact_clients SET last_used_at = now() WHERE id = :c"), {"c": row.id})
    return token, int(TOKEN_LIFETIME.total_seconds())


def verify_token(engine: Engine, tid: int, token: str) -> Caller:
    """The client of a live token; :class:`InvalidToken` for one that is unknown, expired or revoked."""
    with engine.connect() as conn:
        row = conn.execute(sa.text(
            "SELECT c.id, c.client_id, c.name, c.revoked_at, t.expires_at <= now() AS expired FROM pact_tokens t "
            "JOIN pact_clients c ON c.id = t.client WHERE t.token_hash = :h AND t.tenant_id = :t"),
            {"h": tokens.digest(token), "t": tid}).first()
    if row is None:
        raise InvalidToken("unknown access token: get one from the token endpoint")
    if row.revoked_at is not None:
        raise InvalidToken("the client of this access token was revoked")
    if row.expired:
        raise InvalidToken("the access token has expired: get a new one from the token endpoint", "TokenExpired")
    return Caller(id=int(row.id), client_id=str(row.client_id), name=str(row.name))


def partner(engine: Engine, tid: int, client_id: str) -> Partner:
    """Where the client's own host is and the credentials it issued to us (read-write role only)."""
    with engine.connect() as conn:
        row = conn.execute(sa.text("SELECT partner_url, partner_client_id, partner_client_secret, client_id "
                                   "FROM pact_clients WHERE tenant_id = :t AND revoked_at IS NULL "
                                   "AND (client_id = :c OR name = :c)"), {"t": tid, "c": client_id}).first()
    if row is None:
        return Partner(client_id, None, None, None)
    return Partner(str(row.client_id), row.partner_url, row.partner_client_id, row.partner_client_secret)


def set_partner(engine: Engine, slug: str, client: str, partner_url: str, partner_client_id: str,
                partner_client_secret: str) -> str:
    """Record where client ``client``'s own PACT host is and the credentials it issued to this tenant (for the
    answers to its requests, and for asking it for footprints). Returns the client_id."""
    if not partner_url.startswith("https://"):
        raise InvalidArgument(f"partner URL {partner_url!r} is not https://...: PACT hosts are HTTPS only")
    with engine.begin() as conn:
        found = conn.scalar(sa.text(
            "UPDATE pact_clients SET partner_url = :u, partner_client_id = :i, partner_client_secret = :s "
            "WHERE tenant_id = :t AND (client_id = :c OR name = :c) AND revoked_at IS NULL RETURNING client_id"),
            {"t": tenant_id(conn, slug), "c": client, "u": partner_url.rstrip("/"), "i": partner_client_id,
             "s": partner_client_secret})
    if found is None:
        raise UnknownClient(f"no live PACT client {client!r} in tenant {slug} (see `scope3 pact client list {slug}`)")
    return str(found)


def record(engine: Engine, tid: int, direction: str, partner: str, action: str, status: str, *,
           event_type: str | None = None, event_id: str | None = None, url: str | None = None,
           http_status: int | None = None, summary: dict[str, Any] | None = None, error: str | None = None) -> None:
    """Record one exchange in or out (``status`` ok, refused or failed) in ``pact_exchanges``."""
    with engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO pact_exchanges (tenant_id, direction, partner, action, event_type, event_id, url, status, "
            "http_status, summary, error) VALUES (:t, :d, :p, :a, :et, :ei, :u, :s, :hs, :sum, :e)"
        ).bindparams(sa.bindparam("sum", type_=JSONB)),
            {"t": tid, "d": direction, "p": partner, "a": action, "et": event_type, "ei": event_id, "u": url,
             "s": status, "hs": http_status, "sum": summary or {}, "e": error})


def exchanges(engine: Engine, slug: str, limit: int = 50) -> list[dict[str, Any]]:
    """The tenant's latest exchanges, newest first."""
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT at, direction, partner, action, event_type, event_id, url, status, http_status, summary, error "
            "FROM pact_exchanges WHERE tenant_id = :t ORDER BY at DESC, id DESC LIMIT :n"),
            {"t": tenant_id(conn, slug), "n": limit}).mappings()
        return [dict(r) for r in rows]
