"""The tenant's API keys through the API, for its admins (hub tokens with ``custom:scope3:admin``).

The same functions as ``scope3 apikey`` (:mod:`scope3lib.api.keys`), with the tenant's read-write role; a
key's secret is in the answer to its creation or rotation only. API keys themselves never hold the admin
scope, so a leaked key cannot mint others.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Response
from pydantic import BaseModel, ConfigDict, Field

from . import keys
from .auth import Admin
from .context import ApiContext, context

router = APIRouter(tags=["api keys"])
Ctx = Annotated[ApiContext, Depends(context)]
KeyName = Annotated[str, Path(min_length=1, max_length=64, description="The key's name or prefix")]


class KeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._ -]{0,63}$")
    scope: Literal["read", "write", "ingest"]
    device: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,64}$",
                               description="The device of an ingest key (required with scope ingest, only then)")
    expires: str | None = Field(default=None, pattern=r"^(\d{1,5}[hdw]|never)$", description="12h, 90d, 4w or never")


class IssuedKey(BaseModel):
    name: str
    prefix: str
    scope: str
    device: str | None
    expires_at: dt.datetime | None
    key: str = Field(description="The secret: shown in this answer only")


class KeyListed(BaseModel):
    name: str
    prefix: str
    scope: str
    device: str | None
    state: str = Field(description="active, expired or revoked")
    created_by: str
    created_at: dt.datetime
    expires_at: dt.datetime | None
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None


@router.get("/api-keys", response_model=list[KeyListed], summary="The tenant's API keys (admin)")
def list_keys(ctx: Ctx, who: Admin) -> list[dict[str, Any]]:
    return keys.list_keys(ctx.write, ctx.slug)


@router.post("/api-keys", response_model=IssuedKey, status_code=201, summary="Issue an API key (admin)")
def create_key(body: KeyIn, ctx: Ctx, who: Admin) -> dict[str, Any]:
    issued = keys.create_key(ctx.write, ctx.slug, body.name, body.scope, device=body.device, expires=body.expires,
                             created_by=who.label)
    return issued.to_dict()


@router.post("/api-keys/{name}/rotate", response_model=IssuedKey, summary="Revoke a key and issue its successor")
def rotate_key(name: KeyName, ctx: Ctx, who: Admin) -> dict[str, Any]:
    return keys.rotate_key(ctx.write, ctx.slug, name, created_by=who.label).to_dict()


@router.delete("/api-keys/{name}", status_code=204, summary="Revoke a key (refused from its next request)")
def revoke_key(name: KeyName, ctx: Ctx, who: Admin) -> Response:
    keys.revoke_key(ctx.write, ctx.slug, name)
    return Response(status_code=204)
