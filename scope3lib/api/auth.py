"""Who is calling, and what they may do: tenant API keys and the tenant hub's tokens.

``Authorization: Bearer <credential>`` (or JupyterHub's ``token <credential>``). A credential starting with
``s3k_`` is a tenant API key (:mod:`scope3lib.api.keys`); anything else is asked of the tenant's hub, whose
roles grant the custom scopes ``custom:scope3:read``, ``custom:scope3:write`` and ``custom:scope3:admin``
(``scope3lib.hub.auth``). Either way the credential is looked up in the tenant's own hub or tables, so a key
or token of another tenant is simply unknown here: 401, never data.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from .. import db
from . import keys
from .context import ApiContext, context
from .problems import ApiProblem
from .ratelimit import RateLimiter, retry_after

if TYPE_CHECKING:
    import psycopg


class Scope(StrEnum):
    READ = "read"
    WRITE = "write"
    ADMIN = "admin"
    INGEST = "ingest"


#: The hub's custom scopes (declared by scope3lib.hub.config) and what they allow here.
HUB_SCOPES = {f"custom:scope3:{s.value}": s for s in (Scope.READ, Scope.WRITE, Scope.ADMIN)}
_KEY_SCOPES = {"read": frozenset({Scope.READ}), "write": frozenset({Scope.READ, Scope.WRITE}),
               "ingest": frozenset({Scope.INGEST})}

_bearer = HTTPBearer(auto_error=False, description="A tenant API key (s3k_...) or a token of the tenant's hub.")


@dataclass(frozen=True)
class Principal:
    label: str  # "key:<prefix>" or "user:<name>": the request log and rate limits know callers by it
    scopes: frozenset[Scope]
    key_id: int | None = None
    device_id: int | None = None  # a device key's one device
    device: str | None = None
    device_revoked: bool = False


def _unauthorized(detail: str) -> ApiProblem:
    return ApiProblem(401, "Not authenticated", detail, headers={"WWW-Authenticate": 'Bearer realm="scope3"'})


def credential_of(request: Request, bearer: HTTPAuthorizationCredentials | None = None) -> str:
    """The request's credential: ``Authorization: Bearer <credential>`` or JupyterHub's ``token <credential>``."""
    if bearer is not None:
        return bearer.credentials
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() in ("bearer", "token") and value.strip():
        return value.strip()
    raise _unauthorized("send Authorization: Bearer <API key or hub token>")


def _hub_user(ctx: ApiContext, token: str) -> Principal:
    if ctx.hub_auth is None:
        raise _unauthorized("unknown credential: this API runs without a hub, so only API keys (s3k_...) are accepted")
    model = ctx.hub_auth.user_for_token(token, sync=True)
    if not model or model.get("kind", "user") != "user":
        raise _unauthorized("the hub does not know this token (expired, revoked, or of another hub)")
    scopes = frozenset(HUB_SCOPES[s] for s in model.get("scopes", []) if s in HUB_SCOPES)
    return Principal(label=f"user:{model['name']}", scopes=scopes)


def key_principal(found: keys.KeyRecord | str) -> Principal:
    """The caller a verified API key is, or 401 with the reason the key was refused."""
    if isinstance(found, str):
        raise _unauthorized(found)
    return Principal(label=f"key:{found.prefix}", scopes=_KEY_SCOPES[found.scope], key_id=found.id,
                     device_id=found.device_id, device=found.device, device_revoked=found.device_revoked)


def identify(ctx: ApiContext, credential: str, cur: psycopg.Cursor[Any] | None = None) -> Principal:
    """Who ``credential`` is (401 when nobody): an API key, checked with ``cur`` when given (a handler that
    queries anyway saves a connection), else a token of the tenant's hub. Blocking: call it in a thread."""
    if not credential.startswith("s3k_"):
        return _hub_user(ctx, credential)
    if cur is not None:
        return key_principal(keys.verify(cur, credential))
    with db.raw_cursor(ctx.read, autocommit=True) as own:
        return key_principal(keys.verify(own, credential))


def admit(limiter: RateLimiter, who: Principal, scope: Scope | None = None) -> Principal:
    """Let ``who`` in: within the plan's request rate (429), holding ``scope`` when given (403)."""
    wait = limiter.take(who.label)
    if wait:
        raise ApiProblem(429, "Too many requests", f"the {limiter.plan} plan allows {limiter.rate.per_second:g} "
                         f"requests a second per key or user; retry after the Retry-After seconds",
                         headers={"Retry-After": retry_after(wait)})
    return who if scope is None else holding(who, scope)


def holding(who: Principal, scope: Scope) -> Principal:
    """``who``, who must hold ``scope`` (403)."""
    if scope not in who.scopes:
        held = ", ".join(sorted(who.scopes)) or "none"
        raise ApiProblem(403, "Not allowed", f"this needs the {scope.value} scope; {who.label} holds: {held}")
    return who


async def _presented(request: Request,
                     bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)]) -> str:
    return credential_of(request, bearer)


#: A handler's parameter: the request's credential, not yet checked, for the hot handlers that check it
#: themselves in the thread and on the connection their own query uses (:func:`identify`, :func:`admit`).
Credential = Annotated[str, Depends(_presented)]


def authenticate(request: Request, credential: Credential, ctx: Annotated[ApiContext, Depends(context)]) -> Principal:
    """The caller, once authenticated and within the plan's request rate."""
    who = request.state.principal = identify(ctx, credential)  # the request log names a refused caller too
    return admit(ctx.limiter, who)


def require(scope: Scope) -> object:
    """A dependency: the caller, who must hold ``scope``."""

    async def check(who: Annotated[Principal, Depends(authenticate)]) -> Principal:  # no thread-pool hop
        return holding(who, scope)

    return Depends(check)


Reader = Annotated[Principal, require(Scope.READ)]
Writer = Annotated[Principal, require(Scope.WRITE)]
Admin = Annotated[Principal, require(Scope.ADMIN)]
Ingester = Annotated[Principal, require(Scope.INGEST)]
