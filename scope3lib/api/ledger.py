"""The tamper-evident ledger: signed checkpoints, the public key to pin, and an entry's inclusion proof.

An auditor checks what these return offline, without the API (``scope3 ledger audit``, docs/ledger.md).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any

import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from fastapi import APIRouter, Depends, Path, Request, Response
from pydantic import BaseModel, Field

from ..ledger import log as ledger_log
from ..ledger.notes import public_key_pem, verifier_key
from .auth import Reader
from .context import ApiContext, context
from .pagination import Cursor, Limit, Page, decode, page
from .problems import ApiProblem

router = APIRouter(tags=["ledger"])
Ctx = Annotated[ApiContext, Depends(context)]


class Checkpoint(BaseModel):
    id: int
    tree_size: int
    root_hash: str = Field(description="hex")
    signed_at: dt.datetime
    key_id: str
    note: str = Field(description="The signed note (C2SP tlog-checkpoint), as an auditor keeps it")


class PublicKey(BaseModel):
    key_id: str
    name: str
    pem: str
    verifier_key: str = Field(description="name+keyid+base64 (golang.org/x/mod/sumdb/note)")


class InclusionProof(BaseModel):
    checkpoint: str = Field(description="checkpoint.txt")
    proof: dict[str, Any] = Field(description="proof.json")
    entry: str = Field(description="entry.json: the leaf's bytes as text (canonical JSON)")


@router.get("/ledger/checkpoints", response_model=Page[Checkpoint], summary="Signed checkpoints, newest first")
def list_checkpoints(request: Request, response: Response, ctx: Ctx, who: Reader, limit: Limit = 100,
                     cursor: Cursor = None) -> dict[str, Any]:
    before = decode(cursor, (int,))
    with ctx.read.connect() as conn:
        rows = [dict(r) for r in conn.execute(sa.text(
            "SELECT id, tree_size, encode(root_hash, 'hex') AS root_hash, signed_at, key_id, note "
            "FROM ledger_checkpoints WHERE tenant_id = :t AND id < :b ORDER BY id DESC LIMIT :n"),
            {"t": ctx.tenant_id, "b": before[0] if before else 2**63 - 1, "n": limit + 1}).mappings()]
    return page(request, response, rows, limit, lambda r: [r["id"]])


@router.get("/ledger/public-key", response_model=list[PublicKey], summary="The keys that sign the checkpoints")
def public_keys(ctx: Ctx, who: Reader) -> list[PublicKey]:
    with ctx.read.connect() as conn:
        rows = conn.execute(sa.text("SELECT key_id, key_name, public_key FROM ledger_keys WHERE tenant_id = :t "
                                    "ORDER BY created_at"), {"t": ctx.tenant_id}).all()
    if not rows:
        raise ApiProblem(404, "Not found", "the tenant's ledger has no signing key yet: the operator creates it with "
                         f"the first checkpoint (`scope3 ledger checkpoint {ctx.slug}`)")
    out = []
    for r in rows:
        key = Ed25519PublicKey.from_public_bytes(bytes(r.public_key))
        out.append(PublicKey(key_id=r.key_id, name=r.key_name, pem=public_key_pem(key),
                             verifier_key=verifier_key(r.key_name, key)))
    return out


@router.get("/ledger/entries/{entry_id}/proof", response_model=InclusionProof,
            summary="Inclusion proof of an entry's last change in the latest checkpoint")
def proof(entry_id: Annotated[int, Path(ge=1, le=2**63 - 1)], ctx: Ctx, who: Reader) -> InclusionProof:
    bundle = ledger_log.prove(ctx.read, ctx.slug, entry_id)
    return InclusionProof(checkpoint=bundle.checkpoint, proof=json.loads(bundle.proof.to_json()),
                          entry=bundle.entry.decode())
